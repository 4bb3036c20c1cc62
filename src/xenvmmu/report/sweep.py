"""The sweep: run every point of a grid not yet in the directory, storing each when done.

:func:`run_sweep` is what ``xenvmmu sweep`` runs, and a library entry point::

    from xenvmmu.report.grid import expand
    from xenvmmu.report.runners import LocalRunner
    from xenvmmu.report.sweep import run_sweep

    points = expand(scenarios=["attack"], xen=["4.4.0", "4.5.0"], paging=["hap"],
                    memory_bytes=[1 << 30, 2 << 30], vcpus=[4], costs=["default"], seeds=1)
    outcome = run_sweep(points, "out/", runner=LocalRunner(2))

Points already in the directory are skipped (resuming an interrupted sweep, or extending a
finished one with more values on an axis); the others run on the ``runner`` and are stored one
by one (:class:`~xenvmmu.report.store.SweepStore`), so interrupting loses only the points
under way. When all are done the files are put in canonical order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import __version__
from .costspec import CostSpec, load_specs
from .grid import Point
from .runners import LocalRunner, Runner
from .runpoint import PointTask, RunSettings
from .store import SweepStore


@dataclass(frozen=True)
class SweepOutcome:
    """``total`` points asked for, ``skipped`` already in the directory, ``computed`` now,
    ``failed`` points of the grid that the model refused (stored with their error, now or
    before), ``repaired`` lines
    dropped from an interrupted run's files."""

    total: int
    skipped: int
    computed: int
    failed: int
    repaired: int


#: ``on_start(total, skipped)`` before the first point runs; ``on_point(point, failed)`` after
#: each is stored.
StartHook = Callable[[int, int], None]
PointHook = Callable[[Point, bool], None]


def run_sweep(
    points: Sequence[Point],
    directory: str | os.PathLike[str],
    *,
    settings: RunSettings | None = None,
    costs: Sequence[CostSpec] | None = None,
    runner: Runner | None = None,
    on_start: StartHook | None = None,
    on_point: PointHook | None = None,
) -> SweepOutcome:
    """Run the points of ``points`` that ``directory`` lacks and store them there.

    ``costs``: the profiles the points' ``costs`` labels name (default: the built-in one,
    ``default``); ``settings``: what every point shares (default :class:`RunSettings`);
    ``runner``: where points run (default: this process). Raises
    :class:`~xenvmmu.report.store.SweepDirError` when the directory cannot take the sweep,
    :class:`~xenvmmu.report.runners.RunnerError` when the runner cannot start, and
    ``ValueError`` when a point names a cost profile that is not given.
    """
    settings = settings or RunSettings()
    specs = tuple(costs) if costs is not None else load_specs(None)
    by_label = {c.label: c for c in specs}
    missing = sorted({p.costs for p in points} - set(by_label))
    if missing:
        raise ValueError(f"no cost profile called {', '.join(missing)}")
    runner = runner or LocalRunner(1)
    with SweepStore(directory) as store:
        store.open(settings, specs, __version__)
        done = store.done
        todo = [p for p in points if p.key not in done]
        skipped = len(points) - len(todo)
        if on_start is not None:
            on_start(len(points), skipped)
        tasks = (PointTask(p, settings, by_label[p.costs]) for p in todo)
        computed = 0
        for task, record in runner.run(tasks):
            store.append(record)
            computed += 1
            if on_point is not None:
                on_point(task.point, "error" in record)
        store.finish()
        failed = len({p.key for p in points} & store.failed)
        return SweepOutcome(len(points), skipped, computed, failed, store.repaired)
