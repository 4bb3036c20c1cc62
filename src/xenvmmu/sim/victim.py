"""The victim: a latency-sensitive vCPU sharing a pCPU with the operations under test.

Like ``cyclictest`` in a guest: it sleeps until an absolute deadline every ``period``,
records how late it actually ran (timer due -> vCPU running), does a little work and sleeps
again. Its timer is a Xen timer on its pCPU, so it fires only when that pCPU processes
softirqs, and the victim runs only when the scheduler then picks it (BOOST on wake, subject
to the rate limit). Periods that pass entirely while it waits count as missed wake-ups.

With a dedicated pCPU the victim's worst delay is about the longest non-preemptible
section on that pCPU, minus up to one period (it may wake just before the section
starts); with a busy pCPU add the rate limit (anchors-kvm-papers.md section 3.2).

``Host.victim(pcpu)`` builds one on a host (a blocked vCPU of its own domain, a seeded
phase); the class takes what it uses: the clock, that vCPU and the recorder.
"""

from __future__ import annotations

import math

from simpy import Environment

from xenvmmu.sim.kernel import ProcessGenerator
from xenvmmu.sim.metrics import Recorder
from xenvmmu.sim.params import MS, US
from xenvmmu.sim.vcpu import VCpu


def check_victim(period_ms: float, work_us: float) -> None:
    """ValueError unless ``period_ms > 0`` and ``work_us >= 0``."""
    if period_ms <= 0 or work_us < 0:
        raise ValueError("victim period must be > 0 and work >= 0")


class Victim:
    """A periodic ``vcpu`` (created blocked) that records its wake-up delays in ``recorder``;
    its first timer is due ``start_ns`` from now."""

    def __init__(self, env: Environment, vcpu: VCpu, recorder: Recorder, *,
                 period_ms: float = 1.0, work_us: float = 10.0, start_ns: float = 0.0) -> None:
        check_victim(period_ms, work_us)
        self.env = env
        self.recorder = recorder
        self.period = period_ms * MS
        self.work = work_us * US
        self.vcpu = vcpu
        self.vcpu.start(self._run(env.now + start_ns))

    def _run(self, first: float) -> ProcessGenerator:
        v, env, rec = self.vcpu, self.env, self.recorder
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
