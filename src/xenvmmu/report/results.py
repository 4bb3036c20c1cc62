"""A sweep result as a typed row, and the columns of ``results.csv``.

``results.jsonl`` keeps each point's whole record (the simulator's ``xenvmmu.sim/1``
metrics); ``results.csv`` is derived from it, one row per point, with these columns:

``scenario``, ``xen``, ``paging``, ``memory_bytes``, ``memory_gib``, ``vcpus``, ``costs``,
``seed``
    the point (``costs``: the label of the cost profile, ``default`` for the built-in one);
``max_nonpreemptible_ms``
    the longest stretch of hypervisor work without a preemption point, on any pCPU;
``victim_p50_ms``, ``victim_p99_ms``, ``victim_max_ms``, ``victim_samples``, ``victim_missed_wakes``
    the victim vCPU's wake-up delay (it wakes every 1 ms on the issuing pCPU): median, 99th
    percentile and maximum over its wake-ups, how many wake-ups, and how many periods passed
    entirely while it could not run;
``watchdog_fired``
    ``true`` when a stall reached the watchdog timeout (the watchdog is armed in every run
    and does not stop it);
``continuations``
    hypercall continuations (preemptions) of all the scenario's operations;
``sim_time_ms``
    simulated time of the run;
``ops``
    where the operations came from: ``model`` (the paging model run step by step) or
    ``closed-form`` (its closed forms replayed, for guests above 256 GiB);
``error``
    why the model refused the point (the other figures are then empty).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .grid import GiB, Point

CSV_COLUMNS: tuple[str, ...] = (
    "scenario", "xen", "paging", "memory_bytes", "memory_gib", "vcpus", "costs", "seed",
    "max_nonpreemptible_ms", "victim_p50_ms", "victim_p99_ms", "victim_max_ms",
    "victim_samples", "victim_missed_wakes", "watchdog_fired", "continuations",
    "sim_time_ms", "ops", "error",
)


@dataclass(frozen=True)
class Row:
    """One point's figures (``None`` where the point failed)."""

    point: Point
    max_nonpreemptible_ms: float | None
    victim_p50_ms: float | None
    victim_p99_ms: float | None
    victim_max_ms: float | None
    victim_samples: int | None
    victim_missed_wakes: int | None
    watchdog_fired: bool | None
    continuations: int | None
    sim_time_ms: float | None
    ops: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.max_nonpreemptible_ms is not None

    def csv_row(self) -> list[str]:
        """The row's cells in :data:`CSV_COLUMNS` order."""
        p = self.point
        values: list[object] = [
            p.scenario, p.xen, p.paging, p.memory_bytes, f"{p.memory_bytes / GiB:g}", p.vcpus,
            p.costs, p.seed, self.max_nonpreemptible_ms, self.victim_p50_ms,
            self.victim_p99_ms, self.victim_max_ms, self.victim_samples,
            self.victim_missed_wakes, self.watchdog_fired, self.continuations,
            self.sim_time_ms, self.ops, self.error,
        ]
        return [_cell(v) for v in values]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def row_from_record(record: Mapping[str, Any]) -> Row:
    """The row of one ``results.jsonl`` record; raises ``KeyError``, ``TypeError`` or
    ``ValueError`` for a record that is not a sweep result."""
    point = Point.from_dict(record["point"])
    if record.get("key") != point.key:
        raise ValueError("the record's key does not match its point")
    if "metrics" not in record:
        error = record.get("error")
        if not isinstance(error, str):
            raise ValueError("a record needs metrics or an error")
        return Row(point, None, None, None, None, None, None, None, None, None, None, error)
    m = record["metrics"]
    v = m["victim_latency_ms"]
    extra = m.get("extra", {})
    ops = extra.get("ops") if isinstance(extra, dict) else None
    return Row(
        point=point,
        max_nonpreemptible_ms=float(m["max_nonpreemptible_ms"]),
        victim_p50_ms=float(v["p50"]),
        victim_p99_ms=float(v["p99"]),
        victim_max_ms=float(v["max"]),
        victim_samples=int(v["samples"]),
        victim_missed_wakes=int(v.get("missed_wakes", 0)),
        watchdog_fired=bool(m["watchdog_fired"]),
        continuations=int(m["continuations"]),
        sim_time_ms=float(m["sim_time_ms"]),
        ops=None if ops is None else str(ops),
    )
