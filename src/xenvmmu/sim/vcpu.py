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
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from simpy.events import Event, Process

from xenvmmu.sim.errors import SimulationError
from xenvmmu.sim.sched import Prio
from xenvmmu.sim.timer import Timer

if TYPE_CHECKING:
    from xenvmmu.sim.domain import SimDomain
    from xenvmmu.sim.hypercall import Call, CallResult, Hypervisor
    from xenvmmu.sim.pcpu import PCpu

ProcessGenerator = Generator[Event, Any, Any]


class VCpu:
    """One vCPU, pinned to ``pcpu``."""

    def __init__(self, name: str, domain: SimDomain, pcpu: PCpu, hv: Hypervisor) -> None:
        self.name = name
        self.domain = domain
        self.pcpu = pcpu
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
        self.pcpu.sched.wake(self)

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
        self.pcpu.block(self)
        yield from self.pcpu.wait_running(self)

    def sleep(self, ns: float) -> ProcessGenerator:
        yield from self.sleep_until(self.pcpu.env.now + ns)

    def wait_for(self, event: Event) -> ProcessGenerator:
        """Block until ``event`` has been processed (a toolstack waiting in the dom0 kernel),
        then return when running again."""
        yield from self.pcpu.wait_running(self)
        if event.callbacks is not None:  # not processed yet
            event.callbacks.append(lambda _e: self.pcpu.sched.wake(self))
            self.pcpu.block(self)
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
        self.events_since = self.pcpu.env.now
        if self is self.pcpu.current:
            self.pcpu.notify_watchers()
        if self.blocked:
            self.pcpu.sched.wake(self)

    def deliver_events(self) -> None:
        self.events_pending = False
        self.events_since = None

    def start(self, program: ProcessGenerator) -> Process:
        """Run ``program`` as this vCPU's process (one per vCPU)."""
        if self.proc is not None and self.proc.is_alive:
            raise SimulationError(f"{self.name} already runs a program")
        self.proc = self.pcpu.env.process(program)
        return self.proc
