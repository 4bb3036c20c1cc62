"""Closed-form worst-case work of XSA-97's operations for one guest, per Xen release.

For a guest of a given size and paging pool, this lists every operation of XSA-97's class
that can be driven against it, who can drive it, whether the release preempts it, and the
work (``Work`` units) of its longest non-preemptible section. The audit turns that into
milliseconds with a ``CostProfile``; the simulator measures the same sections in time.

Worst case means what an attacker can arrange (research note xen-paging.md §3-§7):
the guest dirties one page in every 128 MiB region (every log-dirty leaf exists) and
writes all its memory (every p2m entry needs rewriting, superpages shattered to 4 KiB);
under shadow paging its page tables fill the whole shadow pool. The assumptions that are
not Xen facts are parameters of ``Assumptions`` with documented defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..model.work import Work
from ..versions import Profile

LEAF_PFNS = 1 << 15  # pfns per log-dirty leaf (one 4 KiB page of bits): 128 MiB
NODE = 512  # entries per trie node / p2m table
PAGE_BYTES = 4096

Paging = Literal["hap", "shadow"]


@dataclass(frozen=True)
class AttackAssumptions:
    """Attack-shape parameters the research could not pin down (named, with defaults)."""

    #: Frames the device model asks to track with dirty-VRAM tracking. Default 768 (3 MiB: the
    #: visible 1024x768 32-bit framebuffer that qemu tracks; assumed). A compromised device
    #: model may ask for up to 262144 (1 GiB of frames, xen/arch/x86/hvm/hvm.c @ RELEASE-4.4.0).
    vram_frames: int = 768
    #: Fraction of tracked VRAM frames whose single shadow mapping is unknown, so that shadow
    #: VRAM tracking brute-forces the shadow hash for them (assumed: all, after a blow-tables).
    vram_bruteforce_fraction: float = 1.0
    #: Fraction of the shadow pool holding L1 shadows that a brute-force search scans
    #: (assumed: all of it; an attacker maximises guest page tables).
    shadow_l1_fraction: float = 1.0


DEFAULT_ATTACK = AttackAssumptions()


@dataclass(frozen=True)
class OpEstimate:
    """One operation against the guest and its worst-case non-preemptible section."""

    op: str
    triggers: tuple[str, ...]
    preemptible: bool
    section: Work
    total: Work
    related: bool = False  # outside XSA-97's verdict (same class: teardown, set_allocation)
    reference: str = "XSA-97"
    note: str = ""


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _trie_nodes(pages: int) -> tuple[int, int]:
    """Leaves and interior nodes of a fully populated log-dirty trie over ``pages`` pfns."""
    leaves = _ceil(pages, LEAF_PFNS)
    l2 = _ceil(leaves, NODE)
    l3 = _ceil(l2, NODE)
    return leaves, l2 + l3 + 1


def _walk(leaves: int, interior: int, *, copy: bool, zero: bool) -> Work:
    """PEEK/CLEAN over ``leaves`` existing leaves: map, copy out and/or clear each."""
    return Work(
        entries_read=leaves + interior,
        pages_mapped=leaves + interior,
        bytes_copied=PAGE_BYTES * leaves if copy else 0,
        bytes_zeroed=PAGE_BYTES * leaves if zero else 0,
    )


def _p2m_tables(pages: int) -> int:
    """p2m table pages mapping ``pages`` 4 KiB pages (L1 + L2 + L3 + root)."""
    l1 = _ceil(pages, NODE)
    l2 = _ceil(l1, NODE)
    l3 = _ceil(l2, NODE)
    return l1 + l2 + l3 + 1


def _retype_global(pages: int, mode: Literal["sweep", "lazy"]) -> Work:
    """HAP ``p2m_change_entry_type_global``: a full sweep before 4.5, root marking after."""
    if mode == "sweep":
        tables = _p2m_tables(pages)
        return Work(
            entries_read=pages + tables,
            entries_written=pages,
            pages_mapped=tables,
            tlb_flushes=1,
        )
    roots = _ceil(pages, NODE**3)  # present root entries (each spans 512 GiB)
    return Work(entries_read=NODE, entries_written=roots, pages_mapped=1, tlb_flushes=1)


def _blow_tables(pool_pages: int, pages: int, a: AttackAssumptions) -> Work:
    """``shadow_blow_tables`` on a pool filled with shadows: unpin every top-level shadow,
    destroy every shadow (scanning its 512 entries), flush. The pool also holds the p2m
    tables and the log-dirty trie, which are not shadows (as ``model.analytic`` counts)."""
    leaves, interior = _trie_nodes(pages)
    shadows = max(0, pool_pages - _p2m_tables(pages) - leaves - interior)
    tops = min(max(1, shadows // 256), shadows)  # pinned top-levels (model.shape)
    return Work(
        entries_read=int(shadows * a.shadow_l1_fraction) * NODE,
        shadows_unpinned=tops,
        shadows_destroyed=shadows,
        pages_freed=shadows,
        tlb_flushes=1,
    )


def estimate_ops(
    pages: int,
    pool_pages: int,
    paging: Paging,
    profile: Profile,
    assumptions: AttackAssumptions = DEFAULT_ATTACK,
) -> list[OpEstimate]:
    """Every operation of XSA-97's class against an HVM guest of ``pages`` 4 KiB pages
    (its maximum memory) with a paging pool of ``pool_pages``, as ``profile``'s release
    runs it."""
    a = assumptions
    leaves, interior = _trie_nodes(pages)
    chunk_leaves = min(leaves, NODE)  # the fix checks after every L2 node (64 GiB of pfns)
    fixed = profile.logdirty_preemptible

    if paging == "hap":
        hook = _retype_global(pages, profile.hap_retype)
        hook_preemptible = profile.hap_retype == "lazy"
        hook_name = "HAP global p2m retype"
    else:
        hook = _blow_tables(pool_pages, pages, a)
        hook_preemptible = False
        hook_name = "shadow blow-tables"

    def walk(copy: bool, zero: bool) -> tuple[Work, Work]:
        whole = _walk(leaves, interior, copy=copy, zero=zero)
        part = _walk(chunk_leaves, 2, copy=copy, zero=zero) if fixed else whole
        return part, whole

    free_whole = Work(entries_read=leaves + interior, pages_freed=leaves + interior)
    free_part = Work(entries_read=chunk_leaves + 1, pages_freed=min(leaves, NODE) + 1)
    peek_part, peek_whole = walk(copy=True, zero=False)
    clean_part, clean_whole = walk(copy=True, zero=True)
    ld_triggers = ("toolstack", "device_model", "guest")
    walk_note = "guest dirtying one page per 128 MiB makes every bitmap leaf exist"
    ops = [
        OpEstimate(
            "logdirty_enable", ld_triggers, hook_preemptible, hook, hook,
            note=f"runs the {hook_name} once",
        ),
        OpEstimate(
            "logdirty_peek", ld_triggers, fixed, peek_part, peek_whole, note=walk_note,
        ),
        OpEstimate(
            "logdirty_clean", ld_triggers, fixed and hook_preemptible,
            clean_part + hook, clean_whole + hook,
            note=f"bitmap walk, then the {hook_name} after the last chunk; {walk_note}",
        ),
        OpEstimate(
            "logdirty_off", ld_triggers, fixed and hook_preemptible,
            hook + (free_part if fixed else free_whole), hook + free_whole,
            note=f"{hook_name}, then the bitmap is freed",
        ),
    ]
    ops.append(_vram(pages, pool_pages, paging, a))
    ops.extend(_related(pages, pool_pages, profile))
    return ops


def _vram(pages: int, pool_pages: int, paging: Paging, a: AttackAssumptions) -> OpEstimate:
    frames = min(a.vram_frames, pages)
    if paging == "hap":
        # hap_track_dirty_vram: per-pfn type change over the range, then a flush.
        work = Work(entries_read=frames, entries_written=frames, bytes_copied=_ceil(frames, 8),
                    tlb_flushes=1)
        note = "HAP range retype of the tracked frames"
    else:
        brute = int(frames * a.vram_bruteforce_fraction)
        scanned = int(pool_pages * a.shadow_l1_fraction) * NODE
        work = Work(entries_read=frames + brute * scanned, entries_written=frames,
                    bytes_copied=_ceil(frames, 8), tlb_flushes=1)
        note = "shadow: brute-force search of every shadow for each frame without a known mapping"
    return OpEstimate("vram_track", ("device_model",), False, work, work, note=note)


def _related(pages: int, pool_pages: int, profile: Profile) -> list[OpEstimate]:
    """Same-class operations reported beside (not inside) the XSA-97 verdict."""
    pool_free = Work(pages_freed=pool_pages, heap_pages_freed=pool_pages)
    one_page = Work(pages_freed=1, heap_pages_freed=1)
    p2m_pages = _p2m_tables(pages)
    p2m_free = Work(pages_freed=p2m_pages, heap_pages_freed=p2m_pages)
    batch = min(p2m_pages, 1024)  # XSA-410: check every 1024 pages
    p2m_batch = Work(pages_freed=batch, heap_pages_freed=batch)
    teardown_triggers = ("toolstack", "guest")
    return [
        OpEstimate(
            "pool_teardown", teardown_triggers, profile.pool_teardown_preemptible,
            one_page if profile.pool_teardown_preemptible else pool_free, pool_free,
            related=True, reference="2015 paging-pool teardown fix (0174da5b79)",
            note="set_allocation(0) at domain destruction; a guest with on_reboot=restart "
            "triggers it by rebooting",
        ),
        OpEstimate(
            "p2m_teardown", teardown_triggers, profile.p2m_free_preemptible,
            p2m_batch if profile.p2m_free_preemptible else p2m_free, p2m_free,
            related=True, reference="XSA-410 (CVE-2022-33746)",
            note="frees every p2m page; before XSA-410 from an RCU callback, not preemptible",
        ),
        OpEstimate(
            "set_allocation", ("toolstack",), True, one_page,
            Work(pages_allocated=pool_pages, heap_pages_allocated=pool_pages),
            related=True, reference="paging pool resize",
            note="checks for preemption after every page in every release",
        ),
    ]
