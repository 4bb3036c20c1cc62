"""A domain's paging state: pool, p2m, log-dirty trie, shadows, and the XSA-97 saved progress.

This is ``struct domain``'s ``arch.paging`` part plus what the operations need to know about the
domain (paused? dying? which Xen release runs it). The release's behaviour comes from the
:class:`~xenvmmu.versions.PagingBehaviour` held here; model code never compares version numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xenvmmu.model.layout import Layout
from xenvmmu.model.p2m import P2M, Flavour
from xenvmmu.model.pool import PagingPool
from xenvmmu.model.shadow import ShadowPool
from xenvmmu.model.trie import LogDirtyTrie
from xenvmmu.versions import Paging, PagingBehaviour, Vendor


@dataclass
class PreemptState:
    """``d->arch.paging.preempt`` (added by XSA-97): who left which op unfinished, and where.

    ``dom`` is the *calling* domain (the October 2014 rework keyed it on the domain, not the
    vCPU); for PEEK/CLEAN ``done`` counts pfns already reported, for OFF it holds the negated
    return code of the disable hook, to be reported when freeing completes."""

    dom: int | None = None
    op: int = 0
    i4: int = 0
    i3: int = 0
    done: int = 0


@dataclass
class VramTracking:
    """``d->arch.hvm_domain.dirty_vram``: the tracked range and (shadow) the remembered shadow
    L1 entry per frame, summarised by how many frames are in each state."""

    begin: int
    nr: int
    known_single: int = 0  # one mapping whose shadow entry is remembered (cheap D-bit test)
    unknown_single: int = 0  # one mapping, entry unknown -> brute-force search (shadow)
    multi: int = 0  # several mappings: reported dirty, not tracked
    clean_since: bool = False  # last_dirty == -1 (write access already removed)
    calls: int = 0


@dataclass
class Domain:
    """One HVM guest as the paging code sees it."""

    behaviour: PagingBehaviour
    layout: Layout
    paging: Paging = "hap"
    vendor: Vendor = "intel"
    vcpus: int = 1
    domid: int = 1
    pool: PagingPool = field(init=False)
    p2m: P2M = field(init=False)
    trie: LogDirtyTrie = field(init=False)
    shadow: ShadowPool | None = field(init=False)
    log_dirty: bool = False  # PG_log_dirty
    preempt: PreemptState = field(default_factory=PreemptState)
    paused: int = 0  # domain_pause() nesting
    dying: bool = False
    monitor_pages: int = 0  # HAP monitor tables held in the pool (one per vCPU)
    vram: VramTracking | None = None
    teardown_done: bool = False

    def __post_init__(self) -> None:
        self.pool = PagingPool(self.paging, self.vcpus, self.layout.ram_pages)
        self.p2m = P2M(self.layout, self.flavour, self.pool)
        self.trie = LogDirtyTrie(self.pool)
        self.shadow = ShadowPool(self.pool, self.vcpus) if self.paging == "shadow" else None

    @property
    def flavour(self) -> Flavour:
        if self.paging == "shadow":
            return "pt"
        return "ept" if self.vendor == "intel" else "npt"

    @property
    def hap(self) -> bool:
        return self.paging == "hap"

    def pause(self) -> None:
        self.paused += 1

    def unpause(self) -> None:
        assert self.paused > 0, "unbalanced domain_unpause"
        self.paused -= 1

    def state(self) -> tuple[object, ...]:
        """Everything an operation may change, for "same result" comparisons."""
        shadow = None if self.shadow is None else self.shadow.snapshot()
        p = self.preempt
        # with no pending op, Xen leaves the cursor fields stale and ignores them
        cursor = (p.dom, p.op, p.i4, p.i3, p.done) if p.dom is not None else None
        return (
            self.p2m.snapshot(),
            self.trie.snapshot(),
            self.pool.state(),
            shadow,
            self.log_dirty,
            cursor,
            self.paused,
            self.monitor_pages,
        )
