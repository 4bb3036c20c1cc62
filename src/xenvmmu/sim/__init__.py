"""Time: a discrete-event simulation of a Xen host running virtual-MMU operations.

Built on SimPy. The parts, one concept per module:

* :mod:`~xenvmmu.sim.params` - named parameters (scheduler, watchdog, host) with sources;
* :mod:`~xenvmmu.sim.timer`, :mod:`~xenvmmu.sim.pcpu` - per-pCPU timers, softirqs, the
  GUEST/XEN mode, ``hypercall_preempt_check()``;
* :mod:`~xenvmmu.sim.sched`, :mod:`~xenvmmu.sim.vcpu` - a credit-like scheduler and vCPUs;
* :mod:`~xenvmmu.sim.rcu`, :mod:`~xenvmmu.sim.watchdog` - grace periods, the NMI watchdog;
* :mod:`~xenvmmu.sim.domain`, :mod:`~xenvmmu.sim.hypercall` - pause, the domctl lock, the
  XSA-97 -EBUSY rule; operations run step by step with continuations;
* :mod:`~xenvmmu.sim.metrics` - what a run measured (``Metrics.to_json()``);
* :mod:`~xenvmmu.sim.victim` - the latency probe;
* :mod:`~xenvmmu.sim.model_guest` - a guest on the real model and its operations;
  :mod:`~xenvmmu.sim.workloads` - closed-form stand-ins for guests too big to build;
* :mod:`~xenvmmu.sim.scenarios` - ``run_scenario("migration"|"attack"|"vram"|"teardown")``
  (import it from there: it pulls in the model, the core does not).

Operations follow the step protocol of :mod:`xenvmmu.model.work`; the core imports nothing
else from the model but its constants.

Importing this package imports none of its submodules (and not SimPy): each name below is
loaded from its submodule on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xenvmmu._lazy import export_dir, load_export

if TYPE_CHECKING:
    from xenvmmu.sim.domain import DomctlLock, PendingPagingOp, SimDomain
    from xenvmmu.sim.errors import Descheduled, ProtocolError, SimulationError
    from xenvmmu.sim.host import Host
    from xenvmmu.sim.hypercall import Call, CallResult, Hypervisor, first_firing_iteration
    from xenvmmu.sim.metrics import SCHEMA, LatencyStats, Metrics, OpStats
    from xenvmmu.sim.params import MS, US, HostParams, SchedParams, WatchdogParams
    from xenvmmu.sim.pcpu import Mode, PCpu, Softirq
    from xenvmmu.sim.sched import CreditScheduler, Prio
    from xenvmmu.sim.vcpu import VCpu
    from xenvmmu.sim.victim import Victim

__all__ = [
    "MS",
    "SCHEMA",
    "US",
    "Call",
    "CallResult",
    "CreditScheduler",
    "Descheduled",
    "DomctlLock",
    "Host",
    "HostParams",
    "Hypervisor",
    "LatencyStats",
    "Metrics",
    "Mode",
    "OpStats",
    "PCpu",
    "PendingPagingOp",
    "Prio",
    "ProtocolError",
    "SchedParams",
    "SimDomain",
    "SimulationError",
    "Softirq",
    "VCpu",
    "Victim",
    "WatchdogParams",
    "first_firing_iteration",
]

_EXPORTS = {
    "domain": ("DomctlLock", "PendingPagingOp", "SimDomain"),
    "errors": ("Descheduled", "ProtocolError", "SimulationError"),
    "host": ("Host",),
    "hypercall": ("Call", "CallResult", "Hypervisor", "first_firing_iteration"),
    "metrics": ("SCHEMA", "LatencyStats", "Metrics", "OpStats"),
    "params": ("MS", "US", "HostParams", "SchedParams", "WatchdogParams"),
    "pcpu": ("Mode", "PCpu", "Softirq"),
    "sched": ("CreditScheduler", "Prio"),
    "vcpu": ("VCpu",),
    "victim": ("Victim",),
}


def __getattr__(name: str) -> object:
    return load_export(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return export_dir(_EXPORTS, globals())
