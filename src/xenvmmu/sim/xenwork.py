"""Hypervisor work on a pCPU: a model operation run step by step, and its sections.

An operation follows the step protocol of :mod:`xenvmmu.model.work`. :class:`XenWork`:

* charges every ``WorkStep`` its cost (``CostProfile.ns``) as one stretch of simulated time
  in XEN mode - nothing can interrupt it;
* answers a ``PreemptCheck`` from the pCPU's state at that instant
  (:meth:`PreemptSignal.pending <xenvmmu.sim.preempt.PreemptSignal.pending>`); every check
  point ends a non-preemptible section;
* handles a ``Loop`` analytically: the first check that fires is the first iteration that
  ends at or after the instant a softirq (or event) became pending, so a loop of 2^30
  iterations costs two SimPy events, and gives the same answer as the expanded
  ``[WorkStep, PreemptCheck]`` form;
* runs an operation from softirq context (an RCU callback), where no check ever fires.

A :class:`Section` measures the stretches between check points of one hypervisor entry and
reports each to the :class:`~xenvmmu.sim.metrics.Recorder`. Hypercalls, continuations and
the control-path rules around an operation are :mod:`~xenvmmu.sim.hypercall`'s.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

from simpy import Environment
from simpy.events import Event, Process

from xenvmmu.costs import CostProfile
from xenvmmu.model.work import Loop, Op, PreemptCheck, Work, WorkStep
from xenvmmu.sim.errors import ProtocolError
from xenvmmu.sim.metrics import OpAcc, Recorder
from xenvmmu.sim.pcpu import PCpu
from xenvmmu.sim.preempt import EventTarget

_NS_CACHE_MAX = 4096


class Section:
    """The open non-preemptible section of one hypervisor entry on one pCPU."""

    def __init__(self, env: Environment, recorder: Recorder, acc: OpAcc, cpu: int,
                 registry: dict[int, Section]) -> None:
        self.env, self.recorder, self.acc, self.cpu = env, recorder, acc, cpu
        self.entered = self.start = env.now
        self.max = 0.0
        self._registry = registry
        registry[cpu] = self

    def record(self, length: float) -> None:
        self.max = max(self.max, length)
        self.recorder.section(self.acc, self.cpu, length)

    def boundary(self, at: float) -> None:
        self.record(at - self.start)
        self.start = at

    def close(self) -> None:
        now = self.env.now
        self.record(now - self.start)
        self.acc.xen_ns += now - self.entered
        self._registry.pop(self.cpu, None)


class XenWork:
    """Runs model operations on pCPUs at the prices of a cost profile."""

    def __init__(self, env: Environment, recorder: Recorder, cost: CostProfile) -> None:
        self.env = env
        self.recorder = recorder
        self._cost = cost
        self._ns_cache: dict[Work, float] = {}
        #: the section each pCPU in XEN mode is in (a stuck pCPU's counts at the end)
        self.open_sections: dict[int, Section] = {}

    @property
    def cost(self) -> CostProfile:
        return self._cost

    @cost.setter
    def cost(self, profile: CostProfile) -> None:
        self._cost = profile
        self._ns_cache.clear()

    def ns(self, work: Work) -> float:
        """``cost.ns(work)``, memoised: operations repeat the same Work many times."""
        t = self._ns_cache.get(work)
        if t is None:
            if len(self._ns_cache) >= _NS_CACHE_MAX:
                self._ns_cache.clear()
            t = self._ns_cache[work] = self._cost.ns(work)
        return t

    def section(self, acc: OpAcc, pcpu: PCpu) -> Section:
        """Open the section of an entry into the hypervisor on ``pcpu``, now."""
        return Section(self.env, self.recorder, acc, pcpu.index, self.open_sections)

    # -- softirq context ---------------------------------------------------------------------
    def run_in_softirq(self, pcpu: PCpu, name: str, op: Op, *,
                       done: Event | None = None) -> Process:
        """Run ``op`` on ``pcpu`` from softirq context (an RCU callback): it takes the pCPU
        at once and nothing can preempt it; its preemption checks never fire."""
        acc = self.recorder.op(name, pcpu.index)
        pcpu.enter_xen(name)
        sec = self.section(acc, pcpu)
        acc.entries += 1

        def body() -> Generator[Event, Any, int]:
            start = self.env.now
            rc = yield from self.run(pcpu, None, op, sec, False)
            sec.close()
            self.recorder.finished(acc, rc, self.env.now - start)
            pcpu.exit_to_guest(None)
            if done is not None:
                done.succeed(rc)
            return rc

        return self.env.process(body())

    # -- the step protocol -------------------------------------------------------------------
    def run(self, pcpu: PCpu, vcpu: EventTarget | None, op: Op, sec: Section,
            preemptible: bool) -> Generator[Event, Any, int]:
        """Run ``op`` to its return code on ``pcpu`` (in XEN mode, inside ``sec``) for
        ``vcpu`` (None: softirq context); checks answer only if ``preemptible``."""
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
                        reply = pcpu.preempt.pending(vcpu)
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

    def _loop(self, pcpu: PCpu, vcpu: EventTarget | None, step: Loop, sec: Section,
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
        signal = pcpu.preempt
        first = signal.since(vcpu)
        if first is None and d > 0:
            watch = signal.watch()
            yield env.any_of([env.timeout(n * d), watch])
            signal.unwatch(watch)
            first = signal.since(vcpu)
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
