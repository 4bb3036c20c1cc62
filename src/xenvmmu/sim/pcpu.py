"""A physical CPU: softirqs, timers, the running vCPU, and Xen's preemption test.

A pCPU is in one of two modes:

``GUEST``
    a vCPU (or the idle vCPU) runs guest code. A raised softirq is processed at once (the
    interrupt's exit path runs ``do_softirq``): timers fire, the scheduler may switch vCPUs.
``XEN``
    the hypervisor does non-preemptible work for a hypercall or from softirq context.
    Raised softirqs stay **pending** until the work returns to the exit path; nothing else
    runs here, no timer callback fires, the scheduler is not called and this pCPU reports
    no RCU quiescent state.

``preempt_pending(v)`` is ``hypercall_preempt_check()`` (xen-project/xen
xen/include/xen/sched.h @ RELEASE-4.4.0): a softirq is pending on this CPU, or the calling
vCPU has an event to deliver. Once true it stays true until the pCPU leaves XEN mode, so
the first instant it became true (``first_pending_at``) decides which check fires.

Softirqs are handled lowest number first, as ``__do_softirq`` does, and every pass through
softirq processing is a quiescent state for RCU (xen/common/softirq.c).
"""

from __future__ import annotations

from collections.abc import Generator
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any

from simpy import Environment, Interrupt
from simpy.events import URGENT, Event

from xenvmmu.sim.errors import Descheduled, SimulationError
from xenvmmu.sim.params import SchedParams
from xenvmmu.sim.sched import CreditScheduler
from xenvmmu.sim.timer import Timer, TimerQueue

if TYPE_CHECKING:
    from xenvmmu.sim.host import Host
    from xenvmmu.sim.vcpu import VCpu

_EPS_NS = 1e-6  # remaining guest time below this counts as done (float round-off)
_STORM_LIMIT = 10_000  # timer interrupts at one instant before the run is declared broken


class Mode(Enum):
    GUEST = "guest"
    XEN = "xen"


class Softirq(IntEnum):
    """The softirqs modelled, with Xen's numbers (xen/include/xen/softirq.h @ 4.4.0)."""

    TIMER = 0
    SCHEDULE = 1
    RCU = 3


class _Irq(Event):
    """A hardware interrupt: an event that is already successful and runs URGENT, i.e.
    before any ordinary event at the same instant (a check at time t sees an IRQ at t)."""

    def __init__(self, env: Environment, delay: float) -> None:
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, URGENT, delay)


