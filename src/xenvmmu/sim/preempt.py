"""Xen's preemption test, ``hypercall_preempt_check()``, as seen from one pCPU.

The test (xen-project/xen xen/include/xen/sched.h @ RELEASE-4.4.0) is true when a softirq
is pending on this CPU, or the calling vCPU has an event to deliver. While the pCPU is in
XEN mode nothing clears either condition, so once true it stays true until the work returns
to its exit path: the first instant it became true (:meth:`PreemptSignal.since`) decides
which check point of an operation fires. That lets the executor
(:mod:`~xenvmmu.sim.xenwork`) run a loop of 2^30 iterations analytically: it waits for
either the loop's end or :meth:`PreemptSignal.watch`, then computes the iteration at which
the check first saw the signal.
"""

from __future__ import annotations

from typing import Protocol

from simpy import Environment
from simpy.events import Event

from xenvmmu.sim.softirq import Softirqs


class EventTarget(Protocol):
    """The calling vCPU as the test sees it: an event-channel upcall pending, and since when."""

    @property
    def events_pending(self) -> bool: ...

    @property
    def events_since(self) -> float | None: ...


class PreemptSignal:
    """``hypercall_preempt_check()`` on one pCPU, and who is waiting for it to turn true."""

    def __init__(self, env: Environment, softirqs: Softirqs) -> None:
        self.env = env
        self.softirqs = softirqs
        self._watchers: list[Event] = []

    def pending(self, vcpu: EventTarget | None) -> bool:
        """The test for ``vcpu`` (None: the idle vCPU, which has no events)."""
        return bool(self.softirqs.pending) or (vcpu is not None and vcpu.events_pending)

    def since(self, vcpu: EventTarget | None) -> float | None:
        """Since when :meth:`pending` has been true, or None if it is false."""
        times = []
        s = self.softirqs
        if s.pending and s.pending_since is not None:
            times.append(s.pending_since)
        if vcpu is not None and vcpu.events_pending and vcpu.events_since is not None:
            times.append(vcpu.events_since)
        return min(times) if times else None

    def watch(self) -> Event:
        """An event that succeeds at the next softirq raise or event for the running vCPU."""
        ev = self.env.event()
        self._watchers.append(ev)
        return ev

    def unwatch(self, ev: Event) -> None:
        if ev in self._watchers:
            self._watchers.remove(ev)

    def notify(self) -> None:
        """A softirq was raised, or the running vCPU got an event: wake the watchers."""
        watchers, self._watchers = self._watchers, []
        for ev in watchers:
            if not ev.triggered:
                ev.succeed()
