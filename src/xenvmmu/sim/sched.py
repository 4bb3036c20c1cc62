"""A credit-like scheduler for the vCPUs pinned to one pCPU.

Modelled on credit1 (xen-project/xen xen/common/sched_credit.c @ RELEASE-4.4.0), reduced to
what decides a victim's wake-up delay:

* priorities BOOST > UNDER > OVER; the run queue is ordered by priority, FIFO within one;
* a waking vCPU that is UNDER is BOOSTed and "tickles" the pCPU (raises SCHEDULE_SOFTIRQ) if
  it outranks the running vCPU; the tick takes BOOST away from a vCPU found running;
* credit is burnt by running and refilled every ``acct_ticks`` ticks with an equal share of
  the accounting period among the active vCPUs of this pCPU (credit1 shares the whole host
  by weight; with pinned vCPUs and equal weights this is the same split);
* ``schedule()`` keeps the running vCPU if it has run less than the rate limit, otherwise
  requeues it and picks the head of the queue, then arms the timeslice timer.

Everything here runs from softirq context of its pCPU: nothing is decided while the pCPU is
stuck in a non-preemptible section, which is the point of the exercise. No load balancing
or migration between pCPUs (every vCPU is pinned).

The scheduler opens SCHEDULE_SOFTIRQ on its pCPU and keeps its own idea of the running vCPU
(``current``, Xen's ``schedule_data.curr``); it tells the pCPU to context-switch
(:meth:`PCpu.switch`). What it needs of a vCPU is :class:`SchedVcpu`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from simpy import Environment

from xenvmmu.sim.errors import SimulationError
from xenvmmu.sim.params import SchedParams
from xenvmmu.sim.pcpu import PCpu, RunningVcpu
from xenvmmu.sim.softirq import Softirq
from xenvmmu.sim.timer import Timer


class Prio(IntEnum):
    """credit1 priorities; a lower value runs first (CSCHED_PRI_TS_BOOST/UNDER/OVER)."""

    BOOST = 0
    UNDER = 1
    OVER = 2


class SchedVcpu(RunningVcpu, Protocol):
    """A vCPU as the scheduler sees it: credit1's ``struct csched_vcpu`` fields, whether it
    is blocked, and whether it could run (not blocked, its domain not paused)."""

    prio: Prio
    credit: float  # ns of CPU time it may still use this accounting period
    blocked: bool
    in_runq: bool
    run_start: float  # when it was last switched in
    last_burn: float  # when its credit was last charged
    ran_since_acct: bool

    @property
    def runnable(self) -> bool: ...


class CreditScheduler:
    """The run queue and scheduling decisions of one pCPU."""

    def __init__(self, env: Environment, pcpu: PCpu, params: SchedParams) -> None:
        self.env = env
        self.pcpu = pcpu
        self.params = params
        self.current: SchedVcpu | None = None
        self.vcpus: list[SchedVcpu] = []
        self.runq: list[SchedVcpu] = []
        self.ticks = 0
        self.ticker = Timer(f"cpu{pcpu.index}.tick", self._tick)
        self.s_timer = Timer(f"cpu{pcpu.index}.s_timer", self._slice_end)
        pcpu.softirqs.open(Softirq.SCHEDULE, self.schedule)

    def start(self, phase_ns: float) -> None:
        """Arm the tick ``phase_ns`` from now (pCPUs tick out of phase)."""
        self.pcpu.set_timer(self.ticker, self.env.now + phase_ns)

    # -- vCPU state changes ------------------------------------------------------------------
    def add(self, v: SchedVcpu, runnable: bool) -> None:
        self.vcpus.append(v)
        v.blocked = not runnable
        v.last_burn = self.env.now
        if v.runnable:
            self._insert(v)
            self._tickle(v)

    def wake(self, v: SchedVcpu) -> None:
        """``vcpu_wake``: unblock; BOOST if UNDER (credit1 ``csched_vcpu_wake``)."""
        if not v.blocked:
            return
        v.blocked = False
        if not v.runnable or v is self.current or v.in_runq:
            return
        if self.params.boost_on_wake and v.prio is Prio.UNDER:
            v.prio = Prio.BOOST
        self._insert(v)
        self._tickle(v)

    def block(self, v: SchedVcpu) -> None:
        """``SCHEDOP_block`` by the running vCPU ``v``: give up the pCPU."""
        if v is not self.current:
            raise SimulationError(f"{v.name} blocks while not running on cpu{self.pcpu.index}")
        v.blocked = True
        self._raise()

    def sleep(self, v: SchedVcpu) -> None:
        """The vCPU's domain was paused: take it off the pCPU and the queue."""
        if v is self.current:
            self._raise()
        elif v.in_runq:
            self.runq.remove(v)
            v.in_runq = False

    def unsleep(self, v: SchedVcpu) -> None:
        """The vCPU's domain was unpaused."""
        if v.runnable and v is not self.current and not v.in_runq:
            self._insert(v)
            self._tickle(v)

    # -- decisions ---------------------------------------------------------------------------
    def schedule(self) -> None:
        """SCHEDULE_SOFTIRQ: keep or replace the running vCPU (credit1 ``csched_schedule``)."""
        now = self.env.now
        cur = self.current
        if cur is not None:
            self._burn(cur)
            # compare with the very deadline the s_timer gets, so float round-off cannot
            # re-arm it at "now" forever
            limit = cur.run_start + self.params.ratelimit_ns
            if cur.runnable and now < limit:
                self.pcpu.set_timer(self.s_timer, limit)
                return
            if cur.runnable:
                self._insert(cur)
        nxt = self.runq.pop(0) if self.runq else None
        if nxt is not None:
            nxt.in_runq = False
            nxt.ran_since_acct = True
            self.pcpu.set_timer(self.s_timer, now + self.params.tslice_ns)
        else:
            self.pcpu.stop_timer(self.s_timer)
        if nxt is not cur:
            if nxt is not None:
                nxt.run_start = nxt.last_burn = now
            self.current = nxt
            self.pcpu.switch(cur, nxt)

    # -- internals ---------------------------------------------------------------------------
    def _raise(self) -> None:
        self.pcpu.raise_softirq(Softirq.SCHEDULE)

    def _insert(self, v: SchedVcpu) -> None:
        i = 0
        while i < len(self.runq) and self.runq[i].prio <= v.prio:
            i += 1
        self.runq.insert(i, v)
        v.in_runq = True

    def _tickle(self, v: SchedVcpu) -> None:
        cur = self.current
        if cur is None or v.prio < cur.prio:
            self._raise()

    def _burn(self, v: SchedVcpu) -> None:
        now = self.env.now
        v.credit -= now - v.last_burn
        v.last_burn = now

    def _slice_end(self) -> None:
        self._raise()

    def _tick(self) -> None:
        """``csched_tick``: burn, un-BOOST the running vCPU, account every few ticks."""
        cur = self.current
        if cur is not None:
            self._burn(cur)
            cur.ran_since_acct = True
            if cur.prio is Prio.BOOST:
                cur.prio = Prio.UNDER
        self.ticks += 1
        if self.ticks % self.params.acct_ticks == 0:
            self._account()
        self.pcpu.set_timer(self.ticker, self.env.now + self.params.tick_ns)

    def _account(self) -> None:
        """Refill credit (``csched_acct``): UNDER if credit is left, else OVER."""
        period = self.params.tick_ns * self.params.acct_ticks
        active = [v for v in self.vcpus if v.runnable or v.ran_since_acct]
        for v in active:
            if v is self.current:
                self._burn(v)
            v.credit = min(v.credit + period / len(active), period)
            v.prio = Prio.UNDER if v.credit >= 0 else Prio.OVER
            v.ran_since_acct = False
        self.runq.sort(key=lambda v: v.prio)  # stable: FIFO within a priority
