"""Sweep points: one :class:`Point` is one ``run_scenario`` call, and a sweep is the grid
(the cartesian product) of the values asked for on each axis.

A point carries everything that changes its result, the seed included, so that two runs of
the same point give the same metrics and a resumed sweep can tell which points it already
has by their :attr:`Point.key` alone. Settings shared by every point of a sweep (scenario
duration, host pCPUs) are not part of the point: :mod:`xenvmmu.report.store` refuses to mix
sweeps made with different ones in one directory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..sim.scenarios import SCENARIOS
from ..versions import XenVersion

PAGING_MODES = ("hap", "shadow")
GiB = 1 << 30


@dataclass(frozen=True)
class Point:
    """One simulator run: the scenario, the release, the guest and the cost profile, and
    the seed. ``xen`` is the normalised version text (``4.4.0``), ``costs`` the label of a
    cost profile of the sweep (``default`` for the built-in one)."""

    scenario: str
    xen: str
    paging: str
    memory_bytes: int
    vcpus: int
    costs: str
    seed: int

    @property
    def key(self) -> str:
        """A stable identifier: equal for equal points, whatever process made them."""
        return "|".join(str(v) for v in (self.scenario, self.xen, self.paging,
                                         self.memory_bytes, self.vcpus, self.costs, self.seed))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Point:
        """The point of a stored record; raises ``KeyError``/``TypeError``/``ValueError`` for
        a record that is not one."""
        point = cls(
            scenario=str(data["scenario"]), xen=str(data["xen"]), paging=str(data["paging"]),
            memory_bytes=int(data["memory_bytes"]), vcpus=int(data["vcpus"]),
            costs=str(data["costs"]), seed=int(data["seed"]),
        )
        if point.as_dict() != dict(data):
            raise ValueError(f"not a sweep point: {dict(data)!r}")
        return point


def sort_key(point: Point, costs_order: Sequence[str] = ()) -> tuple[Any, ...]:
    """The canonical order of points in a finished sweep's files: by scenario (in
    ``SCENARIOS`` order), release (oldest first), paging mode, size, vCPUs, cost profile
    (in the sweep's order), seed."""
    scen = SCENARIOS.index(point.scenario) if point.scenario in SCENARIOS else len(SCENARIOS)
    try:
        version: tuple[Any, ...] = (0, XenVersion.parse(point.xen))
    except ValueError:
        version = (1, point.xen)
    cost = costs_order.index(point.costs) if point.costs in costs_order else len(costs_order)
    return (scen, point.scenario, version, point.paging, point.memory_bytes, point.vcpus,
            cost, point.costs, point.seed)


def expand(
    *,
    scenarios: Iterable[str],
    xen: Iterable[str],
    paging: Iterable[str],
    memory_bytes: Iterable[int],
    vcpus: Iterable[int],
    costs: Iterable[str],
    seeds: int,
) -> list[Point]:
    """Every combination, each value once (repeats dropped, first order kept), in the
    canonical order. Raises ``ValueError`` for an unknown scenario or paging mode, an empty
    axis, a non-positive vCPU count or fewer than one seed."""
    axes = {
        "scenario": _unique(scenarios), "xen": _unique(xen), "paging": _unique(paging),
        "memory": _unique(memory_bytes), "vcpus": _unique(vcpus), "costs": _unique(costs),
    }
    for name, values in axes.items():
        if not values:
            raise ValueError(f"no {name} given")
    for s in axes["scenario"]:
        if s not in SCENARIOS:
            raise ValueError(f"unknown scenario {s!r} (choose from: {', '.join(SCENARIOS)})")
    for p in axes["paging"]:
        if p not in PAGING_MODES:
            raise ValueError(f"unknown paging mode {p!r} (choose from: hap, shadow)")
    if any(int(v) < 1 for v in axes["vcpus"]):
        raise ValueError("vCPU counts must be at least 1")
    if any(int(m) < 4096 for m in axes["memory"]):
        raise ValueError("guest sizes must be at least one page")
    if seeds < 1:
        raise ValueError("--seeds must be at least 1")
    points = [
        Point(str(s), str(x), str(p), int(m), int(v), str(c), seed)
        for s, x, p, m, v, c in itertools.product(*axes.values())
        for seed in range(seeds)
    ]
    order = [str(c) for c in axes["costs"]]
    return sorted(points, key=lambda pt: sort_key(pt, order))


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def size_label(memory_bytes: int) -> str:
    """``1 GiB``, ``256 GiB``, ``1 TiB``, ``512 MiB`` (exact binary units where they fit)."""
    for shift, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB")):
        if memory_bytes >= 1 << shift and memory_bytes % (1 << shift) == 0:
            return f"{memory_bytes >> shift} {unit}"
    return f"{memory_bytes / GiB:g} GiB"
