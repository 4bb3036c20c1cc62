"""A virtual CPU: scheduler state plus the helpers its program (a SimPy process) uses.

A vCPU's *program* is a generator run as a SimPy process. It only ever does four things,
each a ``yield from`` on the vCPU:

``compute(ns)``
    run guest (or dom0 user-space) code for ``ns`` of CPU time; preemptible at any instant -
    a descheduling arrives as a :class:`~simpy.exceptions.Interrupt` and the remaining time
    is run when the vCPU is scheduled again;
``call(call)``
    issue a hypercall and its continuations (:meth:`Hypervisor.call`);
``sleep_until(t)`` / ``sleep(ns)`` / ``wait_for(event)``
    arm a one-shot timer and block (``VCPUOP_set_singleshot_timer`` + ``SCHEDOP_block``), or
    block until something else wakes it;
``spin_until(event)``
    burn CPU in guest mode until ``event`` has happened (a toolstack retrying a hypercall).

A vCPU is built with what it uses: the clock, its domain, the pCPU it is pinned to, that
pCPU's scheduler and the hypervisor it calls. It satisfies the protocols the lower parts
declare for it (:class:`~xenvmmu.sim.sched.SchedVcpu`, :class:`~xenvmmu.sim.hypercall.Caller`,
:class:`~xenvmmu.sim.domain.DomainVcpu`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from simpy import Environment
from simpy.events import Event, Process

from xenvmmu.sim.domain import SimDomain
from xenvmmu.sim.errors import SimulationError
from xenvmmu.sim.hypercall import Call, CallResult, Hypervisor
from xenvmmu.sim.kernel import ProcessGenerator
from xenvmmu.sim.pcpu import PCpu
from xenvmmu.sim.sched import CreditScheduler, Prio
from xenvmmu.sim.timer import Timer


class VCpu:
    """One vCPU of ``domain``, pinned to ``pcpu`` (scheduled by ``sched``, that pCPU's)."""

    def __init__(self, env: Environment, name: str, *, domain: SimDomain, pcpu: PCpu,
                 sched: CreditScheduler, hv: Hypervisor) -> None:
        self.env = env
        self.name = name
        self.domain = domain
        self.pcpu = pcpu
        self.sched = sched
        self.hv = hv
        # scheduler state (CreditScheduler)
        self.prio = Prio.UNDER
        self.credit = 0.0
        self.blocked = False
        self.in_runq = False
        self.run_start = 0.0
        self.last_burn = 0.0
        self.ran_since_acct = False
        # event-channel upcall pending (hypercall_preempt_check's second condition)
        self.events_pending = False
        self.events_since: float | None = None
        # the program's process, and whether it is inside compute() right now
        self.proc: Process | None = None
        self.computing = False
        self.wake_timer = Timer(f"{name}.wake", self._on_timer)

    def __repr__(self) -> str:
        return f"<VCpu {self.name} on cpu{self.pcpu.index}>"

    @property
    def runnable(self) -> bool:
        return not self.blocked and not self.domain.paused

    def _on_timer(self) -> None:
        self.sched.wake(self)

    # -- what a program does -----------------------------------------------------------------
    def compute(self, ns: float) -> ProcessGenerator:
        """Run ``ns`` of guest-mode CPU time (preemptible)."""
        yield from self.pcpu.compute(self, ns)

    def spin_until(self, event: Event) -> ProcessGenerator:
        """Burn CPU in guest mode until ``event`` is processed, then be running."""
        yield from self.pcpu.compute(self, None, until=event)

    def sleep_until(self, deadline: float) -> ProcessGenerator:
        """Block until the simulated time ``deadline``; return when running again."""
        yield from self.pcpu.wait_running(self)
        self.pcpu.set_timer(self.wake_timer, deadline)
        self.sched.block(self)
        yield from self.pcpu.wait_running(self)

    def sleep(self, ns: float) -> ProcessGenerator:
        yield from self.sleep_until(self.env.now + ns)

    def wait_for(self, event: Event) -> ProcessGenerator:
        """Block until ``event`` has been processed (a toolstack waiting in the dom0 kernel),
        then return when running again."""
        yield from self.pcpu.wait_running(self)
        if event.callbacks is not None:  # not processed yet
            event.callbacks.append(lambda _e: self.sched.wake(self))
            self.sched.block(self)
        yield from self.pcpu.wait_running(self)

    def call(self, call: Call) -> Generator[Event, Any, CallResult]:
        """Issue a hypercall; returns when Xen's final return code is back in the guest."""
        return (yield from self.hv.call(self, call))

    # -- event channels ----------------------------------------------------------------------
    def send_event(self) -> None:
        """An event-channel notification for this vCPU (from anywhere in the host)."""
        if self.events_pending:
            return
        self.events_pending = True
        self.events_since = self.env.now
        if self is self.pcpu.current:
            self.pcpu.preempt.notify()
        if self.blocked:
            self.sched.wake(self)

    def deliver_events(self) -> None:
        self.events_pending = False
        self.events_since = None

    # -- its domain paused -------------------------------------------------------------------
    def on_domain_pause(self) -> None:
        self.sched.sleep(self)

    def on_domain_unpause(self) -> None:
        self.sched.unsleep(self)

    def start(self, program: ProcessGenerator) -> Process:
        """Run ``program`` as this vCPU's process (one per vCPU)."""
        if self.proc is not None and self.proc.is_alive:
            raise SimulationError(f"{self.name} already runs a program")
        self.proc = self.env.process(program)
        return self.proc
