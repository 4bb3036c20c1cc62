"""The p2m (guest-physical to machine table) as counts per table, not objects per page.

Shape (EPT/NPT, xen-project/xen xen/arch/x86/mm/p2m-ept.c, p2m-pt.c): 4 levels of 512-entry
tables. The root's entries cover 512 GiB, an L3 table's entries 1 GiB (a 1G leaf or an L2
table), an L2 table's 2 MiB (a 2M leaf or an L1 table), an L1 table's 4 KiB. Every table is one
page lent by the paging pool. Leaves carry a p2m type; the 4.5 lazy type change adds a *recalc
marker* to any present entry (EPT: EMT=7 plus the recalc bit; NPT: U and A clear).

Storage, per root slot (one L3 table and everything below it): a
:class:`~xenvmmu.model.p2m_chunk.Chunk`, with the entry kinds and types, in the lower module
:mod:`~xenvmmu.model.p2m_chunk` that every p2m module shares (re-exported here).

Which entries of an L1 table are RAM or MMIO comes from the :class:`Layout` (it never changes
after population). Memory therefore grows with the tables that exist and with *mixed* tables,
i.e. with what the guest touched, not with its size.

The shadow-mode p2m is a software-only p2m-pt table ("pt" flavour): 4K leaves only (4.4's
``set_p2m_entry`` uses order 0 unless HAP), never marked, never retyped for log-dirty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xenvmmu.model.constants import (
    ENTRIES,
    FULL_MASK,
    ORDER_1G,
    ORDER_2M,
    ORDER_4K,
    ORDER_512G,
    P2MType,
)
from xenvmmu.model.layout import Layout, Span, Superpages, _mask
from xenvmmu.model.p2m_chunk import LD, LEAF, NONE, RW, TABLE, Chunk, Flavour, P2MError
from xenvmmu.model.p2m_populate import populate
from xenvmmu.model.pool import PagingPool

__all__ = [
    "LD", "LEAF", "NONE", "P2M", "RW", "TABLE", "Chunk", "Flavour", "P2MCounts", "P2MError",
]


@dataclass(frozen=True)
class P2MCounts:
    """Tables per level and leaves per order (RAM leaves split by type)."""

    root: int
    l3: int
    l2: int
    l1: int
    leaves_1g: int
    leaves_2m: int
    leaves_4k: int
    logdirty_4k: int

    @property
    def tables(self) -> int:
        return self.root + self.l3 + self.l2 + self.l1


class P2M:
    """The host p2m of one HVM domain."""

    def __init__(self, layout: Layout, flavour: Flavour, pool: PagingPool) -> None:
        self.layout = layout
        self.flavour: Flavour = flavour
        self.pool = pool
        self.chunks: dict[int, Chunk] = {}
        self.root_mark = np.zeros(ENTRIES, np.bool_)
        self.global_logdirty = False
        self.ld_ranges: list[Span] = []  # 4.5 logdirty_ranges rangeset (VRAM tracking)
        self.root_allocated = False
        self.pages = 0  # pages on the p2m's page list (all its tables)
        self._ram_masks: dict[int, int] = {}
        self._fixed_masks: dict[int, int] = {}

    # -- allocation ----------------------------------------------------------------------------
    def lend(self, n: int) -> bool:
        """Take ``n`` table pages from the pool, all or nothing."""
        if n == 0:
            return True
        if not self.pool.can_lend(n):
            self.pool.p2m_alloc_failed = True
            return False
        self.pool.lend_p2m(n)
        self.pages += n
        return True

    def init_root(self) -> None:
        if not self.lend(1):
            raise P2MError("no pool page for the p2m root")
        self.root_allocated = True

    # -- population (domain build) -------------------------------------------------------------
    def populate(self, superpages: Superpages) -> int:
        """Map the layout with the largest leaves allowed; returns table pages allocated."""
        return populate(self, superpages)

    # -- per-L1-table masks --------------------------------------------------------------------
    def ram_mask(self, t: int) -> int:
        c = self.chunks[t >> 18]
        assert c.l1_ram is not None
        if int(c.l1_ram[(t >> 9) & 511, t & 511]) == ENTRIES:
            return FULL_MASK
        m = self._ram_masks.get(t)
        if m is None:
            m = self._ram_masks[t] = self.layout.ram_mask(t)
        return m

    def fixed_mask(self, t: int) -> int:
        c = self.chunks[t >> 18]
        assert c.l1_fixed is not None
        if int(c.l1_fixed[(t >> 9) & 511, t & 511]) == 0:
            return 0
        m = self._fixed_masks.get(t)
        if m is None:
            m = self._fixed_masks[t] = self.layout.fixed_mask(t)
        return m

    def present_mask(self, t: int) -> int:
        return self.ram_mask(t) | self.fixed_mask(t)

    def ld_mask(self, t: int) -> int:
        c = self.chunks[t >> 18]
        assert c.l1_ld is not None and c.l1_ram is not None
        i3, i2 = (t >> 9) & 511, t & 511
        n = int(c.l1_ld[i3, i2])
        if n == 0:
            return 0
        if n == int(c.l1_ram[i3, i2]):
            return self.ram_mask(t)
        return c.wp[t & 0x3FFFF]

    def set_ld_mask(self, t: int, m: int) -> None:
        c = self.chunks[t >> 18]
        assert c.l1_ld is not None and c.l1_ram is not None
        i3, i2 = (t >> 9) & 511, t & 511
        n = m.bit_count()
        c.l1_ld[i3, i2] = n
        key = t & 0x3FFFF
        if 0 < n < int(c.l1_ram[i3, i2]):
            if key not in c.wp:
                c.mixed[i3] += 1
            c.wp[key] = m
        elif c.wp.pop(key, None) is not None:
            c.mixed[i3] -= 1

    def l1mark(self, t: int) -> int:
        return self.chunks[t >> 18].l1mark.get(t & 0x3FFFF, 0)

    def set_l1mark(self, t: int, m: int) -> None:
        c = self.chunks[t >> 18]
        key, i3 = t & 0x3FFFF, (t >> 9) & 511
        if m:
            if key not in c.l1mark:
                c.mixed[i3] += 1
            c.l1mark[key] = m
        elif c.l1mark.pop(key, None) is not None:
            c.mixed[i3] -= 1

    # -- type calculation (p2m_is_logdirty_range) ----------------------------------------------
    def desired(self, s: int, e: int) -> int:
        """1 if ``[s, e)`` should be logdirty, 0 if rw, -1 if only partly (force a split)."""
        if self.global_logdirty:
            return 1
        covered = 0
        for a, b in self.ld_ranges:
            lo, hi = max(a, s), min(b, e)
            if lo < hi:
                covered += hi - lo
        return 1 if covered == e - s else (0 if covered == 0 else -1)

    def desired_mask(self, t: int) -> int:
        """Entries of L1 table ``t`` whose recalculated type is logdirty."""
        return FULL_MASK if self.global_logdirty else _mask(self.ld_ranges, t)

    # -- queries -------------------------------------------------------------------------------
    def lookup(self, gfn: int) -> tuple[int, int, bool] | None:
        """(order, stored type, any recalc marker on the path) or None if not present."""
        r, b, t = gfn >> ORDER_512G, gfn >> ORDER_1G, gfn >> ORDER_2M
        c = self.chunks.get(r)
        if c is None:
            return None
        marked = bool(self.root_mark[r])
        i3, i2, i1 = b & 511, t & 511, gfn & 511
        k = int(c.kind[i3])
        marked |= bool(c.mark[i3])
        if k == NONE:
            return None
        if k == LEAF:
            return ORDER_1G, int(c.ptype[i3]), marked
        assert c.l2_kind is not None and c.l2_mark is not None and c.l2_ptype is not None
        k = int(c.l2_kind[i3, i2])
        marked |= bool(c.l2_mark[i3, i2])
        if k == NONE:
            return None
        if k == LEAF:
            return ORDER_2M, int(c.l2_ptype[i3, i2]), marked
        bit = 1 << i1
        if self.ram_mask(t) & bit:
            marked |= bool(self.l1mark(t) & bit)
            return ORDER_4K, LD if self.ld_mask(t) & bit else RW, marked
        if self.fixed_mask(t) & bit:
            return ORDER_4K, int(P2MType.mmio_direct), marked | bool(self.l1mark(t) & bit)
        return None

    def type_of(self, gfn: int) -> int:
        """The logical type a lookup reports (recalculated under a marker, as get_entry does);
        unmapped gfns read as mmio_dm, as Xen reports them."""
        got = self.lookup(gfn)
        if got is None:
            return int(P2MType.mmio_dm)
        _order, ptype, marked = got
        if marked and ptype in (RW, LD):
            return LD if self.desired(gfn, gfn + 1) else RW
        return ptype

    def counts(self) -> P2MCounts:
        l3 = len(self.chunks)
        l2 = sum(c.n_l2 for c in self.chunks.values())
        l1 = sum(c.n_l1 for c in self.chunks.values())
        g = sum(int(np.count_nonzero(c.kind == LEAF)) for c in self.chunks.values())
        m = sum(
            int(np.count_nonzero(c.l2_kind == LEAF))
            for c in self.chunks.values()
            if c.l2_kind is not None
        )
        k = ld = 0
        for c in self.chunks.values():
            if c.l1_ram is not None and c.l1_fixed is not None and c.l1_ld is not None:
                k += int(c.l1_ram.sum(dtype=np.int64) + c.l1_fixed.sum(dtype=np.int64))
                ld += int(c.l1_ld.sum(dtype=np.int64))
        return P2MCounts(int(self.root_allocated), l3, l2, l1, g, m, k, ld)

    def snapshot(self) -> tuple[object, ...]:
        """Everything observable, for equality tests."""
        parts: list[object] = [self.root_mark.tobytes(), self.global_logdirty,
                               tuple(self.ld_ranges), self.pages]
        for r in sorted(self.chunks):
            c = self.chunks[r]
            row: list[object] = [r, c.kind.tobytes(), c.ptype.tobytes(), c.mark.tobytes(),
                                 c.n_l2, c.n_l1]
            if c.n_l2:
                assert c.l2_kind is not None and c.l2_ptype is not None and c.l2_mark is not None
                row += [c.l2_kind.tobytes(), c.l2_ptype.tobytes(), c.l2_mark.tobytes()]
            if c.n_l1:
                assert c.l1_ram is not None and c.l1_fixed is not None and c.l1_ld is not None
                row += [c.l1_ram.tobytes(), c.l1_fixed.tobytes(), c.l1_ld.tobytes()]
            row += [tuple(sorted(c.wp.items())), tuple(sorted(c.l1mark.items()))]
            parts.append(tuple(row))
        return tuple(parts)
