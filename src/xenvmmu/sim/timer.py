"""Xen's per-CPU software timers (xen/common/timer.c), as a heap with lazy deletion.

A timer's callback runs only from TIMER_SOFTIRQ, i.e. when its pCPU processes softirqs.
The hardware (LAPIC one-shot) interrupt merely raises TIMER_SOFTIRQ at the earliest
deadline; it is reprogrammed only by the softirq handler. A pCPU stuck in a non-preemptible
section therefore takes one timer interrupt and then nothing, however many deadlines pass:
that is what makes every timer on it late - the scheduler tick, the victim's wake-up, the
watchdog's software tick.

:class:`TimerQueue` is the heap; :class:`LocalTimer` is one pCPU's timers together with that
interrupt (it raises TIMER_SOFTIRQ through the callback it is given, and runs the due timers
when the pCPU's softirq processing calls :meth:`LocalTimer.run_due`).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from simpy import Environment
from simpy.events import URGENT, Event

from xenvmmu.sim.errors import SimulationError

_STORM_LIMIT = 10_000  # timer interrupts at one instant before the run is declared broken


class Timer:
    """One software timer: a callback and, while armed, a deadline (ns)."""

    __slots__ = ("_gen", "active", "deadline", "fn", "name")

    def __init__(self, name: str, fn: Callable[[], None]) -> None:
        self.name = name
        self.fn = fn
        self.deadline = 0.0
        self.active = False
        self._gen = 0

    def __repr__(self) -> str:
        state = f"@{self.deadline:.0f}" if self.active else "idle"
        return f"<Timer {self.name} {state}>"


class TimerQueue:
    """The timers of one pCPU, ordered by (deadline, arming order)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Timer]] = []
        self._seq = itertools.count()

    def set(self, timer: Timer, deadline: float) -> None:
        """Arm (or re-arm) ``timer``; an older arming is forgotten."""
        timer._gen += 1
        timer.deadline = deadline
        timer.active = True
        heapq.heappush(self._heap, (deadline, next(self._seq), timer._gen, timer))

    def stop(self, timer: Timer) -> None:
        timer._gen += 1
        timer.active = False

    def _prune(self) -> None:
        heap = self._heap
        while heap and (not heap[0][3].active or heap[0][2] != heap[0][3]._gen):
            heapq.heappop(heap)

    def earliest(self) -> float | None:
        """Deadline of the next armed timer, or None."""
        self._prune()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Timer | None:
        """Disarm and return the next timer whose deadline is ``<= now``."""
        self._prune()
        if not self._heap or self._heap[0][0] > now:
            return None
        timer = heapq.heappop(self._heap)[3]
        timer.active = False
        timer._gen += 1
        return timer


class Irq(Event):
    """A hardware interrupt: an event that is already successful and runs URGENT, i.e.
    before any ordinary event at the same instant (a check at time t sees an IRQ at t)."""

    def __init__(self, env: Environment, delay: float) -> None:
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, URGENT, delay)


class LocalTimer:
    """One pCPU's software timers and its one-shot timer interrupt (the LAPIC timer).

    The interrupt is programmed for the earliest deadline; when it arrives it only raises
    TIMER_SOFTIRQ (``raise_softirq``). The callbacks run in :meth:`run_due`, the TIMER_SOFTIRQ
    handler, which then programs the next interrupt.
    """

    def __init__(self, env: Environment, cpu: int, raise_softirq: Callable[[], None]) -> None:
        self.env = env
        self.cpu = cpu
        self.queue = TimerQueue()
        self._raise_softirq = raise_softirq
        self._hw_at: float | None = None
        self._storm_at, self._storm = -1.0, 0

    def set(self, timer: Timer, deadline: float) -> None:
        """``set_timer``: arm ``timer`` and reprogram the interrupt if it is now the first."""
        self.queue.set(timer, deadline)
        self._program()

    def stop(self, timer: Timer) -> None:
        """``stop_timer`` (the interrupt stays programmed; it finds nothing due)."""
        self.queue.stop(timer)

    def run_due(self) -> None:
        """TIMER_SOFTIRQ: run every timer due now, in deadline order, then reprogram."""
        while (t := self.queue.pop_due(self.env.now)) is not None:
            t.fn()
        self._program()

    def _program(self) -> None:
        nxt = self.queue.earliest()
        if nxt is None or (self._hw_at is not None and self._hw_at <= nxt):
            return
        self._hw_at = nxt
        irq = Irq(self.env, max(0.0, nxt - self.env.now))
        irq.callbacks.append(self._interrupt)

    def _interrupt(self, _event: Event) -> None:
        now = self.env.now
        if now == self._storm_at:
            self._storm += 1
            if self._storm > _STORM_LIMIT:
                raise SimulationError(f"cpu{self.cpu}: timer interrupt storm at t={now} ns "
                                      "(a timer re-armed at its own deadline)")
        else:
            self._storm_at, self._storm = now, 0
        if self._hw_at is not None and self._hw_at <= now:
            self._hw_at = None
        due = self.queue.earliest()
        if due is not None and due <= now:
            self._raise_softirq()
        else:
            self._program()
