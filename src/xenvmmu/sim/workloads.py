"""Operations for one guest, as the simulator issues them: STAND-INS for the model's.

**Status: stand-ins**, used for guests too large to build with the real model quickly
(:mod:`xenvmmu.sim.model_guest` wires the model's own operations; the scenarios pick one or
the other, ``ops="auto"|"model"|"stand-in"``). :class:`StandInGuest` produces operations
that follow the same step protocol (:mod:`xenvmmu.model.work`) with the *structure* of
Xen's code - where the
preemption checks are in each release, what one section contains - and *closed-form*
counts of work for a guest the attacker has shaped (every trie leaf present, the p2m
shattered to 4 KiB, the shadow pool full). Counts are derived from the guest's size with
the constants of :mod:`xenvmmu.model.constants`; they are estimates, not the model's exact
counts: tests compare them with the model on small guests.

Structure encoded (xen-paging.md sections 3-5, 7):

* PEEK/CLEAN walk: one section per L2 node (64 GiB of pfns, <= 512 leaves) after XSA-97,
  the whole walk as one section before; CLEAN then runs the mode's clean hook, never
  preemptible: HAP before 4.5 sweeps every p2m entry, from 4.5 marks <= 512 root entries;
  shadow blows every shadow away.
* OFF: the disable hook, then the trie free - per L2 node after XSA-97, in one go before.
* Dirty-VRAM tracking: O(frames) per call on HAP; on shadow a brute-force search over all
  shadows for each frame whose mapping is unknown. Never preemptible.
* Teardown: trie free (XSA-97), paging pool freed to the heap (per page from the 2015 fix,
  else in one go), p2m pages freed every 1024 with a check (XSA-410) or, before XSA-410,
  from the RCU callback of the final teardown, where nothing can preempt them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from xenvmmu.model.constants import (
    ENTRIES,
    ERESTART,
    L2_SHIFT,
    LEAF_BITS,
    ORDER_512G,
    P2M_TEARDOWN_BATCH,
    PAGE_SHIFT,
    PAGE_SIZE,
)
from xenvmmu.model.work import ZERO, Loop, Op, PreemptCheck, Work, WorkStep
from xenvmmu.versions import Profile

Paging = Literal["hap", "shadow"]
OpFactory = Callable[[bool], Op]

#: Pfns covered by one L2 node of the log-dirty trie (64 GiB).
L2_SPAN = 1 << L2_SHIFT
_TLB = Work(tlb_flushes=1)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Behaviour:
    """The XSA-97-related behaviours of one release (from :class:`versions.Profile`)."""

    logdirty_preemptible: bool
    hap_retype: Literal["sweep", "lazy"]
    pool_teardown_preemptible: bool
    p2m_free_preemptible: bool

    @classmethod
    def from_profile(cls, p: Profile) -> Behaviour:
        return cls(p.logdirty_preemptible, p.hap_retype, p.pool_teardown_preemptible,
                   p.p2m_free_preemptible)


@dataclass(frozen=True)
class GuestShape:
    """Sizes the stand-in operations need. Use :meth:`worst_case` or :meth:`migrating`.

    ``pages`` is the p2m size (what the toolstack passes as ``sc->pages``);
    ``p2m_leaf_entries`` the EPT/NPT leaf entries (4 KiB-mapped: one per page);
    ``p2m_tables`` the p2m table pages; ``dirty_leaves`` the log-dirty trie leaves present;
    ``rw_entries`` the p2m entries a CLEAN sweep re-protects; ``pool_pages`` the paging
    pool; ``shadows`` shadow pages in use (shadow mode).
    """

    pages: int
    vcpus: int
    paging: Paging
    pool_pages: int
    p2m_leaf_entries: int
    p2m_tables: int
    dirty_leaves: int
    rw_entries: int
    shadows: int

    @property
    def leaves(self) -> int:
        """Leaf positions of the trie walk (32768 pfns each)."""
        return _ceil(self.pages, LEAF_BITS)

    @property
    def l2_nodes(self) -> int:
        return _ceil(self.pages, L2_SPAN)

    @property
    def l3_nodes(self) -> int:
        return _ceil(self.l2_nodes, ENTRIES)

    @property
    def trie_pages(self) -> int:
        if self.dirty_leaves == 0:
            return 0
        return self.dirty_leaves + self.l2_nodes + self.l3_nodes + 1

    @property
    def root_entries(self) -> int:
        return min(ENTRIES, _ceil(self.pages, 1 << ORDER_512G))

    @classmethod
    def worst_case(cls, memory_bytes: int, vcpus: int, paging: Paging,
                   pool_pages: int) -> GuestShape:
        """A guest that maximises the operations' work: it has dirtied every 128 MiB
        region (all trie leaves present), shattered its p2m to 4 KiB and rewrites every
        page between two CLEANs, and (shadow) keeps its shadow pool full."""
        pages = max(1, memory_bytes >> PAGE_SHIFT)
        tables = _p2m_tables(pages)
        return cls(pages, vcpus, paging, pool_pages, pages, tables,
                   _ceil(pages, LEAF_BITS), pages, pool_pages if paging == "shadow" else 0)

    @classmethod
    def migrating(cls, memory_bytes: int, vcpus: int, paging: Paging, pool_pages: int,
                  wws_pages: int) -> GuestShape:
        """An ordinary guest under migration: 4 KiB-mapped p2m (log-dirty shatters what it
        touches; taken as all of it), a writable working set of ``wws_pages`` packed into
        as few 128 MiB regions as it needs, shadows filling half the pool (ASSUMED)."""
        pages = max(1, memory_bytes >> PAGE_SHIFT)
        wws = min(pages, wws_pages)
        return cls(pages, vcpus, paging, pool_pages, pages, _p2m_tables(pages),
                   max(1, _ceil(wws, LEAF_BITS)), wws,
                   pool_pages // 2 if paging == "shadow" else 0)


def _p2m_tables(pages: int) -> int:
    """Table pages of a 4-level, fully 4 KiB-mapped p2m."""
    n, level = 1, pages
    for _ in range(3):
        level = _ceil(level, ENTRIES)
        n += level
    return n


class GuestOps(Protocol):
    """What a scenario needs from a guest's operations (stand-in or real model)."""

    def guest_runs(self, dirty_pages: int | None) -> None:
        """Between operations: the guest writes ``dirty_pages`` pages of its working set
        (``None``: all of them, the attacker re-dirtying) and rebuilds its shadows."""

    def log_dirty(self, sub_op: Literal["clean", "peek"]) -> OpFactory: ...

    def enable(self) -> OpFactory: ...

    def off(self) -> OpFactory: ...

    def track_vram(self, frames: int) -> OpFactory: ...

    def relinquish(self) -> OpFactory: ...

    def final_teardown(self) -> Callable[[], Op]: ...


