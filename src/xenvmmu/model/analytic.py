"""The one closed form of every paging operation: total work and every non-preemptible section.

For a guest described by a :class:`~xenvmmu.model.spec.DomainSpec` (RAM, vCPUs, paging mode,
superpages, pool size; dirty state "none" or "all") and a release's
:class:`~xenvmmu.versions.PagingBehaviour`, each function returns an :class:`Estimate` without
building anything: the layout's few ranges give every count (:class:`~xenvmmu.model.shape.Shape`).

How: each function writes the operation's *step program* in compact form - the same
WorkStep / PreemptCheck / Loop vocabulary the generators yield, with identical iterations
folded into a Loop - and the runner's own section logic splits it. ``Estimate.calls`` keeps the
program, one tuple of steps per hypercall (or RCU callback), so the simulator can *replay* it
(:mod:`xenvmmu.sim.closed_form`) for guests too large to build. Tests hold that an estimate equals
driving the real generator (never preempted) section for section, and the auditor prices the
same estimates with a cost profile: there is no other formula for these operations.

Every public function is cached on its (hashable) arguments: fleets repeat guest shapes and the
auditor's mitigations re-estimate many sizes.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from xenvmmu.model.constants import ENTRIES, P2M_TEARDOWN_BATCH, PAGE_SIZE, SHADOW_HASH_BUCKETS
from xenvmmu.model.evtchn import EVTCHN_CHECK_EVERY
from xenvmmu.model.maptrack import mapkind_work
from xenvmmu.model.pod import (
    POD_SWEEP_STRIDE,
    lookup_work,
    sweep_flush,
    sweep_limit,
    zero_check_work,
)
from xenvmmu.model.runner import Sections, longest
from xenvmmu.model.shadow import destroy_all_work
from xenvmmu.model.shape import Shape, SlotShape
from xenvmmu.model.spec import DomainSpec
from xenvmmu.model.work import PROXY_WEIGHTS, ZERO, Loop, PreemptCheck, Step, Work, WorkStep
from xenvmmu.versions import PagingBehaviour, Vendor

_cached = functools.lru_cache(maxsize=1 << 14)

_CHECK = PreemptCheck("analytic")
#: The end of one hypercall (or continuation) and the start of the next: a section boundary.
_CALL_END = PreemptCheck("call_end")


@dataclass(frozen=True)
class Estimate:
    """Work of one operation run to completion without being preempted."""

    op: str
    total: Work
    sections: tuple[tuple[Work, int], ...]
    checks: int
    #: The step program, one tuple per call (hypercall, continuation-free; the teardown's
    #: second call is the RCU-time final teardown).
    calls: tuple[tuple[Step, ...], ...] = field(default=(), compare=False, repr=False)

    def longest(self, weights: Mapping[str, float] = PROXY_WEIGHTS) -> Work:
        """The heaviest non-preemptible section under ``weights`` (e.g. ns per unit)."""
        return longest(self.sections, weights)

    def call(self, i: int) -> Estimate:
        """Call ``i`` alone (the teardown's relinquish is 0, its RCU-time final teardown 1)."""
        return _estimate(self.op, list(self.calls[i]))

    def longest_ns(self, ns_per_unit: Mapping[str, float]) -> float:
        """The heaviest section's cost under ``ns_per_unit`` (a cost profile's prices)."""
        return max((w.weighted(ns_per_unit) for w, _ in self.sections), default=0.0)

    def counter(self) -> Counter[Work]:
        c: Counter[Work] = Counter()
        for w, n in self.sections:
            c[w] += n
        return c


def _estimate(op: str, steps: list[Step]) -> Estimate:
    secs = Sections()
    total = ZERO
    checks = 0
    calls: list[tuple[Step, ...]] = []
    call: list[Step] = []
    for st in steps:
        if isinstance(st, WorkStep):
            secs.add(st.work)
            total = total + st.work
        elif st is _CALL_END:
            secs.finish()
            calls.append(tuple(call))
            call = []
            continue
        elif isinstance(st, PreemptCheck):
            secs.close()
            checks += 1
        else:
            if st.count == 0:
                continue
            secs.add(st.work)
            secs.close(st.work, st.count - 1)
            total = total + st.work * st.count
            checks += st.count
        call.append(st)
    secs.finish()
    calls.append(tuple(call))
    return Estimate(op, total, tuple(secs.runs), checks, tuple(calls))


def _w(work: Work) -> WorkStep:
    return WorkStep(work, "analytic")


def _repeat(work: Work, n: int, check: bool) -> list[Step]:
    if n <= 0:
        return []
    if check:
        return [Loop(work, n, _CHECK, "analytic")]
    return [_w(work * n)]


@_cached
def min_pool_pages(spec: DomainSpec) -> int:
    """The smallest paging pool, in pages, that holds this state's p2m, log-dirty bitmap and
    monitor tables (with no page left for shadows)."""
    sh = Shape(replace(spec, pool_mb=None, pool_kib=1 << 62, shadow_pages=0))
    return sh.p2m_pages + spec.vcpus


# -- hooks -----------------------------------------------------------------------------------
def _retype(sh: Shape, beh: PagingBehaviour, to_logdirty: bool, marked: bool) -> Work:
    """``p2m_change_entry_type_global`` (sweep or root marking), flush included."""
    if beh.hap_retype == "sweep":
        tables = sh.p2m_tables
        if to_logdirty:  # rw -> logdirty: every RAM leaf that is rw now
            writes = 0 if (sh.spec.log_dirty and not sh.dirty) else _leaves(sh)
        else:  # logdirty -> rw: leaves still logdirty
            writes = _leaves(sh) if (sh.spec.log_dirty and not sh.dirty) else 0
        locks = writes if sh.spec.vendor == "amd" else 0  # NPT: hap_write_p2m_entry
        return Work(entries_read=ENTRIES * tables, entries_written=writes, pages_mapped=tables,
                    tlb_flushes=1, lock_round_trips=locks)
    writes = 0 if marked else sh.l3
    return Work(entries_read=ENTRIES, entries_written=writes, pages_mapped=1,
                tlb_flushes=1 if writes else 0,
                lock_round_trips=writes if sh.spec.vendor == "amd" else 0)


def _leaves(sh: Shape) -> int:
    return sh.leaves_1g + sh.leaves_2m + sh.leaves_4k


def _blow(sh: Shape) -> Work:
    if sh.shadows == 0:
        return Work(tlb_flushes=1)
    in_use = min(sh.tops, sh.spec.vcpus)
    destroyed = sh.shadows - in_use
    return Work(
        shadows_unpinned=sh.tops,
        entries_read=ENTRIES * in_use + ENTRIES * destroyed,
        entries_written=(sh.sh_l3 * in_use) // sh.tops,
        tlb_flushes=1,
        shadows_destroyed=destroyed,
        pages_freed=destroyed,
    ) + destroy_all_work(sh.sh_l1, sh.shadows, in_use)


def _clean_hook(sh: Shape, beh: PagingBehaviour) -> Work:
    if sh.spec.paging == "shadow":
        return _blow(sh)
    marked = beh.hap_retype == "lazy" and sh.spec.log_dirty and not sh.dirty
    return _retype(sh, beh, True, marked) + Work(tlb_flushes=1)


# -- PEEK / CLEAN --------------------------------------------------------------------------------
def _slot_work(s: SlotShape, clean: bool, bitmap: bool, fixed: bool) -> Work:
    missing = s.nbytes - s.present_bytes
    copied = (s.nbytes if fixed else s.present_bytes) if bitmap else 0
    zeroed = (0 if fixed or not bitmap else missing) + (PAGE_SIZE * s.leaves if clean else 0)
    return Work(
        entries_read=s.k if s.node else 0,
        bytes_copied=copied,
        bytes_zeroed=zeroed,
        pages_mapped=s.leaves + (1 if s.node else 0),
    )


@_cached
def clean(
    spec: DomainSpec, beh: PagingBehaviour, *, peek: bool = False, bitmap: bool = True,
    hook: bool = True,
) -> Estimate:
    """One CLEAN (or PEEK) over ``p2m_size`` pfns, as the toolstack issues it. ``hook=False``
    leaves out CLEAN's mode hook (the walk alone, XSA-97's part)."""
    sh = Shape.of(spec)
    fixed = beh.logdirty_preemptible
    do_clean = not peek
    slots = sh.slots()
    top = sh.trie_pages > 0
    enter = Work(pages_mapped=(1 if top else 0) + (1 if sh.t_l3 else 0))
    steps: list[Step] = [_w(enter)]
    if fixed:
        first, rest = slots[0], slots[1:]
        steps.append(_w(_slot_work(first, do_clean, bitmap, True)))
        steps.append(_CHECK)
        for s in rest:
            steps += _repeat(_slot_work(s, do_clean, bitmap, True), s.multiplicity, True)
        if sh.walk_slots == ENTRIES:  # no i3 check after slot 511
            raise ValueError("closed forms cover guests below 32 TiB of pfn space")
        steps.append(_CHECK)  # the i4 check
    else:
        for s in slots:
            steps.append(_w(_slot_work(s, do_clean, bitmap, False) * s.multiplicity))
    if do_clean and hook:
        steps.append(_w(_clean_hook(sh, beh)))
    return _estimate("peek" if peek else "clean", steps)


# -- ENABLE / OFF ---------------------------------------------------------------------------------
@_cached
def enable(spec: DomainSpec, beh: PagingBehaviour) -> Estimate:
    """Log-dirty ENABLE on a guest that has it off (spec.log_dirty False, dirty "none")."""
    sh = Shape.of(spec)
    if spec.log_dirty:
        return _estimate("enable", [])
    if spec.paging == "shadow":
        return _estimate("enable", [_w(_blow(sh))])
    work = _retype(sh, beh, True, False) + Work(tlb_flushes=1)
    return _estimate("enable", [_w(work)])


def _trie_free(sh: Shape, beh: PagingBehaviour, first: Work, to_heap: bool = False) -> list[Step]:
    fixed = beh.logdirty_preemptible

    def freed(n: int) -> Work:
        return Work(pages_freed=n, heap_pages_freed=n if to_heap else 0)

    if sh.trie_pages == 0:
        return [_w(first)] if first else []
    wr = 1 if fixed else 0
    steps: list[Step] = [_w(first + Work(pages_mapped=1, entries_read=ENTRIES))]
    scan = Work(pages_mapped=1, entries_read=ENTRIES)
    for i, (leaves, n) in enumerate(sh.trie_l2_nodes()):
        node = freed(leaves + 1) + Work(pages_mapped=1, entries_read=ENTRIES, entries_written=wr)
        if i == 0:
            steps.append(_w(scan + node))
            if fixed:
                steps.append(_CHECK)
            n -= 1
        steps += _repeat(node, n, fixed)
    steps.append(_w(freed(1) + Work(entries_written=wr)))  # the L3 node
    if fixed:
        steps.append(_CHECK)
    steps.append(_w(freed(1)))  # the top
    return steps


def _disable_hook(sh: Shape, beh: PagingBehaviour) -> Work:
    if sh.spec.paging == "shadow":
        return Work(entries_written=sh.spec.vcpus)
    marked = beh.hap_retype == "lazy" and not sh.dirty
    return _retype(sh, beh, False, marked)


@_cached
def disable(spec: DomainSpec, beh: PagingBehaviour, *, hook: bool = True) -> Estimate:
    """Log-dirty OFF: the disable hook, then freeing the trie (``hook=False``: the free
    alone, XSA-97's part)."""
    sh = Shape.of(spec)
    if not spec.log_dirty:
        return _estimate("off", [])
    return _estimate("off", _trie_free(sh, beh, _disable_hook(sh, beh) if hook else ZERO))


@_cached
def mode_hooks(dirty: DomainSpec, clean_spec: DomainSpec, beh: PagingBehaviour) -> Estimate:
    """The paging mode's log-dirty hooks alone, one call each: ENABLE's on ``clean_spec``
    (log-dirty off), CLEAN's and OFF's on ``dirty`` (log-dirty on). HAP: the global p2m type
    change (a full sweep before 4.5.0); shadow: ``shadow_blow_tables`` (ENABLE, CLEAN)."""
    sh = Shape.of(dirty)
    steps: list[Step] = list(enable(clean_spec, beh).calls[0])
    steps += [_CALL_END, _w(_clean_hook(sh, beh)), _CALL_END, _w(_disable_hook(sh, beh))]
    return _estimate("mode_hooks", steps)


# -- pool ------------------------------------------------------------------------------------
@_cached
def set_allocation(spec: DomainSpec, beh: PagingBehaviour, mb: int) -> Estimate:
    """SET_ALLOCATION to ``mb`` MiB (HAP; shadow growing) - a check after every page."""
    sh = Shape.of(spec)
    target = max(0, (mb << 8) - sh.p2m_pages)
    if spec.paging == "shadow" and target > 0:
        target = max(target, (spec.vcpus + 1) * 128 + sh.ram_pages // 256)
    n = target - sh.total_pages
    if n < 0 and spec.paging == "shadow" and -n > sh.free_pages:
        raise ValueError("shrinking a full shadow pool evicts shadows: not in closed form")
    work = Work(heap_pages_allocated=1) if n > 0 else Work(heap_pages_freed=1)
    return _estimate("set_allocation", _repeat(work, abs(n), True))


@_cached
def teardown(spec: DomainSpec, beh: PagingBehaviour) -> Estimate:
    """Relinquish-time teardown run to completion, then the RCU-time final teardown."""
    sh = Shape.of(spec)
    to_heap = beh.p2m_free_preemptible
    v = spec.vcpus
    steps: list[Step] = []
    total = sh.total_pages
    if to_heap:
        steps.append(_w(Work(bytes_zeroed=PAGE_SIZE)))
        batches, tail = divmod(sh.p2m_tables - 1, P2M_TEARDOWN_BATCH)
        steps += _repeat(
            Work(pages_freed=P2M_TEARDOWN_BATCH, heap_pages_freed=P2M_TEARDOWN_BATCH),
            batches, True,
        )
        if tail:
            steps.append(_w(Work(pages_freed=tail, heap_pages_freed=tail)))
    if spec.paging == "shadow":
        steps.append(_w(Work(entries_written=v)))
    steps.append(_w(Work(pages_freed=v, heap_pages_freed=v if to_heap else 0)))
    if to_heap:
        total -= v
    steps += _pool_free(sh, beh, total, to_heap)
    steps += _trie_free(sh, beh, ZERO, to_heap)
    steps.append(_CALL_END)
    # final teardown (never preemptible)
    if to_heap:
        steps.append(_w(Work(pages_freed=1, heap_pages_freed=1)))
    else:
        final = Work(heap_pages_freed=sh.trie_pages) if sh.trie_pages else ZERO
        final = final + Work(pages_freed=sh.p2m_tables) + Work(heap_pages_freed=sh.p2m_tables)
        steps.append(_w(final))
    return _estimate("teardown", steps)


def _pool_free(sh: Shape, beh: PagingBehaviour, total: int, to_heap: bool) -> list[Step]:
    """``set_allocation(d, 0)`` at relinquish time: free pages first, then shadow trees.

    With no free page left, ``_shadow_prealloc`` unpins the oldest pinned top-level shadow and
    destroys it with its share of the lower levels (the vCPUs were detached, so no top is in
    use): a tree owns itself plus ``ceil(lower / pinned)`` lower shadows. Evicting in turn
    splits the ``L`` lower shadows over the ``P`` trees as evenly as possible - ``L mod P``
    trees of ``L // P + 1`` lower shadows, then the rest of ``L // P`` - so two groups of
    identical evictions describe all of them."""
    pre = beh.pool_teardown_preemptible
    one = Work(heap_pages_freed=1)
    if sh.spec.paging == "hap" or sh.shadows == 0:
        return _repeat(one, total, pre)
    steps: list[Step] = _repeat(one, total - sh.shadows, pre)
    trees, lower = sh.tops, sh.shadows - sh.tops
    q, r = divmod(lower, trees)
    for count, owned in ((r, q + 2), (trees - r, q + 1)):
        if count == 0:
            continue
        tree = Work(shadows_unpinned=1, entries_read=ENTRIES * owned,
                    shadows_destroyed=owned, pages_freed=owned)
        if to_heap:  # a dying domain's evicted pages go straight to the heap (XSA-410)
            steps += _repeat(tree, count, pre)
        elif pre:  # each page of the tree is then freed, with a check after each
            steps.append(Loop(tree + one, count, _CHECK, "analytic"))
            steps += _repeat(one, count * (owned - 1), True)
        else:
            steps.append(_w((tree + one * owned) * count))
    return steps


# -- dirty-VRAM tracking -----------------------------------------------------------------------
@_cached
def track_vram(
    spec: DomainSpec, beh: PagingBehaviour, frames: int, begin: int, *,
    unknown_frames: int | None = None,
) -> Estimate:
    """``HVMOP_track_dirty_vram`` of ``frames`` frames from gfn ``begin``: two calls, never
    preemptible in any release - the call that starts tracking the range and a repeated
    call after the guest wrote every frame (the one a device model makes on every refresh).

    * shadow: the first call blows every shadow away and forgets each frame's mapping
      (``-ENODATA``); the guest then refills its shadow pool; a repeated call looks up each
      frame and, for the ``unknown_frames`` (default: all) whose single mapping it does not
      know, scans the hash table and every L1 shadow (``sh_remove_all_mappings``).
    * HAP: a repeated call retypes each written frame back to log-dirty (a 4-level lookup and
      one entry write per frame, one flush). The first call's range retype depends on how
      the range is mapped (superpages split on the way) and is not in closed form: it is
      reported as the repeated call, which it does not exceed by more than a few table pages.
    """
    sh = Shape.of(spec)
    nbytes = (frames + 7) >> 3
    if spec.paging == "hap":
        ram = sh.ram_pages_in(begin, begin + frames)
        npt = spec.vendor == "amd"
        per_entry_sync = not npt and not beh.ept_flush_deferred  # EPT before 4.7
        steady = Work(entries_read=4 * ram, entries_written=ram, bytes_copied=nbytes,
                      tlb_flushes=1 + (ram if per_entry_sync else 0),
                      lock_round_trips=ram if npt else 0)
        return _estimate("vram_track", [_w(steady), _CALL_END, _w(steady)])
    unknown = frames if unknown_frames is None else min(unknown_frames, frames)
    known = frames - unknown
    first = _blow(sh) + Work(bytes_zeroed=8 * frames)
    l1 = sh.refilled_l1()
    search = Work(entries_read=SHADOW_HASH_BUCKETS + ENTRIES * l1, entries_written=1)
    steady = (Work(entries_read=frames + known, entries_written=known, bytes_copied=2 * nbytes)
              + search * unknown + Work(tlb_flushes=1 if unknown else 0))
    return _estimate("vram_track", [_w(first), _CALL_END, _w(steady)])


# -- event-channel reset (XSA-344) -------------------------------------------------------------
@_cached
def evtchn_reset(ports: int, beh: PagingBehaviour) -> Estimate:
    """``evtchn_reset()`` of a domain with ``ports`` valid ports (see
    :mod:`~xenvmmu.model.evtchn`): one section before the fix; with it, ports 1..64, then a
    check after every 64th port, the last ports unchecked."""
    if not beh.evtchn_reset_preemptible:
        return _estimate("evtchn_reset", [_w(Work(evtchn_closes=ports))])
    rest = ports - 1
    first = min(rest, EVTCHN_CHECK_EVERY)
    steps: list[Step] = [_w(Work(evtchn_closes=first))] if first else []
    if first == EVTCHN_CHECK_EVERY:
        steps.append(_CHECK)
        full, tail = divmod(rest - first, EVTCHN_CHECK_EVERY)
        steps += _repeat(Work(evtchn_closes=EVTCHN_CHECK_EVERY), full, True)
        if tail:
            steps.append(_w(Work(evtchn_closes=tail)))
    return _estimate("evtchn_reset", steps)


# -- PoD emergency sweep (XSA-150) -------------------------------------------------------------
@_cached
def pod_sweep(gfns: int, ram: int, vendor: Vendor, beh: PagingBehaviour) -> Estimate:
    """``p2m_pod_emergency_sweep()`` from gfn ``gfns`` down to 1 with the top ``ram`` gfns
    populated and nothing reclaimable (see :mod:`~xenvmmu.model.pod`): one section before the
    fix; with it, the gfns down to one below the limit, then a check after every gfn (a
    zero check of 16 pages in every 16th RAM gfn's section), then the last batch and flush."""
    if not 0 <= ram <= gfns:
        raise ValueError("RAM gfns must be between 0 and the gfns swept")
    tail = ram % POD_SWEEP_STRIDE
    end = ((zero_check_work(tail, vendor, beh) if tail else ZERO)
           + sweep_flush(vendor, beh, ram))
    limit = sweep_limit(gfns)
    if not beh.pod_sweep_bounded or limit <= 1:
        body = lookup_work(gfns) + zero_check_work(ram - tail, vendor, beh)
        return _estimate("pod_sweep", [_w(body + end)] if body + end else [])
    first = gfns - limit + 2  # gfns .. limit-1: the check comes after gfn limit-1
    batches = min(ram, first) // POD_SWEEP_STRIDE
    steps: list[Step] = [_w(lookup_work(first)
                            + zero_check_work(batches * POD_SWEEP_STRIDE, vendor, beh)), _CHECK]
    # one section per later gfn; the k-th gfn swept completes a batch when k <= ram, k % 16 == 0
    full = ram // POD_SWEEP_STRIDE - batches
    steps += _repeat(lookup_work(1) + zero_check_work(POD_SWEEP_STRIDE, vendor, beh), full, True)
    steps += _repeat(lookup_work(1), gfns - first - full, True)
    if end:
        steps.append(_w(end))
    return _estimate("pod_sweep", steps)


# -- grant maptrack (XSA-380) ------------------------------------------------------------------
@_cached
def maptrack_release(entries: int, per_page: int, beh: PagingBehaviour) -> Estimate:
    """``gnttab_release_mappings()`` of ``entries`` handles, all in use, ``per_page`` to a
    page (see :mod:`~xenvmmu.model.maptrack`): one section before the fix; with it, the top
    page, then a page freed and a check before each page below, and the last page freed."""
    if entries % per_page:
        raise ValueError("the maptrack table is whole pages")
    if not beh.maptrack_bounded:
        return _estimate("maptrack_release",
                         [_w(Work(entries_read=entries, grant_releases=entries))])
    pages = entries // per_page
    if pages == 0:
        return _estimate("maptrack_release", [])
    # every page is one section: its handles released, then the page freed (the check
    # between two pages comes right after the free)
    page = Work(entries_read=per_page, grant_releases=per_page, heap_pages_freed=1)
    return _estimate("maptrack_release", [*_repeat(page, pages - 1, True), _w(page)])


@_cached
def mapkind(entries: int, beh: PagingBehaviour) -> Estimate:
    """One ``mapkind()`` search of ``entries`` handles (one section; constant with the fix)."""
    return _estimate("maptrack_mapkind", [_w(mapkind_work(entries, beh))])
