"""One sweep point, run: the function a worker process (or a Dask worker) calls.

:func:`run_point` turns a :class:`~xenvmmu.report.grid.Point` and the sweep's
:class:`RunSettings` into one ``run_scenario`` call and returns the record a sweep stores:
``{"schema", "key", "point", "metrics"}`` with the simulator's own ``xenvmmu.sim/1`` metrics,
or ``{"schema", "key", "point", "error"}`` when the model refuses the point (a paging pool too
small for the guest, say): such a point is as deterministic as any other, so it is stored and
not retried. Everything here is picklable and imported by module name, as Dask needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..sim.params import WatchdogParams
from ..sim.scenarios import AttackParams, ScenarioParams, VramParams, run_scenario
from ..versions import profile_for
from .costspec import CostSpec
from .grid import Point

#: ``schema`` of every line of ``results.jsonl`` and of ``sweep.json``.
SCHEMA = "xenvmmu.sweep/1"


@dataclass(frozen=True)
class RunSettings:
    """What every point of a sweep shares.

    ``duration_ms``: how long the ``attack`` and ``vram`` scenarios keep issuing calls
    (``None``: the scenario's default); ``pcpus``: host pCPUs; ``watchdog_s``: the NMI
    watchdog's timeout - armed in every run but never stopping it, so a run measures the
    whole section *and* says whether a watchdog would have fired; ``ops``: the model or its
    closed forms (``auto``: as ``xenvmmu simulate``)."""

    duration_ms: float | None = None
    pcpus: int = 2
    watchdog_s: float = 5.0
    ops: Literal["auto", "model", "closed-form"] = "auto"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PointTask:
    """A point with all it needs to run anywhere."""

    point: Point
    settings: RunSettings
    costs: CostSpec


def scenario_params(scenario: str, settings: RunSettings) -> ScenarioParams | None:
    """The scenario's own parameters for this sweep (``None``: its defaults)."""
    if settings.duration_ms is None:
        return None
    if scenario == "attack":
        return AttackParams(duration_ms=settings.duration_ms)
    if scenario == "vram":
        return VramParams(duration_ms=settings.duration_ms)
    return None


def run_point(task: PointTask) -> dict[str, Any]:
    """Run one point; the record to store (see the module docstring)."""
    pt, settings = task.point, task.settings
    record: dict[str, Any] = {"schema": SCHEMA, "key": pt.key, "point": pt.as_dict()}
    try:
        metrics = run_scenario(
            pt.scenario,  # type: ignore[arg-type]  # checked by grid.expand
            profile=profile_for(pt.xen),
            paging=pt.paging,  # type: ignore[arg-type]
            memory_bytes=pt.memory_bytes,
            vcpus=pt.vcpus,
            pcpus=settings.pcpus,
            watchdog=WatchdogParams(timeout_s=settings.watchdog_s, stop_on_panic=False),
            costs=task.costs.profile(),
            seed=pt.seed,
            params=scenario_params(pt.scenario, settings),
            ops=settings.ops,
        )
    except ValueError as e:  # the model refuses this guest: a result too
        record["error"] = str(e)
        return record
    record["metrics"] = metrics.as_dict()
    return record
