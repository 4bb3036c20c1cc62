"""RCU grace periods (xen/common/rcupdate.c), reduced to their timing.

A grace period (GP) starts when a callback is queued and none is running; it ends when
every pCPU has passed through softirq processing *after* it started (``__do_softirq``
calls ``rcu_check_callbacks``). One GP at a time: callbacks queued during a GP wait for the
next one. When a GP ends, the callbacks it covers run from RCU_SOFTIRQ on the pCPU that
queued them. A callback may carry a model operation: it then runs there in softirq context
and cannot be preempted at all - Xen 4.4 frees a dying domain's p2m this way
(``complete_domain_destroy`` -> ``paging_final_teardown``).

One pCPU stuck in a non-preemptible section holds up every GP in the system.

:class:`Rcu` opens RCU_SOFTIRQ on every pCPU and hooks their softirq passes; it runs
operation callbacks through :class:`~xenvmmu.sim.xenwork.XenWork`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simpy import Environment
from simpy.events import Event

from xenvmmu.model.work import Op
from xenvmmu.sim.metrics import Recorder
from xenvmmu.sim.pcpu import PCpu
from xenvmmu.sim.softirq import Softirq
from xenvmmu.sim.xenwork import XenWork


@dataclass(frozen=True)
class RcuCallback:
    """A queued callback: a plain function, or a named operation run in softirq context."""

    cpu: int
    fn: Callable[[], None] | None = None
    op: Callable[[], Op] | None = None
    name: str = "rcu_callback"
    done: Event | None = None


class Rcu:
    """Grace periods and callbacks for all ``pcpus`` of a host."""

    def __init__(self, env: Environment, pcpus: Sequence[PCpu], recorder: Recorder,
                 xen: XenWork) -> None:
        self.env = env
        self.pcpus = tuple(pcpus)
        self.recorder = recorder
        self.xen = xen
        self._waiting: list[RcuCallback] = []  # for the next GP
        self._current: list[RcuCallback] = []  # covered by the running GP
        self._ready: dict[int, list[RcuCallback]] = {}
        self._gp_start: float | None = None
        self._pass_seq = 0  # softirq passes begun on any pCPU so far
        self._gp_seq = 0  # the pass counter when the running GP started
        self._gp_cpus: set[int] = set()
        self.durations: list[float] = []
        for pcpu in self.pcpus:
            pcpu.softirqs.open(Softirq.RCU, functools.partial(self.process, pcpu))
            pcpu.softirqs.on_pass(functools.partial(self.quiescent, pcpu))

    @property
    def in_progress(self) -> bool:
        return self._gp_start is not None

    def current_age(self) -> float | None:
        """How long the running grace period has lasted so far (None if none runs)."""
        return None if self._gp_start is None else self.env.now - self._gp_start

    def call_rcu(self, cpu: int, fn: Callable[[], None] | None = None, *,
                 op: Callable[[], Op] | None = None, name: str = "rcu_callback") -> Event:
        """Queue a callback on pCPU ``cpu``; the returned event succeeds after it ran."""
        done = self.env.event()
        self._waiting.append(RcuCallback(cpu, fn, op, name, done))
        if not self.in_progress:
            self._start()
        return done

    def synchronize(self, cpu: int = 0) -> Event:
        """An event that succeeds once a full grace period has elapsed."""
        return self.call_rcu(cpu, None, name="synchronize_rcu")

    def _start(self) -> None:
        self._current, self._waiting = self._waiting, []
        self._gp_start = self.env.now
        self._gp_seq = self._pass_seq
        self._gp_cpus = {c.index for c in self.pcpus}

    def quiescent(self, pcpu: PCpu) -> None:
        """A softirq pass on ``pcpu`` began (``rcu_check_callbacks``): a quiescent state for
        the running GP, unless the GP started during this very pass."""
        self._pass_seq += 1
        if self._gp_start is None or self._pass_seq <= self._gp_seq:
            return
        self._gp_cpus.discard(pcpu.index)
        if not self._gp_cpus:
            self._complete()

    def _complete(self) -> None:
        assert self._gp_start is not None
        self.durations.append(self.env.now - self._gp_start)
        self.recorder.grace_period(self.env.now - self._gp_start)
        done, self._current = self._current, []
        self._gp_start = None
        for cb in done:
            self._ready.setdefault(cb.cpu, []).append(cb)
        for cpu in sorted({cb.cpu for cb in done}):
            self.pcpus[cpu].raise_softirq(Softirq.RCU)
        if self._waiting:
            self._start()

    def process(self, pcpu: PCpu) -> None:
        """RCU_SOFTIRQ on ``pcpu``: run its ready callbacks, in queueing order."""
        ready = self._ready.get(pcpu.index, [])
        while ready:
            cb = ready.pop(0)
            if cb.fn is not None:
                cb.fn()
            if cb.op is not None:
                self.xen.run_in_softirq(pcpu, cb.name, cb.op(), done=cb.done)
                if ready:  # the rest runs after this one, from a later pass
                    pcpu.raise_softirq(Softirq.RCU)
                return
            if cb.done is not None:
                cb.done.succeed()
