"""Xen's NMI watchdog (xen/arch/x86/nmi.c @ RELEASE-4.4.0), per pCPU.

Two halves that run in different contexts, which is why a stuck pCPU is caught:

* a software timer (``nmi_timer_fn``) bumps a per-CPU counter every second. It is an
  ordinary timer, so it fires only when the pCPU processes softirqs;
* the NMI (``nmi_watchdog_tick``) arrives whatever the pCPU is doing. If the counter has
  not moved since the previous NMI it counts an alert; after ``timeout * nmi_hz``
  consecutive alerts it panics ("Watchdog timer detects that CPU%d is stuck!").
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from simpy import Environment
from simpy.events import Event

from xenvmmu.sim.params import MS, S, WatchdogParams
from xenvmmu.sim.pcpu import PCpu
from xenvmmu.sim.timer import Timer

#: ``panic(cpu, message)``: what the host does when the watchdog fires.
Panic = Callable[[int, str], None]


class Watchdog:
    """The watchdog of every one of ``pcpus``; ``panic`` is called when it fires."""

    def __init__(self, env: Environment, pcpus: Sequence[PCpu], params: WatchdogParams,
                 panic: Panic) -> None:
        self.env = env
        self.pcpus = tuple(pcpus)
        self.params = params
        self._panic = panic
        n = len(self.pcpus)
        self.ticks = [0] * n
        self._last_seen = [0] * n
        self._alerts = [0] * n
        self.max_alerts = [0] * n
        self._timers = [Timer(f"cpu{i}.nmi_timer", self._soft_tick_fn(i)) for i in range(n)]

    def _soft_tick_fn(self, cpu: int) -> Callable[[], None]:
        def fn() -> None:
            self.ticks[cpu] += 1
            self.pcpus[cpu].set_timer(self._timers[cpu],
                                      self.env.now + self.params.timer_period_ms * MS)

        return fn

    def start(self, phases_ns: list[float]) -> None:
        """Arm the software timers now and start the NMIs at the given phases."""
        for cpu, pcpu in enumerate(self.pcpus):
            pcpu.set_timer(self._timers[cpu], self.env.now + self.params.timer_period_ms * MS)
            self.env.process(self._nmi(cpu, phases_ns[cpu]))

    def _nmi(self, cpu: int, phase_ns: float) -> Generator[Event, Any, None]:
        env = self.env
        period = S / self.params.nmi_hz
        yield env.timeout(phase_ns)
        while True:
            if self.ticks[cpu] == self._last_seen[cpu]:
                self._alerts[cpu] += 1
                self.max_alerts[cpu] = max(self.max_alerts[cpu], self._alerts[cpu])
                if self._alerts[cpu] == self.params.alert_threshold:
                    self._panic(cpu, f"Watchdog timer detects that CPU{cpu} is stuck!")
                    return
            else:
                self._last_seen[cpu] = self.ticks[cpu]
                self._alerts[cpu] = 0
            yield env.timeout(period)
