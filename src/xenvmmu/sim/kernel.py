"""The kernel every part of the simulated host shares: the clock, processes, the trace.

The clock is SimPy's :class:`~simpy.core.Environment` (time in ns, see
:mod:`~xenvmmu.sim.params`); a part that needs the time or schedules events is given the
environment when it is built, as SimPy's own resources are. Together with
:mod:`~xenvmmu.sim.params` (named parameters), :mod:`~xenvmmu.sim.errors` and
:mod:`~xenvmmu.sim.metrics` (the :class:`~xenvmmu.sim.metrics.Recorder`) this module is the
bottom layer of :mod:`xenvmmu.sim`: it imports no other part, every part may import it.

Layers, each importing only from those before it (``tests/sim/test_layering.py`` holds it):

1. kernel: ``params``, ``errors``, ``kernel``, ``metrics``;
2. per-pCPU mechanisms: ``timer`` (software timers, the timer interrupt), ``softirq``,
   ``preempt`` (``hypercall_preempt_check()``);
3. ``pcpu`` (the GUEST/XEN state machine, the running vCPU), then ``sched`` (credit1);
4. ``domain`` (pause, the -EBUSY rule, the domctl lock), ``xenwork`` (running the model's
   steps on a pCPU), ``hypercall`` (calls and continuations);
5. ``vcpu``, ``rcu``, ``watchdog``, then ``victim``;
6. ``host``, which builds and wires the parts (and ``scenarios``, which drives a host).

A part that must call back into a higher one declares what it needs as a
:class:`~typing.Protocol` in its own module (e.g. :class:`~xenvmmu.sim.pcpu.RunningVcpu`);
the higher class satisfies it structurally, and nothing imports upward.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from simpy import Environment
from simpy.events import Event

#: A SimPy process body: a generator of events.
ProcessGenerator = Generator[Event, Any, Any]


class Trace:
    """The host's optional log of (time, pCPU, what) transitions (tests of event order).

    Kept only when ``enabled`` (``HostParams.trace``); calling it otherwise costs a test.
    """

    __slots__ = ("enabled", "env", "events")

    def __init__(self, env: Environment, *, enabled: bool) -> None:
        self.env = env
        self.enabled = enabled
        self.events: list[tuple[float, int, str]] = []

    def __call__(self, cpu: int, what: str) -> None:
        if self.enabled:
            self.events.append((self.env.now, cpu, what))
