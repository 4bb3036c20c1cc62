"""A whole 1 GiB block written by the guest, computed per table instead of per page.

``write_block`` gives exactly the state and the summed work of :func:`p2m_write.write_slot`
applied to the block's 512 slots in order (tests hold this), but with numpy over the 512
entries of the block's L2 table. It handles the common case - a block that is all RAM, with no
mixed or partly-marked L1 table and no VRAM log-dirty range - and returns ``None`` otherwise, or
when the pool could run dry half-way (then the caller goes slot by slot, which fails exactly
where Xen would).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from xenvmmu.model.constants import ENTRIES, ORDER_1G
from xenvmmu.model.p2m import P2M
from xenvmmu.model.p2m_chunk import LD, LEAF, NONE, RW, TABLE
from xenvmmu.model.p2m_write import split_1g
from xenvmmu.model.work import Work

#: Pool pages kept back for the log-dirty trie nodes the block's marks may allocate.
TRIE_RESERVE = 16


def block_is_ram(p2m: P2M, b: int) -> bool:
    s, e = b << ORDER_1G, (b + 1) << ORDER_1G
    return any(a <= s and e <= z for a, z in p2m.layout.ram)


def write_block(p2m: P2M, b: int) -> tuple[Work, npt.NDArray[np.bool_]] | None:
    """The guest writes every page of 1G block ``b`` in ascending order (HAP). Returns the p2m
    work and which of the 512 slots took log-dirty faults (all their pages did), or None."""
    c = p2m.chunks.get(b >> 9)
    i3 = b & 511
    if p2m.flavour == "pt" or p2m.ld_ranges or c is None or not block_is_ram(p2m, b):
        return None
    if c.kind[i3] == NONE or c.mixed[i3]:
        return None
    d = LD if p2m.global_logdirty else RW
    pending = bool(p2m.root_mark[b >> 9])
    if c.kind[i3] == LEAF:
        marked = pending or bool(c.mark[i3])
        typ = d if marked else int(c.ptype[i3])
        need = ENTRIES + 1 if typ == LD else 0
    else:
        assert c.l2_kind is not None and c.l2_mark is not None and c.l2_ptype is not None
        marked_all = pending or bool(c.mark[i3])
        leaf = c.l2_kind[i3] == LEAF
        eff = np.where(marked_all | c.l2_mark[i3], d, c.l2_ptype[i3])
        need = int(np.count_nonzero(leaf & (eff == LD)))
    if not p2m.pool.can_lend(need + TRIE_RESERVE):
        return None

    w = Work()
    if pending:
        sel = (c.kind != NONE) & ~c.mark
        w = w + Work(entries_read=ENTRIES, entries_written=int(np.count_nonzero(sel)) + 1)
        c.mark[sel] = True
        p2m.root_mark[b >> 9] = False
    extra_exit = 0
    if c.kind[i3] == LEAF:
        if c.mark[i3]:
            c.ptype[i3], c.mark[i3] = d, False
            w = w + Work(entries_written=1)
            extra_exit = 1
        if int(c.ptype[i3]) != LD:
            return w + Work(vm_exits=extra_exit), np.zeros(ENTRIES, np.bool_)
        sw = split_1g(p2m, b, to_4k=p2m.flavour == "ept")
        assert sw is not None
        w = w + sw
        if p2m.flavour == "npt":
            extra_exit = 0  # the NPF that resolved also took the write
    assert c.l2_kind is not None and c.l2_mark is not None and c.l2_ptype is not None
    assert c.l1_ram is not None or c.kind[i3] == TABLE
    c.ensure_l1()
    assert c.l1_ram is not None and c.l1_ld is not None and c.l1_fixed is not None
    kk, mm, pp = c.l2_kind[i3], c.l2_mark[i3], c.l2_ptype[i3]
    if c.mark[i3]:
        sel = (kk != NONE) & ~mm
        w = w + Work(entries_read=ENTRIES, entries_written=int(np.count_nonzero(sel)) + 1)
        mm[sel] = True
        c.mark[i3] = False
    leaf, tab = kk == LEAF, kk == TABLE
    lm, tm = leaf & mm, tab & mm
    n_lm, n_tm = int(np.count_nonzero(lm)), int(np.count_nonzero(tm))
    pp[lm] = d
    ldleaf = leaf & (pp == LD)
    n_split = int(np.count_nonzero(ldleaf))
    if not p2m.lend(n_split):
        raise AssertionError("pool checked above")
    ld = c.l1_ld[i3].astype(np.int64)
    ld[tm] = ENTRIES if d == LD else 0
    writes = n_lm + n_split * (ENTRIES + 1)
    reads = 0
    if p2m.flavour == "ept":
        writes += n_tm * (ENTRIES + 1 + ENTRIES)
        reads += n_tm * 2 * ENTRIES
    else:
        writes += n_tm * (ENTRIES + 1 + ENTRIES)
        reads += n_tm * ENTRIES
    f_tab = int(ld[tab].sum())
    faults = n_split * ENTRIES + f_tab
    writes += faults
    if p2m.flavour == "ept":
        exits = n_lm + n_tm + faults + extra_exit
    else:
        exits = (
            ENTRIES * n_split
            + int(np.count_nonzero(lm & ~ldleaf))
            + ENTRIES * n_tm
            + int(ld[tab & ~tm].sum())
        )
    faulted = ldleaf | (tab & (ld == ENTRIES))
    kk[:], pp[:], mm[:] = TABLE, 0, False
    c.l1_ram[i3, :], c.l1_fixed[i3, :], c.l1_ld[i3, :] = ENTRIES, 0, 0
    c.n_l1 += n_split
    w = w + Work(
        entries_read=reads, entries_written=writes, pages_allocated=n_split, vm_exits=exits
    )
    return w, faulted
