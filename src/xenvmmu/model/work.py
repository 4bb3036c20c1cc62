"""Units of work and the step protocol every model operation follows.

**Work is counted, time is derived.** A model operation never knows how long anything takes;
it reports *what it did* as a :class:`Work` (entries rewritten, bytes copied, pages freed, ...).
``xenvmmu.costs`` turns a ``Work`` into nanoseconds; ``xenvmmu.sim`` decides when a preemption
check fires. Changing a cost constant therefore never changes a bitmap.

The step protocol
-----------------
An *operation* is a generator of type :data:`Op` = ``Generator[Step, Reply, int]``. It models
one entry into the hypervisor (one hypercall, or one continuation of it) and yields, in order:

``WorkStep(work, what, lock)``
    Work done since the previous step. The consumer charges its cost. The value sent back is
    ignored (send ``None``). Several WorkSteps may follow each other; a WorkStep may aggregate any
    amount of work **that contains no preemption check** (e.g. the 512 leaf slots of one log-dirty
    L2 node, or a whole pre-XSA-97 walk). Consumers must not assume any fixed granularity.
``PreemptCheck(site, general)``
    A point where this Xen release calls ``hypercall_preempt_check()`` (or
    ``general_preempt_check()`` when ``general`` is true). The consumer sends back ``True`` if the
    check fires (a softirq is pending or the calling vCPU has an event), else ``False``/``None``.
    When it fires the operation saves its progress in the domain (as Xen does), finishes with
    ``-ERESTART`` and the caller must issue the continuation (a new operation with
    ``resuming=True``) to go on.
``Loop(work, count, check, what, lock)``
    A compact form of ``count`` repetitions of ``[WorkStep(work), check]`` (a loop that checks
    after *every* iteration, such as ``set_allocation`` or XSA-410's ``p2m_teardown``). The
    consumer sends back ``k`` (``1 <= k <= count``) to make the check after iteration ``k`` fire,
    or ``None`` if none fires. Exactly ``k`` (or ``count``) iterations are then done.

The generator's return value (``StopIteration.value``) is Xen's return code: ``0``, or a
negative errno from :mod:`xenvmmu.model.constants` (``-ERESTART`` means "continue me").

A *non-preemptible section* is the work between two consecutive check points (or between the
start/end of a call and the nearest check point). Check points are boundaries whether or not
they fire. :mod:`xenvmmu.model.runner` drives operations and splits them into sections.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, fields
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Work:
    """Counts of elementary work done by Xen's paging code. All fields are non-negative.

    entries_read
        Table or node slots examined without being written: p2m entries scanned by a sweep,
        log-dirty node slots walked, shadow entries scanned by a brute-force search.
    entries_written
        p2m (EPT/NPT) entries rewritten or marked for recalculation; trie slots reset to
        INVALID_MFN; shadow entries cleared.
    bytes_copied
        Bytes copied to the caller's buffer (``copy_to_guest``), including copies of the static
        zero page for missing leaves (post-fix walk).
    bytes_zeroed
        Bytes zero-filled: leaves cleared by CLEAN (``clear_page``), new trie nodes, caller
        buffer ranges cleared for missing leaves (``clear_guest``, pre-fix walk).
    pages_mapped
        ``map_domain_page`` calls (trie nodes and leaves, p2m tables).
    pages_allocated / pages_freed
        Pages taken from / returned to the domain's paging pool (p2m tables, trie nodes,
        shadows, monitor tables).
    heap_pages_allocated / heap_pages_freed
        Pages moved between the paging pool and Xen's heap (``alloc_domheap_page`` /
        ``free_domheap_page``): pool resizing and teardown.
    dirty_marks
        Calls of ``paging_mark_dirty`` (each walks the trie: 4 maps, counted in pages_mapped).
    shadows_unpinned / shadows_destroyed
        Shadow pages unpinned / destroyed (each destruction scans its 512 entries,
        counted in entries_read).
    tlb_flushes
        Domain-wide TLB flushes / INVEPT (``flush_tlb_mask``, ``ept_sync_domain``).
    vm_exits
        Guest exits handled on the guest's own vCPU (EPT violation / misconfiguration, NPT
        fault, shadow fault): only the fault paths report these.
    lock_round_trips
        A lock taken and released around one entry write (NPT: ``hap_write_p2m_entry`` takes
        the paging lock and tests the dirty CPU mask for every entry it writes).
    refcount_drops
        Atomic reference drops on a frame's ``page_info`` (``shadow_put_page_from_l1e`` for
        every present entry of a destroyed L1 shadow).
    hash_hops
        Pointer hops along a shadow hash chain (``shadow_hash_delete`` searches the chain of a
        destroyed shadow for its predecessor).
    evtchn_closes
        Event channels closed (``evtchn_close``: the port's lock, unbinding, notification of a
        bound interdomain peer).
    grant_releases
        Grant mappings released at domain destruction (``gnttab_release_mappings``: the
        granting domain's lookup and grant-table lock, the active entry's lock, its pin and
        status update, the page reference dropped).
    bytes_scanned
        Bytes of guest memory read and compared (the PoD zero check: ``p2m_pod_zero_check``
        reads a page word by word until it finds a non-zero one).
    """

    entries_read: int = 0
    entries_written: int = 0
    bytes_copied: int = 0
    bytes_zeroed: int = 0
    pages_mapped: int = 0
    pages_allocated: int = 0
    pages_freed: int = 0
    heap_pages_allocated: int = 0
    heap_pages_freed: int = 0
    dirty_marks: int = 0
    shadows_unpinned: int = 0
    shadows_destroyed: int = 0
    tlb_flushes: int = 0
    vm_exits: int = 0
    lock_round_trips: int = 0
    refcount_drops: int = 0
    hash_hops: int = 0
    evtchn_closes: int = 0
    grant_releases: int = 0
    bytes_scanned: int = 0

    def __add__(self, other: Work) -> Work:
        if not isinstance(other, Work):
            return NotImplemented
        if other is ZERO:
            return self
        if self is ZERO:
            return other
        s, o = self, other
        return Work(
            s.entries_read + o.entries_read,
            s.entries_written + o.entries_written,
            s.bytes_copied + o.bytes_copied,
            s.bytes_zeroed + o.bytes_zeroed,
            s.pages_mapped + o.pages_mapped,
            s.pages_allocated + o.pages_allocated,
            s.pages_freed + o.pages_freed,
            s.heap_pages_allocated + o.heap_pages_allocated,
            s.heap_pages_freed + o.heap_pages_freed,
            s.dirty_marks + o.dirty_marks,
            s.shadows_unpinned + o.shadows_unpinned,
            s.shadows_destroyed + o.shadows_destroyed,
            s.tlb_flushes + o.tlb_flushes,
            s.vm_exits + o.vm_exits,
            s.lock_round_trips + o.lock_round_trips,
            s.refcount_drops + o.refcount_drops,
            s.hash_hops + o.hash_hops,
            s.evtchn_closes + o.evtchn_closes,
            s.grant_releases + o.grant_releases,
            s.bytes_scanned + o.bytes_scanned,
        )

    def __mul__(self, k: int) -> Work:
        s = self
        return Work(
            s.entries_read * k,
            s.entries_written * k,
            s.bytes_copied * k,
            s.bytes_zeroed * k,
            s.pages_mapped * k,
            s.pages_allocated * k,
            s.pages_freed * k,
            s.heap_pages_allocated * k,
            s.heap_pages_freed * k,
            s.dirty_marks * k,
            s.shadows_unpinned * k,
            s.shadows_destroyed * k,
            s.tlb_flushes * k,
            s.vm_exits * k,
            s.lock_round_trips * k,
            s.refcount_drops * k,
            s.hash_hops * k,
            s.evtchn_closes * k,
            s.grant_releases * k,
            s.bytes_scanned * k,
        )

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        s = self
        return bool(
            s.entries_read
            or s.entries_written
            or s.bytes_copied
            or s.bytes_zeroed
            or s.pages_mapped
            or s.pages_allocated
            or s.pages_freed
            or s.heap_pages_allocated
            or s.heap_pages_freed
            or s.dirty_marks
            or s.shadows_unpinned
            or s.shadows_destroyed
            or s.tlb_flushes
            or s.vm_exits
            or s.lock_round_trips
            or s.refcount_drops
            or s.hash_hops
            or s.evtchn_closes
            or s.grant_releases
            or s.bytes_scanned
        )

    def as_dict(self) -> dict[str, int]:
        """Non-zero fields only (for printing and JSON)."""
        return {n: getattr(self, n) for n in FIELDS if getattr(self, n)}

    def weighted(self, weights: Mapping[str, float]) -> float:
        """``sum(weight[field] * count)``; fields missing from ``weights`` weigh 0."""
        return float(sum(weights.get(n, 0.0) * getattr(self, n) for n in FIELDS))

    def dominates(self, other: Work) -> bool:
        """True if every field is >= the other's (then it costs at least as much)."""
        return all(getattr(self, n) >= getattr(other, n) for n in FIELDS)


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Work))
ZERO = Work()

