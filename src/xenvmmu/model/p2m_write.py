"""Changing single p2m entries: superpage splitting, lazy-recalc resolution, write faults.

* **Splitting** (order-0 change inside a superpage). EPT ``ept_split_super_page`` splits *every*
  child down to the target level, so a 4K change in a 1G leaf allocates 1 + 512 tables
  (xen-project/xen xen/arch/x86/mm/p2m-ept.c @ RELEASE-4.4.0). p2m-pt/NPT ``p2m_next_level``
  splits one level at a time along the path: 1 + 1 tables (p2m-pt.c @ RELEASE-4.4.0). Children
  copy the parent entry, recalc marker included.
* **Resolution** (4.5+, p2m-ept.c ``resolve_misconfig`` / p2m-pt.c ``do_recalc`` @
  RELEASE-4.5.0): walking from the root towards a gfn, a marked interior entry pushes its marker
  into every present, unmarked entry of the next table, then loses it. EPT then recalculates a
  whole 4K table (all 512 entries rewritten) when the target entry is marked; NPT recalculates
  just the one leaf. A marked superpage whose range is only partly log-dirty is split first.
* **Write faults** (HAP log-dirty): EPT takes a misconfiguration exit to resolve, then an EPT
  violation for the write; the SVM NPF handler resolves and handles the write in one exit.

Fault-path work counts p2m entries written/read, tables allocated and exits; it does not count
maps or the INVEPT/flushes of ``ept_set_entry`` (fold those into the per-exit cost).
"""

from __future__ import annotations

import numpy as np

from xenvmmu.model.constants import ENTRIES, FULL_MASK, ORDER_1G, ORDER_2M, ORDER_512G
from xenvmmu.model.p2m import P2M
from xenvmmu.model.p2m_chunk import LD, LEAF, NONE, RW, TABLE, Chunk
from xenvmmu.model.work import ZERO, Work


def _lowest(mask: int) -> int:
    return mask & -mask


# -- splitting -------------------------------------------------------------------------------
def _new_l1(p2m: P2M, c: Chunk, t: int, ptype: int, marked: bool) -> None:
    """Fill the counts of a new, fully-RAM L1 table made from a 2M leaf."""
    assert c.l1_ram is not None and c.l1_ld is not None and c.l2_kind is not None
    assert c.l2_ptype is not None and c.l2_mark is not None
    i3, i2 = (t >> 9) & 511, t & 511
    c.l2_kind[i3, i2], c.l2_ptype[i3, i2], c.l2_mark[i3, i2] = TABLE, 0, False
    c.l1_ram[i3, i2] = ENTRIES
    c.l1_ld[i3, i2] = ENTRIES if ptype == LD else 0
    c.n_l1 += 1
    p2m.set_l1mark(t, FULL_MASK if marked else 0)


def split_1g(p2m: P2M, b: int, *, to_4k: bool) -> Work | None:
    """Split the 1G leaf of block ``b`` into an L2 table (and, EPT-style, all 512 L1 tables)."""
    c = p2m.chunks[b >> 9]
    i3 = b & 511
    assert c.kind[i3] == LEAF
    need = 1 + (ENTRIES if to_4k else 0)
    if not p2m.lend(need):
        return None
    ptype, marked = int(c.ptype[i3]), bool(c.mark[i3])
    c.ensure_l1()
    assert c.l2_kind is not None and c.l2_ptype is not None and c.l2_mark is not None
    c.kind[i3], c.ptype[i3], c.mark[i3] = TABLE, 0, False
    c.n_l2 += 1
    c.l2_kind[i3, :], c.l2_ptype[i3, :], c.l2_mark[i3, :] = LEAF, ptype, marked
    writes = ENTRIES + 1  # the new table's entries, then the entry pointing at it
    if to_4k:  # each child is split in turn: 512 entries, then the child entry rewritten
        assert c.l1_ram is not None and c.l1_ld is not None
        c.l2_kind[i3, :], c.l2_ptype[i3, :], c.l2_mark[i3, :] = TABLE, 0, False
        c.l1_ram[i3, :] = ENTRIES
        c.l1_ld[i3, :] = ENTRIES if ptype == LD else 0
        c.n_l1 += ENTRIES
        if marked:
            for i2 in range(ENTRIES):
                p2m.set_l1mark((b << 9) | i2, FULL_MASK)
        writes += ENTRIES * (ENTRIES + 1)
    return Work(entries_written=writes, pages_allocated=need)


