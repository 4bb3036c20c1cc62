"""Geometry, type codes and error numbers of Xen's x86 paging code.

Every number here is Xen's own; the comment names where it is defined. Values were checked
against xen-project/xen at RELEASE-4.4.0 and RELEASE-4.5.0 (see research note xen-paging.md).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

PAGE_SHIFT: Final = 12
PAGE_SIZE: Final = 1 << PAGE_SHIFT

# Every p2m table and every log-dirty interior node has 512 entries (PAGETABLE_ORDER 9,
# EPT_PAGETABLE_ENTRIES, LOGDIRTY_NODE_ENTRIES).
TABLE_ORDER: Final = 9
ENTRIES: Final = 1 << TABLE_ORDER
FULL_MASK: Final = (1 << ENTRIES) - 1  # all 512 entries of one table, as a Python int bitmask

# Page orders of the three leaf sizes (asm/page.h PAGE_ORDER_4K/2M/1G).
ORDER_4K: Final = 0
ORDER_2M: Final = 9
ORDER_1G: Final = 18
ORDER_512G: Final = 27  # span of one root (L4) entry

# Log-dirty trie (asm-x86/paging.h): a leaf is one page of bits, 32768 pfns = 128 MiB.
LEAF_SHIFT: Final = PAGE_SHIFT + 3  # 15
LEAF_BITS: Final = 1 << LEAF_SHIFT
L2_SHIFT: Final = LEAF_SHIFT + TABLE_ORDER  # 24: one L2 node covers 64 GiB
L3_SHIFT: Final = L2_SHIFT + TABLE_ORDER  # 33: one L3 node covers 32 TiB

# Xen's errno values (xen/include/public/errno.h).
ESRCH: Final = 3
EAGAIN: Final = 11
ENOMEM: Final = 12
EFAULT: Final = 14
EBUSY: Final = 16
EINVAL: Final = 22
ENODATA: Final = 61
ERESTART: Final = 85  # "create a continuation"; the 4.2-4.4 backports of XSA-97 used -EAGAIN

# The domctl lock is global; per-domain preemption needs the hypercall numbers only for reports.
HYPERVISOR_DOMCTL: Final = 36
HYPERVISOR_ARCH_1: Final = 49  # paging_domctl_continuation (XSA-97 fix)

# Shadow ops of XEN_DOMCTL_shadow_op (public/domctl.h)
SHADOW_ENABLE_LOG_DIRTY: Final = 1 << 2  # mode flag for ENABLE

# Hash buckets of the shadow hash table (SHADOW_HASH_BUCKETS, defined in
# xen/arch/x86/mm/shadow/common.c @ RELEASE-4.4.0 l.1738, @ master l.863)
SHADOW_HASH_BUCKETS: Final = 251

# Shadow pool floor: 128 pages per vCPU plus one (4.4 shadow_min_acceptable_pages counts
# vCPUs starting at 1), plus one page per MiB of RAM in sh_set_allocation.
SHADOW_MIN_PAGES_PER_VCPU: Final = 128
# HAP: hap_enable() gives an empty pool 256 pages (1 MiB).
HAP_INITIAL_POOL_PAGES: Final = 256

# XSA-410: p2m_teardown() checks for preemption every 1024 freed pages.
P2M_TEARDOWN_BATCH: Final = 1024

# Dirty-VRAM tracking: at most 1 GiB of frames per call (hvm.c / dm.c track_dirty_vram).
VRAM_MAX_FRAMES: Final = 1 << 18


class ShadowOp(IntEnum):
    """Sub-ops of XEN_DOMCTL_shadow_op."""

    OFF = 0
    ENABLE_TEST = 1
    ENABLE_LOGDIRTY = 2
    ENABLE_TRANSLATE = 3
    CLEAN = 11
    PEEK = 12
    GET_ALLOCATION = 30
    SET_ALLOCATION = 31
    ENABLE = 32


class P2MType(IntEnum):
    """p2m_type_t values (asm-x86/p2m.h; 0-14 identical in 4.4 and master)."""

    ram_rw = 0
    invalid = 1
    ram_logdirty = 2
    ram_ro = 3
    mmio_dm = 4
    mmio_direct = 5
    populate_on_demand = 6
    grant_map_rw = 7
    grant_map_ro = 8
    ram_paging_out = 9
    ram_paged = 10
    ram_paging_in = 11
    ram_shared = 12
    ram_broken = 13
    map_foreign = 14


# Types a global or range type change may convert (P2M_CHANGEABLE_TYPES in 4.5).
CHANGEABLE: Final = frozenset({P2MType.ram_rw, P2MType.ram_logdirty})


def popcount(mask: int) -> int:
    """Number of set bits of a Python int bitmask."""
    return mask.bit_count()
