"""What one run measured: a :class:`Recorder` while it runs, frozen :class:`Metrics` after.

The figures the project reports (all times in milliseconds of simulated time):

* the longest **non-preemptible section** - work between two preemption check points, or
  between a call's entry/exit and the nearest one - per operation and per pCPU;
* the **victim's wake-up delay**: from the instant its timer was due to the instant it ran
  (p50, p99, max over its wake-ups; ``missed_wakes`` counts periods that passed entirely);
* the longest **RCU grace period**;
* whether the **watchdog** fired (and when, on which pCPU);
* per operation: completion time (issue to final return), entries, continuations.

``Metrics.to_json()`` is the stable form (``"schema": "xenvmmu.sim/1"``): keys sorted,
times rounded to the nanosecond, so the same seed gives the same text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from xenvmmu.sim.params import MS

SCHEMA = "xenvmmu.sim/1"
ExtraValue = float | int | str | bool | None


def _ms(ns: float) -> float:
    return round(ns / MS, 6)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (0 for no values): the smallest value with at least ``p``
    percent of the values at or below it."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencyStats:
    """Victim wake-up delays, in ms."""

    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    missed_wakes: int = 0


@dataclass(frozen=True)
class OpStats:
    """One operation name (all its calls) in one run; times in ms."""

    name: str
    pcpus: tuple[int, ...]
    calls: int  # calls that returned a final code
    entries: int  # hypervisor entries: first entries, continuations, lock retries
    continuations: int  # -ERESTART continuations and domctl-lock-busy continuations
    lock_busy: int  # entries that found the domctl lock taken
    max_nonpreemptible_ms: float
    xen_time_ms: float  # time spent in the hypervisor on its behalf
    completion_max_ms: float
    completion_total_ms: float
    last_rc: int | None
    rc_counts: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Metrics:
    """Everything one run measured. Times in ms of simulated time."""

    scenario: str
    seed: int
    sim_time_ms: float
    max_nonpreemptible_ms: float
    max_nonpreemptible_by_pcpu_ms: tuple[float, ...]
    victim_latency: LatencyStats
    rcu_max_grace_ms: float
    rcu_grace_periods: int
    watchdog_fired: bool
    panic_at_ms: float | None
    panic_cpu: int | None
    continuations: int
    domctl_lock_max_wait_ms: float
    ops: tuple[OpStats, ...]
    extra: Mapping[str, ExtraValue] = field(default_factory=lambda: MappingProxyType({}))

    def op(self, name: str) -> OpStats:
        for o in self.ops:
            if o.name == name:
                return o
        raise KeyError(name)

    @property
    def completion_ms(self) -> float:
        """The longest completion time of any operation."""
        return max((o.completion_max_ms for o in self.ops), default=0.0)

    def as_dict(self) -> dict[str, Any]:
        v = self.victim_latency
        return {
            "schema": SCHEMA,
            "scenario": self.scenario,
            "seed": self.seed,
            "sim_time_ms": self.sim_time_ms,
            "max_nonpreemptible_ms": self.max_nonpreemptible_ms,
            "max_nonpreemptible_by_pcpu_ms": list(self.max_nonpreemptible_by_pcpu_ms),
            "max_nonpreemptible_by_op_ms": {o.name: o.max_nonpreemptible_ms for o in self.ops},
            "victim_latency_ms": {
                "p50": v.p50_ms, "p99": v.p99_ms, "max": v.max_ms,
                "samples": v.samples, "missed_wakes": v.missed_wakes,
            },
            "rcu_max_grace_period_ms": self.rcu_max_grace_ms,
            "rcu_grace_periods": self.rcu_grace_periods,
            "watchdog_fired": self.watchdog_fired,
            "panic": None if self.panic_at_ms is None
            else {"at_ms": self.panic_at_ms, "pcpu": self.panic_cpu},
            "continuations": self.continuations,
            "completion_ms": self.completion_ms,
            "domctl_lock_max_wait_ms": self.domctl_lock_max_wait_ms,
            "ops": [
                {
                    "name": o.name, "pcpus": list(o.pcpus), "calls": o.calls,
                    "entries": o.entries, "continuations": o.continuations,
                    "lock_busy": o.lock_busy, "max_nonpreemptible_ms": o.max_nonpreemptible_ms,
                    "xen_time_ms": o.xen_time_ms, "completion_max_ms": o.completion_max_ms,
                    "completion_total_ms": o.completion_total_ms, "last_rc": o.last_rc,
                    "rc_counts": {str(rc): n for rc, n in o.rc_counts},
                }
                for o in self.ops
            ],
            "extra": dict(self.extra),
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, indent=indent)


class OpAcc:
    """One operation name's figures while a run goes on (frozen into :class:`OpStats`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pcpus: set[int] = set()
        self.calls = 0
        self.entries = 0
        self.continuations = 0
        self.lock_busy = 0
        self.max_section = 0.0
        self.xen_ns = 0.0
        self.completion_max = 0.0
        self.completion_total = 0.0
        self.last_rc: int | None = None
        self.rcs: dict[int, int] = {}


