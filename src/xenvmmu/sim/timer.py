"""Xen's per-CPU software timers (xen/common/timer.c), as a heap with lazy deletion.

A timer's callback runs only from TIMER_SOFTIRQ, i.e. when its pCPU processes softirqs.
The hardware (LAPIC one-shot) interrupt merely raises TIMER_SOFTIRQ at the earliest
deadline; it is reprogrammed only by the softirq handler. A pCPU stuck in a non-preemptible
section therefore takes one timer interrupt and then nothing, however many deadlines pass:
that is what makes every timer on it late - the scheduler tick, the victim's wake-up, the
watchdog's software tick.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


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
