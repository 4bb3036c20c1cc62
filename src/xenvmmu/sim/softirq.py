"""Softirqs of one pCPU (xen/common/softirq.c @ RELEASE-4.4.0): pending bits and handlers.

A softirq is raised (``raise_softirq``/``cpu_raise_softirq``) from anywhere - a timer
interrupt, the scheduler, RCU - and handled later, when the pCPU passes through
``do_softirq``: on an interrupt's exit path in guest mode, or when hypervisor work returns to
its exit path. This module keeps the pending set (and since when anything has been pending,
which decides when a preemption check first fires) and runs the handlers, lowest number
first, as ``__do_softirq`` does. *When* processing may run is the pCPU's business
(:class:`~xenvmmu.sim.pcpu.PCpu` allows it only in GUEST mode).

Handlers are registered by the parts that own them, as Xen's ``open_softirq`` calls do:
the pCPU's timers (TIMER), its scheduler (SCHEDULE), RCU (RCU). Pass hooks run at the start
of every pass: each pass is a quiescent state for RCU (``rcu_check_callbacks``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from simpy import Environment

from xenvmmu.sim.errors import SimulationError

Handler = Callable[[], None]


class Softirq(IntEnum):
    """The softirqs modelled, with Xen's numbers (xen/include/xen/softirq.h @ 4.4.0)."""

    TIMER = 0
    SCHEDULE = 1
    RCU = 3


class Softirqs:
    """The pending softirqs of one pCPU, their handlers, and the pass hooks."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.pending: set[Softirq] = set()
        self.pending_since: float | None = None  # when the set last became non-empty
        self.passes = 0
        self._handlers: dict[Softirq, Handler] = {}
        self._pass_hooks: list[Handler] = []
        self._running = False

    def open(self, s: Softirq, handler: Handler) -> None:
        """``open_softirq``: ``handler`` runs when ``s`` is processed."""
        if s in self._handlers:
            raise SimulationError(f"softirq {s.name} opened twice")
        self._handlers[s] = handler

    def on_pass(self, hook: Handler) -> None:
        """Call ``hook`` at the start of every pass through softirq processing."""
        self._pass_hooks.append(hook)

    def mark(self, s: Softirq) -> bool:
        """Set ``s`` pending; False if it already was (raising it again changes nothing)."""
        if s in self.pending:
            return False
        if not self.pending:
            self.pending_since = self.env.now
        self.pending.add(s)
        return True

    def process(self, may_run: Callable[[], bool]) -> bool:
        """``do_softirq``: one pass, if anything is pending, ``may_run()`` and this is not a
        nested call. Handlers run lowest number first while ``may_run()`` holds (a handler
        may leave the pCPU in XEN mode: the rest stays pending). True if a pass ran."""
        if self._running or not self.pending or not may_run():
            return False
        self._running = True
        try:
            self.passes += 1
            for hook in self._pass_hooks:
                hook()
            while self.pending and may_run():
                s = min(self.pending)
                self.pending.discard(s)
                handler = self._handlers.get(s)
                if handler is None:
                    raise SimulationError(f"softirq {s.name} raised but never opened")
                handler()
            if not self.pending:
                self.pending_since = None
        finally:
            self._running = False
        return True