class Recorder:
    """Collects measurements during a run (mutable; freeze with :meth:`freeze`)."""

    def __init__(self, pcpus: int) -> None:
        self._ops: dict[str, OpAcc] = {}
        self.pcpu_max_section = [0.0] * pcpus
        self.victim_delays: list[float] = []
        self.victim_missed = 0
        self.gp_max = 0.0
        self.gp_count = 0
        self.panic: tuple[float, int, str] | None = None
        self.lock_wait_max = 0.0
        self.extra: dict[str, ExtraValue] = {}

    def op(self, name: str, pcpu: int) -> OpAcc:
        acc = self._ops.get(name)
        if acc is None:
            acc = self._ops[name] = OpAcc(name)
        acc.pcpus.add(pcpu)
        return acc

    def section(self, acc: OpAcc, pcpu: int, length: float) -> None:
        if length > acc.max_section:
            acc.max_section = length
        if length > self.pcpu_max_section[pcpu]:
            self.pcpu_max_section[pcpu] = length

    def finished(self, acc: OpAcc, rc: int, elapsed: float) -> None:
        acc.calls += 1
        acc.last_rc = rc
        acc.rcs[rc] = acc.rcs.get(rc, 0) + 1
        acc.completion_max = max(acc.completion_max, elapsed)
        acc.completion_total += elapsed

    def victim(self, delay: float) -> None:
        self.victim_delays.append(delay)

    def grace_period(self, length: float) -> None:
        self.gp_count += 1
        self.gp_max = max(self.gp_max, length)

    def lock_wait(self, length: float) -> None:
        self.lock_wait_max = max(self.lock_wait_max, length)

    def freeze(self, *, scenario: str, seed: int, now: float,
               open_gp: float | None = None) -> Metrics:
        """Frozen metrics at simulated time ``now``. ``open_gp``: age of a grace period
        still running (counted in the maximum, not in the count)."""
        d = self.victim_delays
        lat = LatencyStats(len(d), _ms(percentile(d, 50)), _ms(percentile(d, 99)),
                           _ms(max(d, default=0.0)), self.victim_missed)
        ops = tuple(
            OpStats(a.name, tuple(sorted(a.pcpus)), a.calls, a.entries, a.continuations,
                    a.lock_busy, _ms(a.max_section), _ms(a.xen_ns), _ms(a.completion_max),
                    _ms(a.completion_total), a.last_rc, tuple(sorted(a.rcs.items())))
            for a in self._ops.values()
        )
        gp_max = max(self.gp_max, open_gp or 0.0)
        panic = self.panic
        return Metrics(
            scenario=scenario,
            seed=seed,
            sim_time_ms=_ms(now),
            max_nonpreemptible_ms=_ms(max(self.pcpu_max_section, default=0.0)),
            max_nonpreemptible_by_pcpu_ms=tuple(_ms(x) for x in self.pcpu_max_section),
            victim_latency=lat,
            rcu_max_grace_ms=_ms(gp_max),
            rcu_grace_periods=self.gp_count,
            watchdog_fired=panic is not None,
            panic_at_ms=None if panic is None else _ms(panic[0]),
            panic_cpu=None if panic is None else panic[1],
            continuations=sum(a.continuations for a in self._ops.values()),
            domctl_lock_max_wait_ms=_ms(self.lock_wait_max),
            ops=ops,
            extra=MappingProxyType(dict(sorted(self.extra.items()))),
        )
