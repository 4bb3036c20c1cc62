"""What the guest (and its device model) does to the paging state: writes, reads, DMA marks.

A guest write under HAP log-dirty (xen-project/xen xen/arch/x86/hvm/hvm.c
``hvm_hap_nested_page_fault`` @ RELEASE-4.4.0): the entry is ``ram_logdirty`` (read-only), so
the write exits; Xen marks the pfn dirty, then changes that one entry back to ``ram_rw`` with an
order-0 update, shattering a superpage. From 4.5, a lazily retyped entry first has to be
resolved (see :mod:`p2m_write`). Under shadow paging a write to a clean frame takes a shadow
fault (``fault_count``) and is marked (``sh_propagate`` leaves the shadow read-only while
``paging_mfn_is_dirty`` says clean); which frames fault is therefore exactly "bit clear".

``guest_write`` is the page-by-page reference. ``write_range``/``write_pages`` give the same
state and the same summed work table by table (tests hold this) so that a guest can be put in a
given state without touching every page.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from xenvmmu.model.constants import ENTRIES, LEAF_BITS, LEAF_SHIFT, ORDER_1G, ORDER_2M
from xenvmmu.model.domain import Domain
from xenvmmu.model.p2m import LD, RW
from xenvmmu.model.p2m_bulk import TRIE_RESERVE, block_is_ram, write_block
from xenvmmu.model.p2m_write import resolve, set_type_4k, write_slot
from xenvmmu.model.trie import split_pfn
from xenvmmu.model.work import ZERO, Work

#: Pool pages write_slot may need at most (an EPT 1G split), plus the trie's share.
_SLOT_NEED = ENTRIES + 1 + TRIE_RESERVE


def guest_write(d: Domain, gfn: int) -> Work:
    """One guest write to RAM page ``gfn``."""
    if not d.hap:
        return _shadow_write(d, gfn)
    w, resolved = resolve(d.p2m, gfn)
    exits = 1 if resolved else 0
    if d.p2m.type_of(gfn) == LD:
        if d.log_dirty:
            w = w + d.trie.mark(gfn)
        sw = set_type_4k(d.p2m, gfn, RW)
        if sw is not None:  # on -ENOMEM the entry stays read-only and the write faults again
            w = w + sw
        exits = exits + 1 if d.flavour == "ept" else 1
    return w + Work(vm_exits=exits)


def guest_access(d: Domain, gfn: int) -> Work:
    """A read (or instruction fetch): only pending recalc markers cost anything."""
    w, resolved = resolve(d.p2m, gfn)
    return w + Work(vm_exits=1 if resolved else 0)


def dm_mark_dirty(d: Domain, pfn: int) -> Work:
    """``paging_mark_dirty`` from outside the guest (device-model DMA, grant copies)."""
    return d.trie.mark(pfn) if d.log_dirty else ZERO


def _shadow_write(d: Domain, gfn: int) -> Work:
    if not d.log_dirty or d.trie.is_dirty(gfn):
        return ZERO
    d.trie.fault_count += 1
    return d.trie.mark(gfn) + Work(vm_exits=1)


# -- bulk ------------------------------------------------------------------------------------
def write_range(d: Domain, start: int, end: int) -> Work:
    """The guest writes every RAM page of ``[start, end)`` once, in ascending order."""
    w = ZERO
    for s, e in d.layout.ram:
        lo, hi = max(s, start), min(e, end)
        if lo < hi:
            w = w + (_hap_range(d, lo, hi) if d.hap else _shadow_range(d, lo, hi))
    return w


def write_pages(d: Domain, gfns: npt.NDArray[np.int64]) -> Work:
    """The guest writes each of the sorted, distinct RAM pages ``gfns`` once, in order."""
    if len(gfns) == 0:
        return ZERO
    if not d.hap:
        return _shadow_pages(d, gfns)
    w = ZERO
    slots = gfns >> ORDER_2M
    cuts = np.flatnonzero(np.diff(slots)) + 1
    for group in np.split(gfns, cuts):
        t = int(group[0]) >> ORDER_2M
        mask = 0
        for g in (group & (ENTRIES - 1)).tolist():
            mask |= 1 << g
        w = w + _hap_slot(d, t, mask)
    return w


def _hap_slot(d: Domain, t: int, mask: int) -> Work:
    if not d.pool.can_lend(_SLOT_NEED):
        w = ZERO
        pos = mask
        while pos:
            bit = pos & -pos
            pos ^= bit
            w = w + guest_write(d, (t << ORDER_2M) | (bit.bit_length() - 1))
        return w
    w, faulted = write_slot(d.p2m, t, mask)
    if faulted and d.log_dirty:
        raw = np.frombuffer(faulted.to_bytes(ENTRIES // 8, "little"), np.uint8)
        w = w + d.trie.mark_bytes(t << ORDER_2M, raw.copy(), faulted.bit_count())
    return w


def _hap_range(d: Domain, s: int, e: int) -> Work:
    w = ZERO
    t = s >> ORDER_2M
    while t << ORDER_2M < e:
        b = t >> 9
        if (
            t == b << 9
            and b << ORDER_1G >= s
            and (b + 1) << ORDER_1G <= e
            and block_is_ram(d.p2m, b)
            and (got := write_block(d.p2m, b)) is not None
        ):
            bw, faulted = got
            w = w + bw
            if d.log_dirty:
                w = w + _mark_slots(d, b, faulted)
            t = (b + 1) << 9
            continue
        lo = max(s, t << ORDER_2M) - (t << ORDER_2M)
        hi = min(e, (t + 1) << ORDER_2M) - (t << ORDER_2M)
        mask = (((1 << (hi - lo)) - 1) << lo) & d.layout.ram_mask(t)
        if mask:
            w = w + _hap_slot(d, t, mask)
        t += 1
    return w


def _mark_slots(d: Domain, b: int, faulted: npt.NDArray[np.bool_]) -> Work:
    """Mark the pages of the faulted slots of block ``b`` (runs of consecutive slots)."""
    w = ZERO
    idx = np.flatnonzero(faulted)
    if len(idx) == 0:
        return w
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    for run in np.split(idx, breaks):
        s = ((b << 9) + int(run[0])) << ORDER_2M
        e = ((b << 9) + int(run[-1]) + 1) << ORDER_2M
        w = w + d.trie.mark_range(s, e)
    return w


def _shadow_range(d: Domain, s: int, e: int) -> Work:
    if not d.log_dirty:
        return ZERO
    w = ZERO
    p = s
    while p < e:
        q = min(e, ((p >> LEAF_SHIFT) + 1) << LEAF_SHIFT)
        a, z = p & (LEAF_BITS - 1), ((q - 1) & (LEAF_BITS - 1)) + 1
        flat = np.zeros(LEAF_BITS, np.bool_)
        flat[a:z] = True
        bits = np.packbits(flat, bitorder="little")
        w = w + _shadow_leaf(d, (p >> LEAF_SHIFT) << LEAF_SHIFT, bits)
        p = q
    return w


def _shadow_pages(d: Domain, gfns: npt.NDArray[np.int64]) -> Work:
    if not d.log_dirty:
        return ZERO
    w = ZERO
    leaves = gfns >> LEAF_SHIFT
    cuts = np.flatnonzero(np.diff(leaves)) + 1
    for group in np.split(gfns, cuts):
        flat = np.zeros(LEAF_BITS, np.bool_)
        flat[group & (LEAF_BITS - 1)] = True
        base = (int(group[0]) >> LEAF_SHIFT) << LEAF_SHIFT
        w = w + _shadow_leaf(d, base, np.packbits(flat, bitorder="little"))
    return w


def _shadow_leaf(d: Domain, base: int, bits: npt.NDArray[np.uint8]) -> Work:
    """Writes to the pages ``bits`` of one leaf region: only clear pages fault."""
    i4, i3, i2, _ = split_pfn(base)
    leaf = d.trie.leaf(i4, i3, i2)
    new = bits if leaf is None else bits & ~leaf
    n = int(np.bitwise_count(new).sum())
    if n == 0:
        return ZERO
    d.trie.fault_count += n
    return d.trie.mark_bytes(base, new, n) + Work(vm_exits=n)