#: A unit-agnostic weight for comparing sections when no cost profile is at hand: roughly one
#: unit per cache line touched or per table entry. ``xenvmmu.costs`` supplies real weights.
PROXY_WEIGHTS: Mapping[str, float] = {
    "entries_read": 1.0,
    "entries_written": 2.0,
    "bytes_copied": 1 / 64,
    "bytes_zeroed": 1 / 64,
    "pages_mapped": 2.0,
    "pages_allocated": 4.0,
    "pages_freed": 4.0,
    "heap_pages_allocated": 8.0,
    "heap_pages_freed": 8.0,
    "dirty_marks": 4.0,
    "shadows_unpinned": 4.0,
    "shadows_destroyed": 8.0,
    "tlb_flushes": 100.0,
    "vm_exits": 50.0,
    "lock_round_trips": 4.0,
    "refcount_drops": 4.0,
    "hash_hops": 1.0,
    "evtchn_closes": 20.0,
    "grant_releases": 20.0,
    "bytes_scanned": 1 / 64,
}


@dataclass(frozen=True, slots=True)
class WorkStep:
    """Work done since the previous step. ``what`` names the Xen code (``"logdirty.walk"``),
    ``lock`` the innermost lock held while doing it (``"paging"``, ``"p2m"`` or ``None``)."""

    work: Work
    what: str
    lock: str | None = None


@dataclass(frozen=True, slots=True)
class PreemptCheck:
    """A preemption check of this release. ``site`` names it (``"log_dirty_op.i3"``)."""

    site: str
    general: bool = False


@dataclass(frozen=True, slots=True)
class Loop:
    """``count`` iterations of ``[work, check]``; see the module docstring for the reply."""

    work: Work
    count: int
    check: PreemptCheck
    what: str
    lock: str | None = None

    @property
    def total(self) -> Work:
        return self.work * self.count


Step: TypeAlias = WorkStep | PreemptCheck | Loop
#: Sent back into an operation: ignored for WorkStep, bool for PreemptCheck, int|None for Loop.
Reply: TypeAlias = "bool | int | None"
Op: TypeAlias = Generator[Step, "bool | int | None", int]


def fired(reply: bool | int | None) -> bool:
    """Interpret the reply to a :class:`PreemptCheck`."""
    return bool(reply)
