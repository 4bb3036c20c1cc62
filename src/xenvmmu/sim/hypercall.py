"""Hypercalls as processes: run a model operation on a pCPU, continuation by continuation.

An operation follows the step protocol of :mod:`xenvmmu.model.work`. The executor:

* charges every ``WorkStep`` its cost (``CostProfile.ns``) as one stretch of simulated time
  in XEN mode - nothing can interrupt it;
* answers a ``PreemptCheck`` from the pCPU's state at that instant
  (:meth:`PCpu.preempt_pending`); every check point ends a non-preemptible section;
* handles a ``Loop`` analytically: the first check that fires is the first iteration that
  ends at or after the instant a softirq (or event) became pending, so a loop of 2^30
  iterations costs two SimPy events, and gives the same answer as the expanded
  ``[WorkStep, PreemptCheck]`` form;
* on ``-ERESTART`` goes out through the exit path (softirqs run, the scheduler may switch)
  and, once the vCPU runs again, issues the continuation (``make(resuming=True)``) as the
  guest re-executing the hypercall would.

Around the operation it applies Xen's control-path rules: the global domctl lock taken with
a trylock (busy: continuation, retried while the vCPU spins preemptibly); the target paused
for the whole call; the XSA-97 ``-EBUSY`` rule for a conflicting paging op.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from simpy.events import Event, Process

from xenvmmu.model.constants import ERESTART
from xenvmmu.model.work import Loop, Op, PreemptCheck, Work, WorkStep
from xenvmmu.sim.domain import DomctlLock, PendingPagingOp, SimDomain
from xenvmmu.sim.errors import ProtocolError

if TYPE_CHECKING:
    from xenvmmu.sim.host import Host
    from xenvmmu.sim.metrics import _OpAcc
    from xenvmmu.sim.pcpu import PCpu
    from xenvmmu.sim.vcpu import VCpu


@dataclass(frozen=True)
class Call:
    """One hypercall a vCPU issues, and what the hypervisor does around its operation.

    ``make(resuming)`` builds the operation for one entry: ``False`` for the first, ``True``
    for every later one (continuation, or re-issue after ``-EAGAIN``).
    ``domctl``: runs under the global domctl lock. ``pause_target``: the target is paused
    from the first entry until the final return (PEEK/CLEAN after XSA-97 stay paused across
    continuations). ``preempt_key``: the sub-op name recorded in the target's pending-op
    state (the XSA-97 ``-EBUSY`` rule); None for ops that do not use it.
    ``on_restart``: ``"continuation"`` (``hypercall_create_continuation``) or ``"eagain"``
    (``domain_kill`` turns -ERESTART into -EAGAIN and the toolstack calls again).
    """

    name: str
    make: Callable[[bool], Op]
    target: SimDomain | None = None
    domctl: bool = True
    pause_target: bool = False
    preempt_key: str | None = None
    on_restart: Literal["continuation", "eagain"] = "continuation"


@dataclass(frozen=True)
class CallResult:
    """The outcome of one :class:`Call` (times in ns)."""

    name: str
    rc: int
    issued_ns: float
    returned_ns: float
    entries: int
    continuations: int
    lock_busy: int
    max_section_ns: float

    @property
    def elapsed_ns(self) -> float:
        return self.returned_ns - self.issued_ns


class _Section:
    """The open non-preemptible section of one hypervisor entry on one pCPU."""

    def __init__(self, hv: Hypervisor, acc: _OpAcc, pcpu: PCpu) -> None:
        self.hv, self.acc, self.pcpu = hv, acc, pcpu
        self.entered = self.start = hv.env.now
        self.max = 0.0
        hv.open_sections[pcpu.index] = self

    def record(self, length: float) -> None:
        self.max = max(self.max, length)
        self.hv.host.recorder.section(self.acc, self.pcpu.index, length)

    def boundary(self, at: float) -> None:
        self.record(at - self.start)
        self.start = at

    def close(self) -> None:
        now = self.hv.env.now
        self.record(now - self.start)
        self.acc.xen_ns += now - self.entered
        self.hv.open_sections.pop(self.pcpu.index, None)


class Hypervisor:
    """Runs operations for vCPUs (and from softirq context) on a :class:`Host`."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.env = host.env
        self.lock = DomctlLock(host.env)
        self.entry_ns = host.params.hypercall_entry_ns
        self.open_sections: dict[int, _Section] = {}
        self._ns_cache: dict[Work, float] = {}
        self._cache_for = host.cost

    def ns(self, work: Work) -> float:
        """``host.cost.ns(work)``, memoised: operations repeat the same Work many times."""
        if self._cache_for is not self.host.cost:  # the profile was replaced
            self._ns_cache.clear()
            self._cache_for = self.host.cost
        t = self._ns_cache.get(work)
        if t is None:
            if len(self._ns_cache) >= 4096:
                self._ns_cache.clear()
            t = self._ns_cache[work] = self.host.cost.ns(work)
        return t

    # -- hypercalls --------------------------------------------------------------------------
    def call(self, vcpu: VCpu, call: Call) -> Generator[Event, Any, CallResult]:
        """Issue ``call`` from ``vcpu`` and follow it to its final return code."""
        env, pcpu, rec = self.env, vcpu.pcpu, self.host.recorder
        acc = rec.op(call.name, pcpu.index)
        issued = env.now
        resuming = paused = False
        entries = conts = busy = 0
        max_sec = 0.0
        target = call.target
        while True:
            yield from pcpu.wait_running(vcpu)
            pcpu.enter_xen(call.name)
            sec = _Section(self, acc, pcpu)
            entries += 1
            acc.entries += 1
            if self.entry_ns > 0:
                yield env.timeout(self.entry_ns)
            # do_domctl / paging_domctl_continuation: trylock, else a continuation. The
            # spinning vCPU retries at once when the lock is released (its retry loop is
            # already running), while the releaser needs a whole entry to come back.
            while call.domctl and not self.lock.try_acquire(f"{vcpu.name}:{call.name}"):
                busy += 1
                conts += 1
                acc.lock_busy += 1
                acc.continuations += 1
                max_sec = max(max_sec, sec.max)
                sec.close()
                pcpu.exit_to_guest(vcpu)
                t = env.now
                yield from vcpu.spin_until(self.lock.released())
                yield from pcpu.wait_running(vcpu)
                rec.lock_wait(env.now - t)
                pcpu.enter_xen(call.name)
                sec = _Section(self, acc, pcpu)
                entries += 1
                acc.entries += 1
            rc = 0
            if call.preempt_key is not None and target is not None:
                rc = target.check_paging_op(vcpu.domain.name, call.preempt_key, resuming)
            if rc == 0:
                if call.pause_target and target is not None and not paused:
                    target.pause()
                    paused = True
                rc = yield from self._run(pcpu, vcpu, call.make(resuming), sec, True)
                if call.preempt_key is not None and target is not None:
                    target.preempt = (PendingPagingOp(vcpu.domain.name, call.preempt_key)
                                      if rc == -ERESTART else None)
            if rc != -ERESTART and paused and target is not None:
                target.unpause()
                paused = False
            if call.domctl:
                self.lock.release()
            sec.close()
            max_sec = max(max_sec, sec.max)
            pcpu.exit_to_guest(vcpu)
            if rc != -ERESTART:
                rec.finished(acc, rc, env.now - issued)
                return CallResult(call.name, rc, issued, env.now, entries, conts, busy, max_sec)
            conts += 1
            acc.continuations += 1
            resuming = True

    # -- softirq context ---------------------------------------------------------------------
    def run_in_softirq(self, pcpu: PCpu, name: str, op: Op, *,
                       done: Event | None = None) -> Process:
        """Run ``op`` on ``pcpu`` from softirq context (an RCU callback): it takes the pCPU
        at once and nothing can preempt it; its preemption checks never fire."""
        acc = self.host.recorder.op(name, pcpu.index)
        pcpu.enter_xen(name)
        sec = _Section(self, acc, pcpu)
        acc.entries += 1

        def body() -> Generator[Event, Any, int]:
            start = self.env.now
            rc = yield from self._run(pcpu, None, op, sec, False)
            sec.close()
            self.host.recorder.finished(acc, rc, self.env.now - start)
            pcpu.exit_to_guest(None)
            if done is not None:
                done.succeed(rc)
            return rc

        return self.env.process(body())

    # -- the step protocol -------------------------------------------------------------------
    def _run(self, pcpu: PCpu, vcpu: VCpu | None, op: Op, sec: _Section,
             preemptible: bool) -> Generator[Event, Any, int]:
        env = self.env
        reply: bool | int | None = None
        try:
            step = op.send(None)
            while True:
                if isinstance(step, WorkStep):
                    ns = self.ns(step.work)
                    if ns > 0:
                        yield env.timeout(ns)
                    reply = None
                elif isinstance(step, PreemptCheck):
                    reply = False
                    if preemptible:
                        sec.boundary(env.now)
                        reply = pcpu.preempt_pending(vcpu)
                elif isinstance(step, Loop):
                    reply = yield from self._loop(pcpu, vcpu, step, sec, preemptible)
                else:
                    raise ProtocolError(f"operation yielded {step!r}, not a Step")
                step = op.send(reply)
        except StopIteration as stop:
            rc = stop.value
        if not isinstance(rc, int) or isinstance(rc, bool) or rc > 0:
            raise ProtocolError(f"operation returned {rc!r}, not 0 or a negative errno")
        return rc

    def _loop(self, pcpu: PCpu, vcpu: VCpu | None, step: Loop, sec: _Section,
              preemptible: bool) -> Generator[Event, Any, int | None]:
        env = self.env
        n = step.count
        if n < 0:
            raise ProtocolError(f"Loop with count {n}")
        if n == 0:
            return None
        d = self.ns(step.work)
        t0 = env.now
        if not preemptible:
            if d > 0:
                yield env.timeout(n * d)
            return None
        first = pcpu.first_pending_at(vcpu)
        if first is None and d > 0:
            watch = pcpu.watch()
            yield env.any_of([env.timeout(n * d), watch])
            pcpu.unwatch(watch)
            first = pcpu.first_pending_at(vcpu)
        k = None if first is None else first_firing_iteration(t0, d, first, n)
        done = n if k is None else k
        end = t0 + done * d
        if end > env.now:
            yield env.timeout(end - env.now)
        sec.boundary(t0 + d)
        if done > 1:
            sec.record(d)
        sec.start = end
        return k


def first_firing_iteration(t0: float, d: float, first: float, n: int) -> int:
    """The smallest ``k`` in ``[1, n]`` with ``t0 + k*d >= first``: the iteration after
    which a check sees a pending softirq that became pending at ``first``."""
    if d <= 0 or first <= t0:
        return 1
    k = max(1, min(n, math.ceil((first - t0) / d)))
    while k > 1 and t0 + (k - 1) * d >= first:
        k -= 1
    while k < n and t0 + k * d < first:
        k += 1
    return k