def split_2m(p2m: P2M, t: int) -> Work | None:
    """Split the 2M leaf of slot ``t`` into an L1 table."""
    c = p2m.chunks[t >> 18]
    assert c.l2_kind is not None and c.l2_ptype is not None and c.l2_mark is not None
    i3, i2 = (t >> 9) & 511, t & 511
    assert c.l2_kind[i3, i2] == LEAF
    if not p2m.lend(1):
        return None
    c.ensure_l1()
    _new_l1(p2m, c, t, int(c.l2_ptype[i3, i2]), bool(c.l2_mark[i3, i2]))
    return Work(entries_written=ENTRIES + 1, pages_allocated=1)


# -- resolution (4.5+) -------------------------------------------------------------------------
def _push(kind: np.ndarray, mark: np.ndarray) -> Work:
    """Mark every present, unmarked entry of one table (ept_invalidate_emt / do_recalc)."""
    sel = (kind != NONE) & ~mark
    n = int(np.count_nonzero(sel))
    mark[sel] = True
    return Work(entries_read=ENTRIES, entries_written=n)


def recalc_l1(p2m: P2M, t: int, marked: int) -> int:
    """Recalculate the type of the ``marked`` RAM entries of L1 table ``t``; returns writes."""
    ram = p2m.ram_mask(t)
    sel = marked & ram
    if sel:
        ld = (p2m.ld_mask(t) & ~sel) | (p2m.desired_mask(t) & sel)
        p2m.set_ld_mask(t, ld)
    return marked.bit_count()


def resolve(p2m: P2M, gfn: int) -> tuple[Work, bool]:
    """Resolve pending recalc markers on ``gfn``'s path; ``(work, anything_changed)``."""
    r, b, t = gfn >> ORDER_512G, gfn >> ORDER_1G, gfn >> ORDER_2M
    c = p2m.chunks.get(r)
    if c is None or p2m.flavour == "pt":
        return ZERO, False
    w, changed = ZERO, False
    if p2m.root_mark[r]:
        w = w + _push(c.kind, c.mark) + Work(entries_written=1)
        p2m.root_mark[r] = False
        changed = True
    i3 = b & 511
    if c.kind[i3] == LEAF:
        if not c.mark[i3]:
            return w, changed
        d = p2m.desired(b << ORDER_1G, (b + 1) << ORDER_1G)
        if d >= 0:
            c.ptype[i3], c.mark[i3] = (LD if d else RW), False
            return w + Work(entries_written=1), True
        sw = split_1g(p2m, b, to_4k=False)  # children inherit the marker
        if sw is None:
            return w, changed
        w, changed = w + sw, True
    elif c.kind[i3] == TABLE:
        if c.mark[i3]:
            assert c.l2_kind is not None and c.l2_mark is not None
            w = w + _push(c.l2_kind[i3], c.l2_mark[i3]) + Work(entries_written=1)
            c.mark[i3], changed = False, True
    else:
        return w, changed
    assert c.l2_kind is not None and c.l2_mark is not None and c.l2_ptype is not None
    i2 = t & 511
    k = c.l2_kind[i3, i2]
    if k == LEAF:
        if not c.l2_mark[i3, i2]:
            return w, changed
        d = p2m.desired(t << ORDER_2M, (t + 1) << ORDER_2M)
        if d >= 0:
            c.l2_ptype[i3, i2], c.l2_mark[i3, i2] = (LD if d else RW), False
            return w + Work(entries_written=1), True
        sw = split_2m(p2m, t)
        if sw is None:
            return w, changed
        w, changed = w + sw, True
    elif k == TABLE:
        if c.l2_mark[i3, i2]:
            present = p2m.present_mask(t)
            lm = p2m.l1mark(t)
            w = w + Work(entries_read=ENTRIES, entries_written=(present & ~lm).bit_count() + 1)
            p2m.set_l1mark(t, lm | present)
            c.l2_mark[i3, i2], changed = False, True
    else:
        return w, changed
    bit = 1 << (gfn & 511)
    lm = p2m.l1mark(t)
    if not lm & bit:
        return w, changed
    if p2m.flavour == "ept":  # the whole 4K table, every present entry rewritten
        recalc_l1(p2m, t, lm)
        p2m.set_l1mark(t, 0)
        w = w + Work(entries_read=ENTRIES, entries_written=p2m.present_mask(t).bit_count())
    else:  # NPT: just this leaf
        recalc_l1(p2m, t, bit)
        p2m.set_l1mark(t, lm & ~bit)
        w = w + Work(entries_written=1)
    return w, True


