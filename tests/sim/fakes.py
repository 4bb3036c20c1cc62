"""Fake operations and a unit cost profile for simulator tests.

With :data:`UNIT` every unit of ``entries_read`` costs exactly 1 ns and everything else 0,
so ``ns(x)`` is a piece of work that takes ``x`` ns - integer times, exact float arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from types import MappingProxyType
from typing import Any

from simpy.events import Event

from xenvmmu.costs import CostProfile
from xenvmmu.model.constants import ERESTART
from xenvmmu.model.work import FIELDS, Loop, Op, PreemptCheck, Work, WorkStep
from xenvmmu.sim import MS, Call, CallResult, Host, HostParams, Metrics, VCpu

UNIT = CostProfile(
    "unit", MappingProxyType({f: (1.0 if f == "entries_read" else 0.0) for f in FIELDS})
)


def ns(x: float) -> Work:
    """Work that costs ``x`` ns under :data:`UNIT`."""
    return Work(entries_read=int(x))


class Chunks:
    """``n`` chunks of ``chunk_ns`` each; with ``check`` a preemption check after every
    chunk but the last (progress kept across continuations, as Xen keeps it)."""

    def __init__(self, n: int, chunk_ns: float, *, check: bool = True) -> None:
        self.n, self.work, self.check = n, ns(chunk_ns), check
        self.done = 0
        self.fired: list[int] = []  # iterations done in each entry that was preempted

    def __call__(self, resuming: bool) -> Op:
        return self._op(resuming)

    def _op(self, resuming: bool) -> Op:
        if not resuming:
            self.done = 0
        start = self.done
        while self.done < self.n:
            yield WorkStep(self.work, "fake.chunk")
            self.done += 1
            if self.check and self.done < self.n and (yield PreemptCheck("fake.check")):
                self.fired.append(self.done - start)
                return -ERESTART
        return 0


class Looped:
    """The same as ``Chunks(n, chunk_ns)`` with checks after *every* chunk, written either
    as one :class:`Loop` (``compact=True``) or expanded into WorkStep/PreemptCheck pairs."""

    def __init__(self, n: int, chunk_ns: float, *, compact: bool) -> None:
        self.n, self.work, self.compact = n, ns(chunk_ns), compact
        self.done = 0
        self.fired: list[int] = []

    def __call__(self, resuming: bool) -> Op:
        return self._op(resuming)

    def _op(self, resuming: bool) -> Op:
        if not resuming:
            self.done = 0
        left = self.n - self.done
        if self.compact:
            k = yield Loop(self.work, left, PreemptCheck("fake.loop"), "fake.loop")
            if k is not None:
                self.done += int(k)
                self.fired.append(int(k))
                return -ERESTART
        else:
            for i in range(1, left + 1):
                yield WorkStep(self.work, "fake.loop")
                if (yield PreemptCheck("fake.loop")):
                    self.done += i
                    self.fired.append(i)
                    return -ERESTART
        self.done = self.n
        return 0


def one_step(total_ns: float) -> Callable[[bool], Op]:
    """A single non-preemptible WorkStep of ``total_ns``."""
    def op(_resuming: bool) -> Op:
        yield WorkStep(ns(total_ns), "fake.long")
        return 0
    return op


def host(pcpus: int = 2, *, seed: int = 0, params: HostParams | None = None) -> Host:
    return Host(params or HostParams(pcpus=pcpus), cost=UNIT, seed=seed)


def run_one(h: Host, v: VCpu, call: Call, *, after_ns: float = 0.0,
            until_ms: float | None = None) -> tuple[Metrics, list[CallResult]]:
    """Run ``call`` once from ``v`` (after ``after_ns`` of guest time), then end the run."""
    results: list[CallResult] = []

    def program() -> Generator[Event, Any, None]:
        if after_ns:
            yield from v.compute(after_ns)
        results.append((yield from v.call(call)))
        h.finish()

    v.start(program())
    return h.run(until_ms=until_ms), results


__all__ = ["MS", "UNIT", "Chunks", "Looped", "host", "ns", "one_step", "run_one"]
