"""The victim: a latency-sensitive vCPU sharing a pCPU with the operations under test.

Like ``cyclictest`` in a guest: it sleeps until an absolute deadline every ``period``,
records how late it actually ran (timer due -> vCPU running), does a little work and sleeps
again. Its timer is a Xen timer on its pCPU, so it fires only when that pCPU processes
softirqs, and the victim runs only when the scheduler then picks it (BOOST on wake, subject
to the rate limit). Periods that pass entirely while it waits count as missed wake-ups.

With a dedicated pCPU the victim's worst delay is about the longest non-preemptible
section on that pCPU, minus up to one period (it may wake just before the section
starts); with a busy pCPU add the rate limit (anchors-kvm-papers.md section 3.2).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from xenvmmu.sim.params import MS, US
from xenvmmu.sim.vcpu import ProcessGenerator, VCpu

if TYPE_CHECKING:
    from xenvmmu.sim.host import Host


class Victim:
    """A periodic vCPU on ``pcpu`` that records its wake-up delays in the host's recorder."""

    def __init__(self, host: Host, pcpu: int, *, period_ms: float = 1.0,
                 work_us: float = 10.0, name: str = "victim.0", domain: str = "victim",
                 start_ns: float | None = None) -> None:
        if period_ms <= 0 or work_us < 0:
            raise ValueError("victim period must be > 0 and work >= 0")
        self.host = host
        self.period = period_ms * MS
        self.work = work_us * US
        self.vcpu: VCpu = host.vcpu(name, domain=domain, pcpu=pcpu, runnable=False)
        first = host.rng.random() * self.period if start_ns is None else start_ns
        self.vcpu.start(self._run(host.env.now + first))

    def _run(self, first: float) -> ProcessGenerator:
        v, env, rec = self.vcpu, self.host.env, self.host.recorder
        due = first
        v.pcpu.set_timer(v.wake_timer, due)
        yield from v.pcpu.wait_running(v)
        while True:
            rec.victim(env.now - due)
            # later deadlines that already passed were missed entirely
            missed = max(0, math.ceil((env.now - due) / self.period) - 1)
            rec.victim_missed += missed
            due += (missed + 1) * self.period
            if self.work > 0:
                yield from v.compute(self.work)
            if due < env.now:  # its own work (or a preemption) overran deadlines
                late = math.ceil((env.now - due) / self.period)
                rec.victim_missed += late
                due += late * self.period
            yield from v.sleep_until(due)
