"""Driving operations without a clock: preemption policies, continuations, sections.

The simulator drives operations itself (it knows when softirqs are pending). Everything else -
tests, the analytic cross-checks, the benchmark, quick what-ifs - uses :func:`drive` with a
:class:`Policy` that decides which preemption checks fire, and :func:`run_to_completion` to
issue the continuations Xen's callers would.

Sections are kept compressed as ``(work, count)`` runs, so a 16-million-page pool free that
checks after every page costs one entry, not sixteen million.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from xenvmmu.model.constants import ERESTART
from xenvmmu.model.work import (
    PROXY_WEIGHTS,
    ZERO,
    Loop,
    Op,
    PreemptCheck,
    Step,
    Work,
    WorkStep,
)


class Policy:
    """Which preemption checks fire. ``index`` counts checks from 0 over a whole drive."""

    def fires(self, check: PreemptCheck, index: int) -> bool:
        return False

    def first_fire(self, check: PreemptCheck, start: int, count: int) -> int | None:
        """Offset (0-based) of the first check of ``start .. start+count-1`` that fires."""
        for k in range(count):
            if self.fires(check, start + k):
                return k
        return None


class Never(Policy):
    """No check fires: the run of an operation never preempted."""

    def first_fire(self, check: PreemptCheck, start: int, count: int) -> int | None:
        return None


class Always(Policy):
    """Every check fires: maximal number of continuations."""

    def fires(self, check: PreemptCheck, index: int) -> bool:
        return True

    def first_fire(self, check: PreemptCheck, start: int, count: int) -> int | None:
        return 0


@dataclass
class AtIndices(Policy):
    """The checks with these indices fire."""

    indices: frozenset[int]

    def fires(self, check: PreemptCheck, index: int) -> bool:
        return index in self.indices

    def first_fire(self, check: PreemptCheck, start: int, count: int) -> int | None:
        hits = [i - start for i in self.indices if start <= i < start + count]
        return min(hits) if hits else None


@dataclass
class Bernoulli(Policy):
    """Each check fires with probability ``p`` (seeded, reproducible)."""

    p: float
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def fires(self, check: PreemptCheck, index: int) -> bool:
        return self.rng.random() < self.p

    def first_fire(self, check: PreemptCheck, start: int, count: int) -> int | None:
        if self.p <= 0:
            return None
        if self.p >= 1:
            return 0
        k = 0
        while k < count:  # geometric skipping would do; counts are small where p matters
            if self.rng.random() < self.p:
                return k
            k += 1
        return None


@dataclass
class Sections:
    """Non-preemptible sections as ``(work, count)`` runs, in order."""

    runs: list[tuple[Work, int]] = field(default_factory=list)
    current: Work = ZERO

    def add(self, w: Work) -> None:
        self.current = self.current + w

    def close(self, repeat_work: Work | None = None, repeat: int = 0) -> None:
        self._push(self.current, 1)
        self.current = ZERO
        if repeat and repeat_work is not None:
            self._push(repeat_work, repeat)

    def _push(self, w: Work, n: int) -> None:
        if self.runs and self.runs[-1][0] == w:
            self.runs[-1] = (w, self.runs[-1][1] + n)
        else:
            self.runs.append((w, n))

    def finish(self) -> None:
        self._push(self.current, 1)
        self.current = ZERO

    def counter(self) -> Counter[Work]:
        c: Counter[Work] = Counter()
        for w, n in self.runs:
            c[w] += n
        return c


@dataclass
class OpRun:
    """The outcome of driving one call."""

    rc: int
    total: Work
    sections: Sections
    checks: int
    fired: bool
    steps: list[Step] | None = None

    def longest(self, weights: Mapping[str, float] = PROXY_WEIGHTS) -> Work:
        return longest(self.sections.runs, weights)


def longest(runs: Iterable[tuple[Work, int]], weights: Mapping[str, float] = PROXY_WEIGHTS) -> Work:
    best = ZERO
    for w, _ in runs:
        if w.weighted(weights) > best.weighted(weights):
            best = w
    return best


def drive(op: Op, policy: Policy | None = None, *, record: bool = False, start: int = 0) -> OpRun:
    """Run one call to its return, answering checks from ``policy`` (default: never fire)."""
    pol = policy or Never()
    secs = Sections()
    total = ZERO
    checks = start
    fired = False
    steps: list[Step] | None = [] if record else None
    reply: bool | int | None = None
    try:
        step = op.send(None)
        while True:
            if steps is not None:
                steps.append(step)
            if isinstance(step, WorkStep):
                secs.add(step.work)
                total = total + step.work
                reply = None
            elif isinstance(step, PreemptCheck):
                reply = pol.fires(step, checks)
                checks += 1
                secs.close()
                fired = fired or bool(reply)
            else:
                assert isinstance(step, Loop)
                off = pol.first_fire(step.check, checks, step.count)
                n = step.count if off is None else off + 1
                secs.add(step.work)
                secs.close(step.work, n - 1)
                total = total + step.work * n
                checks += n
                reply = None if off is None else n
                fired = fired or off is not None
            step = op.send(reply)
    except StopIteration as stop:
        rc = int(stop.value)
    secs.finish()
    return OpRun(rc, total, secs, checks - start, fired, steps)


@dataclass
class Completion:
    """All calls of an operation run to completion through its continuations."""

    calls: list[OpRun]

    @property
    def rc(self) -> int:
        return self.calls[-1].rc

    @property
    def total(self) -> Work:
        t = ZERO
        for c in self.calls:
            t = t + c.total
        return t

    def sections(self) -> list[tuple[Work, int]]:
        return [r for c in self.calls for r in c.sections.runs]

    def longest(self, weights: Mapping[str, float] = PROXY_WEIGHTS) -> Work:
        return longest(self.sections(), weights)


def run_to_completion(
    start: Callable[[bool], Op], policy: Policy | None = None, *, max_calls: int = 1 << 24
) -> Completion:
    """Call ``start(resuming)`` again after every -ERESTART (``resuming=False`` first)."""
    calls: list[OpRun] = []
    resuming = False
    checks = 0
    while True:
        run = drive(start(resuming), policy, start=checks)
        checks += run.checks
        calls.append(run)
        if run.rc != -ERESTART or len(calls) >= max_calls:
            return Completion(calls)
        resuming = True