class PCpu:
    """One physical CPU of a :class:`~xenvmmu.sim.host.Host`."""

    def __init__(self, host: Host, index: int, sched: SchedParams) -> None:
        self.host = host
        self.env: Environment = host.env
        self.index = index
        self.mode = Mode.GUEST
        self.current: VCpu | None = None
        self.pending: set[Softirq] = set()
        self.pending_since: float | None = None
        self.timers = TimerQueue()
        self.sched = CreditScheduler(self, sched)
        self.xen_label: str | None = None
        self.xen_since = 0.0
        self.softirq_passes = 0
        self._hw_at: float | None = None
        self._storm_at, self._storm = -1.0, 0
        self._in_softirq = False
        self._watchers: list[Event] = []
        self._run_waiters: dict[VCpu, Event] = {}

    def __repr__(self) -> str:
        return f"<PCpu {self.index} {self.mode.value}>"

    # -- timers ------------------------------------------------------------------------------
    def set_timer(self, timer: Timer, deadline: float) -> None:
        self.timers.set(timer, deadline)
        self._program_hw()

    def stop_timer(self, timer: Timer) -> None:
        self.timers.stop(timer)

    def _program_hw(self) -> None:
        nxt = self.timers.earliest()
        if nxt is None or (self._hw_at is not None and self._hw_at <= nxt):
            return
        self._hw_at = nxt
        irq = _Irq(self.env, max(0.0, nxt - self.env.now))
        irq.callbacks.append(self._timer_irq)

    def _timer_irq(self, _event: Event) -> None:
        now = self.env.now
        if now == self._storm_at:
            self._storm += 1
            if self._storm > _STORM_LIMIT:
                raise SimulationError(f"cpu{self.index}: timer interrupt storm at t={now} ns "
                                      "(a timer re-armed at its own deadline)")
        else:
            self._storm_at, self._storm = now, 0
        if self._hw_at is not None and self._hw_at <= now:
            self._hw_at = None
        due = self.timers.earliest()
        if due is not None and due <= now:
            self.raise_softirq(Softirq.TIMER)
        else:
            self._program_hw()

    # -- softirqs ----------------------------------------------------------------------------
    def raise_softirq(self, s: Softirq) -> None:
        """``raise_softirq``/``cpu_raise_softirq``: processed now unless in XEN mode."""
        if s in self.pending:
            return
        if not self.pending:
            self.pending_since = self.env.now
        self.pending.add(s)
        self.notify_watchers()
        if self.mode is Mode.GUEST:
            self.do_softirq()

    def raise_softirq_schedule(self) -> None:
        self.raise_softirq(Softirq.SCHEDULE)

    def do_softirq(self) -> None:
        """Process pending softirqs (only in GUEST mode, never re-entered)."""
        if self._in_softirq or self.mode is Mode.XEN or not self.pending:
            return
        self._in_softirq = True
        try:
            self.softirq_passes += 1
            self.host.softirq_pass(self)
            while self.pending and self.mode is Mode.GUEST:
                s = min(self.pending)
                self.pending.discard(s)
                if s is Softirq.TIMER:
                    while (t := self.timers.pop_due(self.env.now)) is not None:
                        t.fn()
                    self._program_hw()
                elif s is Softirq.SCHEDULE:
                    self.sched.schedule()
                else:
                    self.host.rcu.process(self)
            if not self.pending:
                self.pending_since = None
        finally:
            self._in_softirq = False
        self._notify_current()

    # -- the preemption test -----------------------------------------------------------------
    def preempt_pending(self, vcpu: VCpu | None) -> bool:
        """``hypercall_preempt_check()`` for ``vcpu`` (None: the idle vCPU, no events)."""
        return bool(self.pending) or (vcpu is not None and vcpu.events_pending)

    def first_pending_at(self, vcpu: VCpu | None) -> float | None:
        """Since when ``preempt_pending(vcpu)`` has been true, or None if it is false."""
        times = []
        if self.pending and self.pending_since is not None:
            times.append(self.pending_since)
        if vcpu is not None and vcpu.events_pending and vcpu.events_since is not None:
            times.append(vcpu.events_since)
        return min(times) if times else None

    def watch(self) -> Event:
        """An event that succeeds at the next softirq raise or event for the current vCPU."""
        ev = self.env.event()
        self._watchers.append(ev)
        return ev

    def unwatch(self, ev: Event) -> None:
        if ev in self._watchers:
            self._watchers.remove(ev)

    def notify_watchers(self) -> None:
        watchers, self._watchers = self._watchers, []
        for ev in watchers:
            if not ev.triggered:
                ev.succeed()

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
        self.host.trace(self, f"enter {label}")

    def exit_to_guest(self, vcpu: VCpu | None) -> None:
        """Leave XEN mode through the exit path: deliver events, process softirqs."""
        if self.mode is not Mode.XEN:
            raise SimulationError(f"cpu{self.index}: exit_to_guest outside Xen")
        self.host.trace(self, f"exit {self.xen_label}")
        self.mode = Mode.GUEST
        self.xen_label = None
        if vcpu is not None and vcpu is self.current:
            vcpu.deliver_events()
        self.do_softirq()
        self._notify_current()

    # -- running vCPUs -----------------------------------------------------------------------
    def switch(self, prev: VCpu | None, nxt: VCpu | None) -> None:
        """Context switch (called by the scheduler from SCHEDULE_SOFTIRQ)."""
        self.current = nxt
        if nxt is not None:
            nxt.run_start = nxt.last_burn = self.env.now
        if prev is not None and prev.computing:
            self._preempt_guest(prev, nxt.name if nxt is not None else "idle")
        self.host.trace(self, f"run {nxt.name if nxt is not None else 'idle'}")

    def _preempt_guest(self, v: VCpu, by: str) -> None:
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

    def wait_running(self, v: VCpu) -> Generator[Event, Any, None]:
        """Wait until ``v`` is the running vCPU and the pCPU is in GUEST mode."""
        while not (self.current is v and self.mode is Mode.GUEST):
            ev = self._run_waiters.get(v)
            if ev is None:
                ev = self._run_waiters[v] = self.env.event()
            yield ev

    def compute(
        self, v: VCpu, ns: float | None, *, until: Event | None = None
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

    def block(self, v: VCpu) -> None:
        """``SCHEDOP_block`` by the running vCPU ``v``."""
        if self.current is not v:
            raise SimulationError(f"{v.name} blocks while not running on cpu{self.index}")
        self.sched.block(v)