# -- order-0 type change -------------------------------------------------------------------------
def ensure_l1(p2m: P2M, gfn: int) -> Work | None:
    """Split whatever superpage maps ``gfn`` down to an L1 table, as an order-0 set_entry does.
    EPT splits the whole 1G at once and frees the partial subtree on failure (all or nothing);
    NPT splits one level at a time and keeps a completed upper split. ``None``: -ENOMEM."""
    b, t = gfn >> ORDER_1G, gfn >> ORDER_2M
    c = p2m.chunks[b >> 9]
    w = ZERO
    if c.kind[b & 511] == LEAF:
        sw = split_1g(p2m, b, to_4k=p2m.flavour == "ept")
        if sw is None:
            return None
        w = w + sw
    assert c.l2_kind is not None
    if c.l2_kind[(b & 511), t & 511] == LEAF:
        sw = split_2m(p2m, t)
        if sw is None:
            return None
        w = w + sw
    return w


def set_type_4k(p2m: P2M, gfn: int, nt: int) -> Work | None:
    """Set one RAM 4K entry's type (the set_entry part of ``p2m_change_type_one``), splitting a
    superpage first. ``None`` means -ENOMEM: nothing changed."""
    w = ensure_l1(p2m, gfn)
    if w is None:
        return None
    t = gfn >> ORDER_2M
    bit = 1 << (gfn & 511)
    ld = p2m.ld_mask(t)
    p2m.set_ld_mask(t, (ld | bit) if nt == LD else (ld & ~bit))
    return w + Work(entries_written=1)


def write_slot(p2m: P2M, t: int, pages: int) -> tuple[Work, int]:
    """The guest writes the RAM pages ``pages`` (a 512-bit mask) of 2M slot ``t`` in ascending
    order under HAP. Returns the p2m work (with exits) and the mask of pages that took a
    log-dirty fault (the caller marks them dirty). The caller guarantees the pool can lend 513
    pages, so no allocation fails and the result equals page-by-page faults."""
    first = _lowest(pages)
    w, changed = resolve(p2m, (t << ORDER_2M) | (first.bit_length() - 1))
    m_set = first if changed else 0
    b = t >> 9
    c = p2m.chunks[t >> 18]
    i3, i2 = b & 511, t & 511
    if c.kind[i3] == LEAF or (c.l2_kind is not None and c.l2_kind[i3, i2] == LEAF):
        leaf_type = int(c.ptype[i3]) if c.kind[i3] == LEAF else int(
            c.l2_ptype[i3, i2] if c.l2_ptype is not None else RW
        )
        if leaf_type != LD:
            return w + Work(vm_exits=m_set.bit_count()), 0
        sw = ensure_l1(p2m, t << ORDER_2M)
        assert sw is not None, "caller checked the pool"
        w = w + sw
    if p2m.flavour == "npt":
        marked = p2m.l1mark(t) & pages
        if marked:
            w = w + Work(entries_written=recalc_l1(p2m, t, marked))
            p2m.set_l1mark(t, p2m.l1mark(t) & ~marked)
            m_set |= marked
    elif p2m.flavour == "ept":
        lm = p2m.l1mark(t)
        if lm & pages:
            m_set |= _lowest(lm & pages)
            recalc_l1(p2m, t, lm)
            p2m.set_l1mark(t, 0)
            w = w + Work(entries_read=ENTRIES, entries_written=p2m.present_mask(t).bit_count())
    ld = p2m.ld_mask(t)
    faulted = pages & ld
    if faulted:
        p2m.set_ld_mask(t, ld & ~pages)
    n_f = faulted.bit_count()
    exits = m_set.bit_count() + n_f if p2m.flavour == "ept" else (m_set | faulted).bit_count()
    return w + Work(entries_written=n_f, vm_exits=exits), faulted
