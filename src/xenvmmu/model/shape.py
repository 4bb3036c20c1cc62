"""Closed-form counts of a guest's paging state (no per-page loops), for the analytic estimates.

Given a :class:`~xenvmmu.model.build.DomainSpec`, :class:`Shape` computes what
:func:`~xenvmmu.model.build.build_domain` would produce - p2m tables and leaves, trie nodes per
64 GiB region, pool counters, shadow counts - from the few ranges of the layout. Supported
states: log-dirty off and clean, log-dirty on and clean, log-dirty on with every RAM page
written ("all", the worst case); no directly-mapped MMIO.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from xenvmmu.model.constants import (
    ENTRIES,
    L2_SHIFT,
    LEAF_BITS,
    LEAF_SHIFT,
    ORDER_1G,
    ORDER_2M,
    ORDER_512G,
    PAGE_SIZE,
    SHADOW_MIN_PAGES_PER_VCPU,
)
from xenvmmu.model.layout import Layout, Span, Superpages, count_blocks, decompose, hvm_layout
from xenvmmu.model.spec import DomainSpec


def _clip(spans: tuple[Span, ...], lo: int, hi: int) -> list[Span]:
    return [(max(s, lo), min(e, hi)) for s, e in spans if s < hi and e > lo]


@dataclass(frozen=True)
class SlotShape:
    """One i3 step of the log-dirty walk (a 64 GiB region): ``k`` leaf slots walked, ``leaves``
    of them present, the last one ``last_bytes`` long; ``multiplicity`` identical regions."""

    k: int
    leaves: int
    last_bytes: int
    last_present: bool
    multiplicity: int

    @property
    def node(self) -> bool:
        return self.leaves > 0

    @property
    def nbytes(self) -> int:
        return PAGE_SIZE * (self.k - 1) + self.last_bytes

    @property
    def present_bytes(self) -> int:
        if self.last_present:
            return PAGE_SIZE * (self.leaves - 1) + self.last_bytes
        return PAGE_SIZE * self.leaves


class Shape:
    """Counts of one guest state, computed from the layout's ranges. Immutable once built;
    :meth:`of` caches one per spec."""

    @staticmethod
    @functools.lru_cache(maxsize=1 << 14)
    def of(spec: DomainSpec) -> Shape:
        """The (cached) shape of ``spec``."""
        return Shape(spec)

    def __init__(self, spec: DomainSpec) -> None:
        if spec.mmio_direct:
            raise ValueError("closed forms do not cover directly-mapped MMIO")
        if spec.dirty not in ("none", "all") or (spec.dirty == "all" and not spec.log_dirty):
            raise ValueError("closed forms cover dirty 'none', or 'all' with log-dirty on")
        self.spec = spec
        self.layout: Layout = hvm_layout(spec.ram_bytes, mmio_hole_bytes=spec.mmio_hole_bytes)
        ram = self.layout.ram
        self.ram_pages = self.layout.ram_pages
        self.p2m_size = self.layout.p2m_size
        sp: Superpages = "4k" if spec.paging == "shadow" else spec.superpages
        runs = [r for s, e in ram for r in decompose(s, e, sp)]
        small = [(r.start, r.end) for r in runs if r.order < ORDER_1G]
        four_k = [(r.start, r.end) for r in runs if r.order == 0]
        self.l3 = count_blocks(ram, ORDER_512G)
        self.dirty = spec.dirty == "all"
        if self.dirty:  # every RAM superpage shattered by the writes
            self.l2 = count_blocks(ram, ORDER_1G)
            self.l1 = count_blocks(ram, ORDER_2M)
            self.leaves_1g = self.leaves_2m = 0
        else:
            self.l2 = count_blocks(small, ORDER_1G)
            self.l1 = count_blocks(four_k, ORDER_2M)
            self.leaves_1g = sum(r.leaves for r in runs if r.order == ORDER_1G)
            self.leaves_2m = sum(r.leaves for r in runs if r.order == ORDER_2M)
        big = (self.leaves_1g << ORDER_1G) + (self.leaves_2m << ORDER_2M)
        self.leaves_4k = self.ram_pages - big
        self.p2m_tables = 1 + self.l3 + self.l2 + self.l1
        # trie
        if self.dirty:
            self.t_l3 = count_blocks(ram, L2_SHIFT + 9)
            self.t_l2 = count_blocks(ram, L2_SHIFT)
            self.t_leaves = count_blocks(ram, LEAF_SHIFT)
            self.trie_pages = 1 + self.t_l3 + self.t_l2 + self.t_leaves
        else:
            self.t_l3 = self.t_l2 = self.t_leaves = self.trie_pages = 0
        # pool (set_allocation before any p2m page exists, then monitor tables, p2m, trie)
        self.pool_pages = spec.pool_pages
        if spec.paging == "shadow" and self.pool_pages > 0:  # sh_set_allocation's floor
            floor = (spec.vcpus + 1) * SHADOW_MIN_PAGES_PER_VCPU + self.ram_pages // 256
            self.pool_pages = max(self.pool_pages, floor)
        self.p2m_pages = self.p2m_tables + self.trie_pages
        self.total_pages = self.pool_pages - self.p2m_pages
        self.free_pages = self.total_pages - spec.vcpus
        if self.free_pages < 0:
            raise ValueError("the paging pool is too small for this guest")
        # shadows: the free pool filled (ShadowPool.fill)
        self.shadows = 0
        self.tops = self.sh_l3 = self.sh_l2 = self.sh_l1 = 0
        if spec.paging == "shadow":
            n = self.free_pages if spec.shadow_pages is None else spec.shadow_pages
            tops = min(max(spec.vcpus, n // 256), n)
            self.sh_l3 = min(2 * tops, n - tops)
            self.sh_l2 = min(4 * tops, n - tops - self.sh_l3)
            self.sh_l1 = n - tops - self.sh_l3 - self.sh_l2
            self.tops, self.shadows = tops, n
            self.free_pages -= n

    def ram_pages_in(self, lo: int, hi: int) -> int:
        """RAM pages among the gfns ``[lo, hi)``."""
        return sum(e - s for s, e in _clip(self.layout.ram, lo, hi))

    def refilled_l1(self) -> int:
        """L1 shadows after ``shadow_blow_tables`` and the guest refilling its pool: the
        vCPUs' in-use top-level shadows survive the blow, every freed page is filled again
        (``ShadowPool.fill``: one top per 256 pages, at least one per vCPU; two L3 and four
        L2 per top; the rest L1)."""
        if self.spec.paging != "shadow":
            return 0
        in_use = min(self.tops, self.spec.vcpus)
        free = self.free_pages + self.shadows - in_use
        tops = min(max(self.spec.vcpus, free // 256), free)
        l3 = min(2 * tops, free - tops)
        l2 = min(4 * tops, free - tops - l3)
        return free - tops - l3 - l2

    # -- the log-dirty walk -----------------------------------------------------------------------
    def slots(self) -> list[SlotShape]:
        """The i3 steps of a walk over ``p2m_size`` pfns, grouped into identical classes; the
        first element is region 0 alone (it carries the walk's entry work)."""
        p = self.p2m_size
        if p > (1 << (L2_SHIFT + 9)):
            raise ValueError("closed forms cover guests below 32 TiB of pfn space")
        m = -(-p // (1 << L2_SHIFT))
        ram = self.layout.ram if self.dirty else ()
        special = {0, m - 1}
        for s, e in ram:
            special |= {s >> L2_SHIFT, (e - 1) >> L2_SHIFT}
        out: list[SlotShape] = []
        full_interior = 0
        for s, e in ram:
            a, b = (s >> L2_SHIFT) + 1, ((e - 1) >> L2_SHIFT) - 1
            if b >= a:
                full_interior += b - a + 1 - len([j for j in special if a <= j <= b])
        for j in sorted(special):
            lo, hi = j << L2_SHIFT, (j + 1) << L2_SHIFT
            k = min(ENTRIES, -(-(p - lo) // LEAF_BITS))
            last_lo = lo + (k - 1) * LEAF_BITS
            last_bytes = min(PAGE_SIZE, (p - last_lo + 7) >> 3)
            leaves = count_blocks(_clip(ram, lo, hi), LEAF_SHIFT)
            last_present = bool(_clip(ram, last_lo, last_lo + LEAF_BITS))
            out.append(SlotShape(k, leaves, last_bytes, last_present, 1))
        if full_interior:
            out.append(SlotShape(ENTRIES, ENTRIES, PAGE_SIZE, True, full_interior))
        empty = m - len(special) - full_interior
        if empty:
            out.append(SlotShape(ENTRIES, 0, PAGE_SIZE, False, empty))
        return out

    @property
    def walk_slots(self) -> int:
        return -(-self.p2m_size // (1 << L2_SHIFT))

    def trie_l2_nodes(self) -> list[tuple[int, int]]:
        """(leaves in the node, how many such nodes) for the trie free, region 0's node first."""
        ram = self.layout.ram if self.dirty else ()
        nodes: dict[int, int] = {}
        special: set[int] = set()
        for s, e in ram:
            special |= {s >> L2_SHIFT, (e - 1) >> L2_SHIFT}
        first: list[tuple[int, int]] = []
        for j in sorted(special):
            n = count_blocks(_clip(ram, j << L2_SHIFT, (j + 1) << L2_SHIFT), LEAF_SHIFT)
            if j == 0:
                first = [(n, 1)]
            else:
                nodes[n] = nodes.get(n, 0) + 1
        full = self.t_l2 - len(special) if ram else 0
        if full:
            nodes[ENTRIES] = nodes.get(ENTRIES, 0) + full
        return first + sorted(nodes.items())
