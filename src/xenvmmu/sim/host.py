"""The simulated host: a SimPy environment, its pCPUs, RCU, the watchdog, the hypervisor.

The top of :mod:`xenvmmu.sim`'s parts: it builds them, in an order that fixes the run (the
seeded phases of the ticks and NMIs are drawn here), and wires them together - the
scheduler, RCU and the timers open their softirqs on the pCPUs, the watchdog is given
:meth:`Host.panic`. No part imports this module.

>>> from xenvmmu.sim import Host, HostParams
>>> host = Host(HostParams(pcpus=1), seed=1)
>>> dom0 = host.vcpu("dom0.0", domain="dom0", pcpu=0)
>>> def program(v):
...     yield from v.compute(2e6)        # 2 ms of guest time
...     host.finish()
>>> _ = dom0.start(program(dom0))
>>> host.run().sim_time_ms
2.0

Determinism: SimPy orders events by (time, priority, insertion order), hardware interrupts
are URGENT, and the only randomness - the phases of each pCPU's tick and NMI - comes from
``random.Random(seed)``. The same seed therefore gives the same run, event for event.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from simpy import Environment
from simpy.events import Event, Process

from xenvmmu.costs import CostProfile, default_profile
from xenvmmu.sim.domain import SimDomain
from xenvmmu.sim.errors import SimulationError
from xenvmmu.sim.hypercall import Hypervisor
from xenvmmu.sim.kernel import ProcessGenerator, Trace
from xenvmmu.sim.metrics import Metrics, Recorder
from xenvmmu.sim.params import MS, HostParams
from xenvmmu.sim.pcpu import Mode, PCpu
from xenvmmu.sim.rcu import Rcu
from xenvmmu.sim.sched import CreditScheduler
from xenvmmu.sim.vcpu import VCpu
from xenvmmu.sim.victim import Victim, check_victim
from xenvmmu.sim.watchdog import Watchdog
from xenvmmu.sim.xenwork import XenWork


class Host:
    """A machine running Xen, ready for vCPUs and their programs.

    It builds the parts and hands each what it uses (the clock ``env``, the ``recorder``,
    the ``trace``, the cost profile, the pCPUs, a pCPU's scheduler...); the parts never see
    the host.
    """

    def __init__(self, params: HostParams | None = None, *, cost: CostProfile | None = None,
                 seed: int = 0) -> None:
        self.params = params or HostParams()
        self.seed = seed
        self.rng = random.Random(seed)
        self.env = Environment()
        self.recorder = Recorder(self.params.pcpus)
        self.trace = Trace(self.env, enabled=self.params.trace)
        self.pcpus: tuple[PCpu, ...] = tuple(
            PCpu(self.env, i, trace=self.trace) for i in range(self.params.pcpus)
        )
        self.scheds: tuple[CreditScheduler, ...] = tuple(
            CreditScheduler(self.env, pcpu, self.params.sched) for pcpu in self.pcpus
        )
        self.xen = XenWork(self.env, self.recorder, cost or default_profile())
        self.rcu = Rcu(self.env, self.pcpus, self.recorder, self.xen)
        self.hv = Hypervisor(self.env, self.recorder, self.xen,
                             entry_ns=self.params.hypercall_entry_ns)
        self.domains: dict[str, SimDomain] = {}
        self.finished: Event = self.env.event()
        tick = self.params.sched.tick_ns
        for sched in self.scheds:
            sched.start(self.rng.random() * tick)
        self.watchdog: Watchdog | None = None
        if self.params.watchdog is not None:
            self.watchdog = Watchdog(self.env, self.pcpus, self.params.watchdog, self.panic)
            period = 1e9 / self.params.watchdog.nmi_hz
            self.watchdog.start([self.rng.random() * period for _ in self.pcpus])
        if self.params.rcu_probe_ms is not None:
            self.env.process(self._rcu_probe(self.params.rcu_probe_ms * MS))

    @property
    def cost(self) -> CostProfile:
        """The cost profile the hypervisor's work is priced at (may be replaced)."""
        return self.xen.cost

    @cost.setter
    def cost(self, profile: CostProfile) -> None:
        self.xen.cost = profile

    @property
    def events(self) -> list[tuple[float, int, str]]:
        """The (time, pCPU, what) transitions, if ``HostParams.trace`` is on."""
        return self.trace.events

    # -- building ----------------------------------------------------------------------------
    def domain(self, name: str) -> SimDomain:
        """The domain called ``name`` (created on first use)."""
        d = self.domains.get(name)
        if d is None:
            d = self.domains[name] = SimDomain(self.env, name)
        return d

    def vcpu(self, name: str, *, domain: str | SimDomain, pcpu: int,
             runnable: bool = True) -> VCpu:
        """A new vCPU pinned to ``pcpu``; ``runnable=False`` starts it blocked."""
        if not 0 <= pcpu < len(self.pcpus):
            raise SimulationError(f"{name}: no pCPU {pcpu} (host has {len(self.pcpus)})")
        dom = self.domain(domain) if isinstance(domain, str) else domain
        sched = self.scheds[pcpu]
        v = VCpu(self.env, name, domain=dom, pcpu=self.pcpus[pcpu], sched=sched, hv=self.hv)
        dom.vcpus.append(v)
        sched.add(v, runnable)
        return v

    def victim(self, pcpu: int, *, period_ms: float = 1.0, work_us: float = 10.0,
               name: str = "victim.0", domain: str = "victim",
               start_ns: float | None = None) -> Victim:
        """A :class:`~xenvmmu.sim.victim.Victim` on ``pcpu``: a vCPU of its own, blocked
        until its first timer, due ``start_ns`` from now (default: a seeded phase within
        one period)."""
        check_victim(period_ms, work_us)
        v = self.vcpu(name, domain=domain, pcpu=pcpu, runnable=False)
        first = self.rng.random() * (period_ms * MS) if start_ns is None else start_ns
        return Victim(self.env, v, self.recorder, period_ms=period_ms, work_us=work_us,
                      start_ns=first)

    def process(self, generator: ProcessGenerator) -> Process:
        """Run a plain (non-vCPU) SimPy process, e.g. a workload driver."""
        return self.env.process(generator)

    # -- running -----------------------------------------------------------------------------
    def finish(self, value: Any = None) -> None:
        """End the run (the workload is done). Idempotent."""
        if not self.finished.triggered:
            self.finished.succeed(value)

    def panic(self, cpu: int, message: str) -> None:
        """``panic()``: the watchdog caught a stuck pCPU."""
        if self.recorder.panic is None:
            self.recorder.panic = (self.env.now, cpu, message)
            self.trace(cpu, f"panic: {message}")
        wd = self.params.watchdog
        if wd is not None and wd.stop_on_panic:
            self.finish()

    def run(self, until_ms: float | None = None, *, scenario: str = "custom",
            extra: dict[str, Any] | None = None) -> Metrics:
        """Run until :meth:`finish` (or ``until_ms``), then freeze the metrics."""
        stop: Event = self.finished
        if until_ms is not None:
            stop = self.env.any_of([self.finished, self.env.timeout(until_ms * MS)])
        self.env.run(until=stop)
        return self.metrics(scenario=scenario, extra=extra)

    def metrics(self, *, scenario: str = "custom", extra: dict[str, Any] | None = None
                ) -> Metrics:
        """Metrics so far. A section still open (a stuck pCPU at a panic) counts with the
        length it has reached."""
        now = self.env.now
        for pcpu in self.pcpus:
            sec = self.xen.open_sections.get(pcpu.index)
            if sec is not None and pcpu.mode is Mode.XEN:
                self.recorder.section(sec.acc, pcpu.index, now - sec.start)
        if extra:
            self.recorder.extra.update(extra)
        return self.recorder.freeze(scenario=scenario, seed=self.seed, now=now,
                                    open_gp=self.rcu.current_age())

    # -- helpers -----------------------------------------------------------------------------
    def _rcu_probe(self, gap_ns: float) -> ProcessGenerator:
        # Its callbacks run on the last pCPU (RCU runs a callback where it was queued), so
        # that a stuck pCPU 0 - where the scenarios put the operations - delays the grace
        # periods but not the probe's next start.
        cpu = len(self.pcpus) - 1
        while True:
            yield self.rcu.synchronize(cpu)
            yield self.env.timeout(gap_ns)

    def at(self, delay_ns: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` after ``delay_ns`` (test and workload helper)."""
        def _p() -> ProcessGenerator:
            yield self.env.timeout(delay_ns)
            fn()
        self.env.process(_p())
