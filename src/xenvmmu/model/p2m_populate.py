"""Populating a new domain's p2m from its layout (the domain builder's part).

libxc's HVM builder asks for 1 GiB, then 2 MiB, then 4 KiB pages, and each order-N
``set_p2m_entry`` allocates the tables on its path from the paging pool
(xen-project/xen tools/libxc/xc_hvm_build_x86.c, xen/arch/x86/mm/p2m.c @ RELEASE-4.4.0).
Runs of leaves are written a 1 GiB block at a time with numpy slices.

Below :mod:`~xenvmmu.model.p2m` (whose ``P2M.populate`` calls :func:`populate`): what it
needs of the table is the :class:`P2MTables` protocol, the entries come from
:mod:`~xenvmmu.model.p2m_chunk`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from xenvmmu.model.constants import ENTRIES, ORDER_1G, ORDER_2M, P2MType
from xenvmmu.model.layout import Layout, Superpages
from xenvmmu.model.p2m_chunk import LEAF, NONE, RW, TABLE, Chunk, Flavour, P2MError


class P2MTables(Protocol):
    """What populating uses of a :class:`~xenvmmu.model.p2m.P2M`: its tables and the pool."""

    layout: Layout
    flavour: Flavour
    chunks: dict[int, Chunk]
    root_allocated: bool
    pages: int

    def lend(self, n: int) -> bool:
        """Take ``n`` table pages from the pool, all or nothing."""
        ...

    def init_root(self) -> None: ...


def populate(p2m: P2MTables, superpages: Superpages) -> int:
    """Map the layout with the largest leaves allowed; returns table pages allocated."""
    if not p2m.root_allocated:
        p2m.init_root()
    before = p2m.pages
    sp: Superpages = "4k" if p2m.flavour == "pt" else superpages
    for run, is_ram in p2m.layout.runs(sp):
        ptype = RW if is_ram else int(P2MType.mmio_direct)
        if run.order == ORDER_1G:
            b, b_end = run.start >> ORDER_1G, run.end >> ORDER_1G
            while b < b_end:
                stop = min(b_end, ((b >> 9) + 1) << 9)
                c = _chunk(p2m, b >> 9)
                c.kind[b & 511 : ((stop - 1) & 511) + 1] = LEAF
                c.ptype[b & 511 : ((stop - 1) & 511) + 1] = ptype
                b = stop
        elif run.order == ORDER_2M:
            t, t_end = run.start >> ORDER_2M, run.end >> ORDER_2M
            while t < t_end:
                b = t >> 9
                stop = min(t_end, (b + 1) << 9)
                c = _l2_table(p2m, b)
                assert c.l2_kind is not None and c.l2_ptype is not None
                c.l2_kind[b & 511, t & 511 : ((stop - 1) & 511) + 1] = LEAF
                c.l2_ptype[b & 511, t & 511 : ((stop - 1) & 511) + 1] = ptype
                t = stop
        else:
            _populate_4k(p2m, run.start, run.end, is_ram)
    return p2m.pages - before


def _chunk(p2m: P2MTables, r: int) -> Chunk:
    c = p2m.chunks.get(r)
    if c is None:
        if not p2m.lend(1):
            raise P2MError("paging pool too small for the p2m")
        c = p2m.chunks[r] = Chunk()
    return c


def _l2_table(p2m: P2MTables, b: int) -> Chunk:
    c = _chunk(p2m, b >> 9)
    i3 = b & 511
    if c.kind[i3] != TABLE:
        assert c.kind[i3] == NONE
        if not p2m.lend(1):
            raise P2MError("paging pool too small for the p2m")
        c.kind[i3] = TABLE
        c.ensure_l2()
        c.n_l2 += 1
    return c


def _populate_4k(p2m: P2MTables, s: int, e: int, is_ram: bool) -> None:
    t = s >> ORDER_2M
    while t << ORDER_2M < e:
        b = t >> 9
        c = _l2_table(p2m, b)
        c.ensure_l1()
        assert c.l2_kind is not None and c.l1_ram is not None and c.l1_fixed is not None
        # all L1 tables of this 1G block touched by [s, e)
        t_end = min(((b + 1) << 9), ((e - 1) >> ORDER_2M) + 1)
        i3 = b & 511
        lo, hi = t & 511, ((t_end - 1) & 511) + 1
        new = int(np.count_nonzero(c.l2_kind[i3, lo:hi] == NONE))
        if not p2m.lend(new):
            raise P2MError("paging pool too small for the p2m")
        c.l2_kind[i3, lo:hi] = TABLE
        c.n_l1 += new
        counts = np.full(hi - lo, ENTRIES, np.int16)
        first_lo = max(s, t << ORDER_2M) - (t << ORDER_2M)
        counts[0] -= first_lo
        last_hi = min(e, t_end << ORDER_2M) - ((t_end - 1) << ORDER_2M)
        counts[-1] -= ENTRIES - last_hi
        if hi - lo == 1:
            counts[0] = last_hi - first_lo
        target = c.l1_ram if is_ram else c.l1_fixed
        target[i3, lo:hi] += counts
        t = t_end