class StandInGuest:
    """STAND-IN operations for one guest (see the module docstring).

    Progress across continuations lives here, as Xen keeps it in the domain
    (``d->arch.paging.preempt``, ``d->arch.relmem``). Set ``dirty_leaves``/``rw_entries``
    of :attr:`shape` between calls (with :meth:`reshape`) to model a changing guest.
    """

    def __init__(self, shape: GuestShape, behaviour: Behaviour, *,
                 vram_unknown_fraction: float = 1.0) -> None:
        self.shape = shape
        self.beh = behaviour
        #: fraction of tracked VRAM frames whose single mapping the shadow code does not
        #: know, so it brute-forces it (ASSUMED worst case 1.0: the guest remaps them).
        self.vram_unknown_fraction = vram_unknown_fraction
        self._walk_next = 0  # next L2 region of an unfinished PEEK/CLEAN
        self._free_next = 0  # next L2 node of an unfinished trie free
        self._relmem = 0  # teardown phase: 0 trie, 1 pool, 2 p2m, 3 done
        self._pool_left = shape.pool_pages
        self._p2m_left = shape.p2m_tables
        self._vram_calls = 0

    def reshape(self, shape: GuestShape) -> None:
        self.shape = shape

    def guest_runs(self, dirty_pages: int | None) -> None:
        """The next CLEAN re-protects ``dirty_pages`` entries; the trie keeps every leaf it
        ever had. ``None`` keeps the worst-case shape as it is."""
        if dirty_pages is None:
            return
        s = self.shape
        self.shape = replace(s, rw_entries=dirty_pages,
                             dirty_leaves=max(s.dirty_leaves, _ceil(dirty_pages, LEAF_BITS)))

    # -- work counts -----------------------------------------------------------------------
    def _region_work(self, pfns: int, clean: bool) -> Work:
        """Walk of one L2 region of ``pfns`` pfns: copy its bits, map (and zero) leaves."""
        s = self.shape
        leaves = _ceil(pfns, LEAF_BITS)
        present = min(leaves, _ceil(leaves * s.dirty_leaves, max(1, s.leaves)))
        nbytes = pfns // 8
        present_bytes = min(nbytes, present * PAGE_SIZE)
        if self.beh.logdirty_preemptible:  # missing leaves: copy of the static zero page
            w = Work(bytes_copied=nbytes)
        else:  # missing leaves: clear_guest of the caller's buffer
            w = Work(bytes_copied=present_bytes, bytes_zeroed=nbytes - present_bytes)
        w = w + Work(pages_mapped=present + 1)
        if clean:
            w = w + Work(bytes_zeroed=present * PAGE_SIZE)
        return w

    def _retype_work(self, entries: int) -> Work:
        """``p2m_change_entry_type_global``: a full sweep (<= 4.4) or root marking (4.5+)."""
        s = self.shape
        if self.beh.hap_retype == "sweep":
            return Work(entries_read=s.p2m_tables * ENTRIES, entries_written=entries,
                        pages_mapped=s.p2m_tables) + _TLB
        return Work(entries_read=ENTRIES, entries_written=s.root_entries, pages_mapped=1) + _TLB

    def _blow_tables_work(self) -> Work:
        """``shadow_blow_tables``: unpin and destroy every shadow (512-entry scan each)."""
        n = self.shape.shadows
        pinned = _ceil(n, ENTRIES) + self.shape.vcpus
        return Work(entries_read=n * ENTRIES, shadows_destroyed=n, pages_freed=n,
                    shadows_unpinned=min(n, pinned)) + _TLB

    def _hook_work(self, entries: int) -> Work:
        if self.shape.paging == "hap":
            return self._retype_work(entries)
        return self._blow_tables_work()

    # -- operations --------------------------------------------------------------------------
    def log_dirty(self, sub_op: Literal["clean", "peek"]) -> OpFactory:
        """``XEN_DOMCTL_SHADOW_OP_CLEAN``/``PEEK`` (``paging_log_dirty_op``)."""
        return lambda resuming: self._log_dirty(sub_op == "clean", resuming)

    def _log_dirty(self, clean: bool, resuming: bool) -> Op:
        s = self.shape
        full, tail = divmod(s.pages, L2_SPAN)
        if not resuming:
            self._walk_next = 0
        if not self.beh.logdirty_preemptible:
            walk = self._region_work(L2_SPAN, clean) * full
            if tail:
                walk = walk + self._region_work(tail, clean)
            yield WorkStep(walk, "paging.log_dirty_op.walk", "paging")
        else:
            if self._walk_next < full:
                k = yield Loop(self._region_work(L2_SPAN, clean), full - self._walk_next,
                               PreemptCheck("log_dirty_op.i3"), "paging.log_dirty_op.walk",
                               "paging")
                if k is not None:
                    self._walk_next += int(k)
                    return -ERESTART
                self._walk_next = full
            if tail and self._walk_next == full:
                yield WorkStep(self._region_work(tail, clean), "paging.log_dirty_op.walk",
                               "paging")
                self._walk_next = full + 1
                if (yield PreemptCheck("log_dirty_op.i3")):
                    return -ERESTART
        self._walk_next = 0
        if clean:
            yield WorkStep(self._hook_work(s.rw_entries), "paging.clean_dirty_bitmap", "p2m")
        return 0

    def enable(self) -> OpFactory:
        """``paging_log_dirty_enable`` (global): the mode hook, never preemptible."""
        def op(_resuming: bool) -> Op:
            yield WorkStep(self._hook_work(self.shape.p2m_leaf_entries),
                           "paging.enable_log_dirty", "p2m")
            return 0
        return op

    def off(self) -> OpFactory:
        """``XEN_DOMCTL_SHADOW_OP_OFF``: disable hook, then free the trie."""
        def op(resuming: bool) -> Op:
            if not resuming:
                self._free_next = 0
                yield WorkStep(self._hook_work(self.shape.rw_entries),
                               "paging.disable_log_dirty", "p2m")
            rc = yield from self._free_trie()
            return rc
        return op

    def _node_free_work(self) -> Work:
        s = self.shape
        per_node = _ceil(s.dirty_leaves, max(1, s.l2_nodes))
        return Work(pages_freed=per_node + 1, pages_mapped=1)

    def _free_trie(self) -> Generator[WorkStep | PreemptCheck | Loop, bool | int | None, int]:
        """``paging_free_log_dirty_bitmap``: per L2 node with a check after XSA-97."""
        s = self.shape
        if s.dirty_leaves == 0:
            return 0
        nodes = s.l2_nodes
        if not self.beh.logdirty_preemptible:
            yield WorkStep(Work(pages_freed=s.trie_pages, pages_mapped=nodes + s.l3_nodes + 1),
                           "paging.free_log_dirty_bitmap", "paging")
            return 0
        if self._free_next < nodes:
            k = yield Loop(self._node_free_work(), nodes - self._free_next,
                           PreemptCheck("free_log_dirty_bitmap.i3"),
                           "paging.free_log_dirty_bitmap", "paging")
            if k is not None:
                self._free_next += int(k)
                return -ERESTART
            self._free_next = nodes
        yield WorkStep(Work(pages_freed=s.l3_nodes + 1, pages_mapped=1),
                       "paging.free_log_dirty_bitmap", "paging")
        self._free_next = 0
        return 0

    def track_vram(self, frames: int) -> OpFactory:
        """``HVMOP_track_dirty_vram`` for ``frames`` frames (<= 1 GiB): never preemptible."""
        def op(_resuming: bool) -> Op:
            s = self.shape
            self._vram_calls += 1
            if s.paging == "hap":
                # paging_log_dirty_range: per frame a p2m lookup and, if written, a retype
                w = Work(entries_read=4 * frames, entries_written=frames) + _TLB
            else:
                unknown = round(frames * self.vram_unknown_fraction)
                w = Work(entries_read=frames + unknown * s.shadows * ENTRIES) + _TLB
                if self._vram_calls == 1:
                    w = w + self._blow_tables_work()
            yield WorkStep(w, "hvm.track_dirty_vram", "p2m" if s.paging == "hap" else "paging")
            return 0
        return op

    def relinquish(self) -> OpFactory:
        """``XEN_DOMCTL_destroydomain`` -> ``domain_relinquish_resources`` (paging part)."""
        def op(_resuming: bool) -> Op:
            b = self.beh
            if self._relmem == 0:
                rc = yield from self._free_trie()
                if rc:
                    return rc
                self._relmem = 1
            if self._relmem == 1 and self._pool_left:
                per_page = Work(heap_pages_freed=1)
                if self.shape.paging == "shadow":
                    per_page = per_page + Work(shadows_destroyed=1, entries_read=ENTRIES)
                if b.pool_teardown_preemptible:
                    k = yield Loop(per_page, self._pool_left,
                                   PreemptCheck("set_allocation", general=True),
                                   "paging.set_allocation(0)", "paging")
                    if k is not None:
                        self._pool_left -= int(k)
                        return -ERESTART
                else:
                    yield WorkStep(per_page * self._pool_left, "paging.set_allocation(0)",
                                   "paging")
                self._pool_left = 0
            self._relmem = 2
            if b.p2m_free_preemptible and self._p2m_left:
                batches, rest = divmod(self._p2m_left, P2M_TEARDOWN_BATCH)
                batch = Work(pages_freed=P2M_TEARDOWN_BATCH, heap_pages_freed=P2M_TEARDOWN_BATCH)
                if batches:
                    k = yield Loop(batch, batches, PreemptCheck("p2m_teardown", general=True),
                                   "p2m.teardown", "p2m")
                    if k is not None:
                        self._p2m_left -= int(k) * P2M_TEARDOWN_BATCH
                        return -ERESTART
                if rest:
                    yield WorkStep(Work(pages_freed=rest, heap_pages_freed=rest),
                                   "p2m.teardown", "p2m")
                self._p2m_left = 0
            self._relmem = 3
            return 0
        return op

    def final_teardown(self) -> Callable[[], Op]:
        """``paging_final_teardown`` from the RCU callback: the p2m pages still held
        (all of them before XSA-410), freed without any preemption point."""
        def op() -> Op:
            left = self._p2m_left
            self._p2m_left = 0
            if left:
                yield WorkStep(Work(pages_freed=left, heap_pages_freed=left), "p2m.teardown",
                               "p2m")
            else:
                yield WorkStep(ZERO, "p2m.teardown", "p2m")
            return 0
        return op
