"""Time: a discrete-event simulation of a Xen host running virtual-MMU operations.

Built on SimPy. The parts, one concept per module, from the bottom up (a module imports only
modules listed before it; ``tests/sim/test_layering.py`` holds it):

* :mod:`~xenvmmu.sim.params`, :mod:`~xenvmmu.sim.errors`, :mod:`~xenvmmu.sim.kernel`,
  :mod:`~xenvmmu.sim.metrics` - the kernel: named parameters with sources, exceptions, the
  clock and process types and the trace, the :class:`~xenvmmu.sim.metrics.Recorder` and
  what a run measured (``Metrics.to_json()``);
* :mod:`~xenvmmu.sim.timer`, :mod:`~xenvmmu.sim.softirq`, :mod:`~xenvmmu.sim.preempt` - a
  pCPU's software timers and timer interrupt, its softirqs, ``hypercall_preempt_check()``;
* :mod:`~xenvmmu.sim.pcpu` - the pCPU's GUEST/XEN mode and the vCPU it runs;
  :mod:`~xenvmmu.sim.sched` - a credit-like scheduler;
* :mod:`~xenvmmu.sim.domain` - pause, the domctl lock, the XSA-97 -EBUSY rule;
  :mod:`~xenvmmu.sim.xenwork` - the model's operations run step by step on a pCPU;
  :mod:`~xenvmmu.sim.hypercall` - hypercalls and their continuations;
* :mod:`~xenvmmu.sim.vcpu`, :mod:`~xenvmmu.sim.rcu`, :mod:`~xenvmmu.sim.watchdog` - vCPUs and
  their programs, grace periods, the NMI watchdog; :mod:`~xenvmmu.sim.victim` - the latency
  probe;
* :mod:`~xenvmmu.sim.host` - builds a host from those parts and wires them;
* :mod:`~xenvmmu.sim.guest_ops` - what a scenario needs of its guest, with two
  implementations: :mod:`~xenvmmu.sim.model_guest` (a guest on the real model) and
  :mod:`~xenvmmu.sim.closed_form` (the model's closed forms replayed, for guests above
  256 GiB, too big to build);
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
    from xenvmmu.sim.hypercall import Call, CallResult, Hypervisor
    from xenvmmu.sim.metrics import SCHEMA, LatencyStats, Metrics, OpStats
    from xenvmmu.sim.params import MS, US, HostParams, SchedParams, WatchdogParams
    from xenvmmu.sim.pcpu import Mode, PCpu
    from xenvmmu.sim.sched import CreditScheduler, Prio
    from xenvmmu.sim.softirq import Softirq
    from xenvmmu.sim.vcpu import VCpu
    from xenvmmu.sim.victim import Victim
    from xenvmmu.sim.xenwork import XenWork, first_firing_iteration

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
    "XenWork",
    "first_firing_iteration",
]

_EXPORTS = {
    "domain": ("DomctlLock", "PendingPagingOp", "SimDomain"),
    "errors": ("Descheduled", "ProtocolError", "SimulationError"),
    "host": ("Host",),
    "hypercall": ("Call", "CallResult", "Hypervisor"),
    "metrics": ("SCHEMA", "LatencyStats", "Metrics", "OpStats"),
    "params": ("MS", "US", "HostParams", "SchedParams", "WatchdogParams"),
    "pcpu": ("Mode", "PCpu"),
    "sched": ("CreditScheduler", "Prio"),
    "softirq": ("Softirq",),
    "vcpu": ("VCpu",),
    "victim": ("Victim",),
    "xenwork": ("XenWork", "first_firing_iteration"),
}


def __getattr__(name: str) -> object:
    return load_export(__name__, _EXPORTS, name, globals())


def __dir__() -> list[str]:
    return export_dir(_EXPORTS, globals())
