"""Bulk p2m type changes: the global sweep (<= 4.4), root marking (4.5+), range changes.

* ``p2m_change_entry_type_global`` before 4.5 walks *every* present entry of every table and
  rewrites each leaf of the old type (EPT ``ept_change_entry_type_page``, NPT four nested loops;
  xen-project/xen xen/arch/x86/mm/p2m-ept.c @ 90ac32559b^, p2m-pt.c @ 9e52ad4f4d^), then one
  ``ept_sync_domain``. Work = 512 entries read per table, one write per matching leaf.
* From 4.5 it marks the present root entries only (at most 512 writes) and sets
  ``global_logdirty``; the per-region work happens later on the guest's faults.
* Range changes (dirty-VRAM tracking): 4.4 ``p2m_change_type_range`` sets each gfn with an
  order-0 update (splitting superpages); 4.5 marks a minimal cover and records the range in
  ``logdirty_ranges``. ``log_dirty_range`` is ``paging_log_dirty_range``: per gfn
  ``p2m_change_type_one(rw -> logdirty)``, reporting the gfns that had been rw.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from xenvmmu.model.constants import ENTRIES, ORDER_1G, ORDER_2M, ORDER_512G
from xenvmmu.model.layout import decompose
from xenvmmu.model.p2m import LD, LEAF, NONE, P2M, RW, TABLE, Chunk
from xenvmmu.model.p2m_write import ensure_l1, resolve, split_1g, split_2m
from xenvmmu.model.work import ZERO, Work

#: Lookup work charged per gfn by the per-gfn range loops (a 4-level get_entry walk).
LOOKUP_READS = 4


def sweep_root() -> Work:
    """Visiting the root table itself (once per sweep)."""
    return Work(entries_read=ENTRIES, pages_mapped=1)


def sweep_chunk(c: Chunk, ot: int, nt: int) -> Work:
    """The pre-4.5 sweep below one root entry: every table read, ``ot`` leaves rewritten."""
    tables = 1 + c.n_l2 + c.n_l1
    sel = (c.kind == LEAF) & (c.ptype == ot)
    writes = int(np.count_nonzero(sel))
    c.ptype[sel] = nt
    if c.l2_kind is not None and c.l2_ptype is not None:
        sel2 = (c.l2_kind == LEAF) & (c.l2_ptype == ot)
        writes += int(np.count_nonzero(sel2))
        c.l2_ptype[sel2] = nt
    if c.l1_ram is not None and c.l1_ld is not None:
        if ot == RW and nt == LD:
            writes += int(c.l1_ram.sum(dtype=np.int64) - c.l1_ld.sum(dtype=np.int64))
            c.l1_ld[:] = c.l1_ram
        elif ot == LD and nt == RW:
            writes += int(c.l1_ld.sum(dtype=np.int64))
            c.l1_ld[:] = 0
        for key in c.wp:
            c.mixed[key >> 9] -= 1
        c.wp.clear()
    return Work(entries_read=ENTRIES * tables, entries_written=writes, pages_mapped=tables)


def mark_root(p2m: P2M) -> Work:
    """4.5+: mark every present, unmarked root entry for recalculation."""
    present = np.zeros(ENTRIES, np.bool_)
    present[list(p2m.chunks)] = True
    sel = present & ~p2m.root_mark
    n = int(np.count_nonzero(sel))
    p2m.root_mark[sel] = True
    return Work(entries_read=ENTRIES, entries_written=n, pages_mapped=1)


# -- ranges (dirty VRAM) -----------------------------------------------------------------------
def _slots(p2m: P2M, s: int, e: int) -> list[tuple[int, int]]:
    """``(slot, mask of RAM pages in [s, e))`` for every 2M slot of the range."""
    out: list[tuple[int, int]] = []
    for t in range(s >> ORDER_2M, ((e - 1) >> ORDER_2M) + 1):
        lo, hi = max(s, t << ORDER_2M) - (t << ORDER_2M), min(e, (t + 1) << ORDER_2M) - (
            t << ORDER_2M
        )
        span = ((1 << (hi - lo)) - 1) << lo
        ram = p2m.layout.ram_mask(t) & span
        if ram:
            out.append((t, ram))
    return out


def _leaf_type(p2m: P2M, t: int) -> int | None:
    """Type of the superpage leaf mapping slot ``t``, or None if it is an L1 table."""
    c = p2m.chunks[t >> 18]
    b = t >> 9
    if c.kind[b & 511] == LEAF:
        return int(c.ptype[b & 511])
    assert c.l2_kind is not None and c.l2_ptype is not None
    if c.l2_kind[b & 511, t & 511] == LEAF:
        return int(c.l2_ptype[b & 511, t & 511])
    return None


def change_type_range_eager(p2m: P2M, s: int, e: int, ot: int, nt: int) -> Work:
    """4.4 ``p2m_change_type_range``: per gfn, an order-0 set for each entry of type ``ot``."""
    w = ZERO
    for t, pages in _slots(p2m, s, e):
        w = w + Work(entries_read=LOOKUP_READS * pages.bit_count())
        lt = _leaf_type(p2m, t)
        if lt is not None:
            if lt != ot:
                continue
            first = (t << ORDER_2M) | ((pages & -pages).bit_length() - 1)
            sw = ensure_l1(p2m, first)
            if sw is None:
                continue  # -ENOMEM: Xen ignores the failure of each set and goes on
            w = w + sw
        ld = p2m.ld_mask(t)
        sel = pages & (ld if ot == LD else ~ld)
        p2m.set_ld_mask(t, (ld | sel) if nt == LD else (ld & ~sel))
        w = w + Work(entries_written=sel.bit_count())
    return w + Work(tlb_flushes=1)


def change_type_range_lazy(p2m: P2M, s: int, e: int, ot: int, nt: int) -> Work:
    """4.5 ``p2m_change_type_range``: mark a minimal cover of ``[s, e)`` (splitting a superpage
    the range only partly covers) and update ``logdirty_ranges``."""
    w = ZERO
    for run in decompose(s, e, "1g"):
        if run.order == ORDER_1G:
            for b in range(run.start >> ORDER_1G, run.end >> ORDER_1G):
                c = p2m.chunks.get(b >> 9)
                if c is not None and c.kind[b & 511] != NONE and not c.mark[b & 511]:
                    c.mark[b & 511] = True
                    w = w + Work(entries_written=1)
            continue
        for t in range(run.start >> ORDER_2M, ((run.end - 1) >> ORDER_2M) + 1):
            c = p2m.chunks.get(t >> 18)
            b = t >> 9
            if c is None or c.kind[b & 511] == NONE:
                continue
            if c.kind[b & 511] == LEAF:
                sw = split_1g(p2m, b, to_4k=run.order != ORDER_2M and p2m.flavour == "ept")
                if sw is None:
                    continue
                w = w + sw
            assert c.l2_kind is not None and c.l2_mark is not None
            i3, i2 = b & 511, t & 511
            if run.order == ORDER_2M:
                if c.l2_kind[i3, i2] != NONE and not c.l2_mark[i3, i2]:
                    c.l2_mark[i3, i2] = True
                    w = w + Work(entries_written=1)
                continue
            if c.l2_kind[i3, i2] == LEAF:
                sw = split_2m(p2m, t)
                if sw is None:
                    continue
                w = w + sw
            if c.l2_kind[i3, i2] != TABLE:
                continue
            lo = max(run.start, t << ORDER_2M) - (t << ORDER_2M)
            hi = min(run.end, (t + 1) << ORDER_2M) - (t << ORDER_2M)
            span = (((1 << (hi - lo)) - 1) << lo) & p2m.present_mask(t)
            lm = p2m.l1mark(t)
            w = w + Work(entries_written=(span & ~lm).bit_count())
            p2m.set_l1mark(t, lm | span)
    if ot == RW and nt == LD:
        p2m.ld_ranges = _add(p2m.ld_ranges, (s, e))
    elif ot == LD and nt == RW:
        p2m.ld_ranges = _remove(p2m.ld_ranges, (s, e))
    return w + Work(tlb_flushes=1 if w else 0)


def _add(ranges: list[tuple[int, int]], r: tuple[int, int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted([*ranges, r]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _remove(ranges: list[tuple[int, int]], r: tuple[int, int]) -> list[tuple[int, int]]:
    s, e = r
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if b <= s or a >= e:
            out.append((a, b))
            continue
        if a < s:
            out.append((a, s))
        if b > e:
            out.append((e, b))
    return out


def log_dirty_range(p2m: P2M, begin: int, nr: int) -> tuple[Work, npt.NDArray[np.uint8]]:
    """``paging_log_dirty_range``: per gfn ``p2m_change_type_one(rw -> logdirty)``; the bitmap
    has a bit for each gfn that was rw (written since the last call)."""
    bitmap = np.zeros((nr + 7) >> 3, np.uint8)
    w = ZERO
    for t, pages in _slots(p2m, begin, begin + nr):
        w = w + Work(entries_read=LOOKUP_READS * pages.bit_count())
        rw = 0
        pos = pages
        while pos:  # logical types, page by page (markers report the recalculated type)
            bit = pos & -pos
            pos ^= bit
            gfn = (t << ORDER_2M) | (bit.bit_length() - 1)
            if p2m.type_of(gfn) == RW:
                rw |= bit
        if not rw:
            continue
        first = (t << ORDER_2M) | ((rw & -rw).bit_length() - 1)
        rw_work, _ = resolve(p2m, first)  # set_entry resolves pending markers first
        w = w + rw_work
        sw = ensure_l1(p2m, first)
        if sw is None:
            continue
        w = w + sw
        p2m.set_ld_mask(t, p2m.ld_mask(t) | rw)
        w = w + Work(entries_written=rw.bit_count())
        base = (t << ORDER_2M) - begin
        pos = rw
        while pos:
            bit = pos & -pos
            pos ^= bit
            i = base + bit.bit_length() - 1
            bitmap[i >> 3] |= np.uint8(1 << (i & 7))
    return w + Work(tlb_flushes=1), bitmap


def chunk_of(p2m: P2M, gfn: int) -> Chunk | None:
    return p2m.chunks.get(gfn >> ORDER_512G)
