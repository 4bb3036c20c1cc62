"""A physical CPU: its GUEST/XEN mode, the vCPU it runs, and guest time on it.

A pCPU is in one of two modes:

``GUEST``
    a vCPU (or the idle vCPU) runs guest code. A raised softirq is processed at once (the
    interrupt's exit path runs ``do_softirq``): timers fire, the scheduler may switch vCPUs.
``XEN``
    the hypervisor does non-preemptible work for a hypercall or from softirq context.
    Raised softirqs stay **pending** until the work returns to the exit path; nothing else
    runs here, no timer callback fires, the scheduler is not called and this pCPU reports
    no RCU quiescent state.

The mechanisms a pCPU is made of have their own modules: its timers and timer interrupt
(:class:`~xenvmmu.sim.timer.LocalTimer`), its softirqs
(:class:`~xenvmmu.sim.softirq.Softirqs`) and the preemption test
(:class:`~xenvmmu.sim.preempt.PreemptSignal`). This module is the state machine that ties
them together: entering and leaving XEN mode, context switches (decided by the scheduler,
which calls :meth:`PCpu.switch`), and guest code running for a while, interrupted by a
descheduling.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from enum import Enum
from typing import Any, Protocol

from simpy import Environment, Interrupt
from simpy.events import Event, Process

from xenvmmu.sim.errors import Descheduled, SimulationError
from xenvmmu.sim.preempt import EventTarget, PreemptSignal
from xenvmmu.sim.softirq import Softirq, Softirqs
from xenvmmu.sim.timer import LocalTimer, Timer

_EPS_NS = 1e-6  # remaining guest time below this counts as done (float round-off)


class Mode(Enum):
    GUEST = "guest"
    XEN = "xen"


class RunningVcpu(EventTarget, Protocol):
    """What a pCPU reads and writes of the vCPUs it runs (:class:`~xenvmmu.sim.vcpu.VCpu`)."""

    computing: bool  # inside compute() right now: a descheduling must interrupt it

    @property
    def name(self) -> str: ...

    @property
    def proc(self) -> Process | None: ...

    def deliver_events(self) -> None: ...


class PCpu:
    """One physical CPU. ``trace(cpu, what)`` records its transitions."""

    def __init__(self, env: Environment, index: int, *,
                 trace: Callable[[int, str], None]) -> None:
        self.env = env
        self.index = index
        self.mode = Mode.GUEST
        self.current: RunningVcpu | None = None
        self.xen_label: str | None = None
        self.xen_since = 0.0
        self.softirqs = Softirqs(env)
        self.timers = LocalTimer(env, index, self._raise_timer)
        self.softirqs.open(Softirq.TIMER, self.timers.run_due)
        self.preempt = PreemptSignal(env, self.softirqs)
        self._trace = trace
        self._run_waiters: dict[RunningVcpu, Event] = {}

    def __repr__(self) -> str:
        return f"<PCpu {self.index} {self.mode.value}>"

    # -- timers ------------------------------------------------------------------------------
    def set_timer(self, timer: Timer, deadline: float) -> None:
        self.timers.set(timer, deadline)

    def stop_timer(self, timer: Timer) -> None:
        self.timers.stop(timer)

    def _raise_timer(self) -> None:
        self.raise_softirq(Softirq.TIMER)

    # -- softirqs ----------------------------------------------------------------------------
    def raise_softirq(self, s: Softirq) -> None:
        """``raise_softirq``/``cpu_raise_softirq``: processed now unless in XEN mode."""
        if not self.softirqs.mark(s):
            return
        self.preempt.notify()
        if self.mode is Mode.GUEST:
            self.do_softirq()

    def do_softirq(self) -> None:
        """Process pending softirqs (only in GUEST mode, never re-entered)."""
        if self.softirqs.process(self._in_guest):
            self._notify_current()

    def _in_guest(self) -> bool:
        return self.mode is Mode.GUEST

    # -- modes -------------------------------------------------------------------------------
    def enter_xen(self, label: str) -> None:
        """Start non-preemptible hypervisor work. A vCPU running guest code is set aside."""
        if self.mode is Mode.XEN:
            raise SimulationError(
                f"cpu{self.index}: {label!r} entered Xen while {self.xen_label!r} holds it"
            )
        self.mode = Mode.XEN
        self.xen_label = label
        self.xen_since = self.env.now
        cur = self.current
        if cur is not None and cur.computing:
            self._preempt_guest(cur, label)
        self._trace(self.index, f"enter {label}")

    def exit_to_guest(self, vcpu: RunningVcpu | None) -> None:
        """Leave XEN mode through the exit path: deliver events, process softirqs."""
        if self.mode is not Mode.XEN:
            raise SimulationError(f"cpu{self.index}: exit_to_guest outside Xen")
        self._trace(self.index, f"exit {self.xen_label}")
        self.mode = Mode.GUEST
        self.xen_label = None
        if vcpu is not None and vcpu is self.current:
            vcpu.deliver_events()
        self.do_softirq()
        self._notify_current()

    # -- running vCPUs -----------------------------------------------------------------------
    def switch(self, prev: RunningVcpu | None, nxt: RunningVcpu | None) -> None:
        """Context switch to ``nxt`` (the scheduler decides, from SCHEDULE_SOFTIRQ)."""
        self.current = nxt
        if prev is not None and prev.computing:
            self._preempt_guest(prev, nxt.name if nxt is not None else "idle")
        self._trace(self.index, f"run {nxt.name if nxt is not None else 'idle'}")

    def _preempt_guest(self, v: RunningVcpu, by: str) -> None:
        v.computing = False
        proc = v.proc
        if proc is not None and proc.is_alive:
            proc.interrupt(Descheduled(by, self.env.now))

    def _notify_current(self) -> None:
        v = self.current
        if v is None or self.mode is Mode.XEN:
            return
        ev = self._run_waiters.pop(v, None)
        if ev is not None:
            ev.succeed()

    def wait_running(self, v: RunningVcpu) -> Generator[Event, Any, None]:
        """Wait until ``v`` is the running vCPU and the pCPU is in GUEST mode."""
        while not (self.current is v and self.mode is Mode.GUEST):
            ev = self._run_waiters.get(v)
            if ev is None:
                ev = self._run_waiters[v] = self.env.event()
            yield ev

    def compute(
        self, v: RunningVcpu, ns: float | None, *, until: Event | None = None
    ) -> Generator[Event, Any, None]:
        """Run ``v`` in guest mode for ``ns`` of CPU time, or until ``until`` happened.

        Must be called from ``v``'s own process: a descheduling interrupts it.
        """
        if self.env.active_process is not v.proc:
            raise SimulationError(f"{v.name}: compute() called outside its own process")
        remaining = ns
        while True:
            if (remaining is not None and remaining <= _EPS_NS) or (
                until is not None and until.triggered
            ):
                return
            yield from self.wait_running(v)
            if until is not None and until.triggered:
                return
            start = self.env.now
            v.computing = True
            try:
                yield until if remaining is None and until is not None else self.env.timeout(
                    remaining if remaining is not None else 0.0
                )
                v.computing = False
                if remaining is not None:
                    return
            except Interrupt as irq:
                if not isinstance(irq.cause, Descheduled):
                    raise
                if remaining is not None:
                    remaining -= self.env.now - start
