"""`xenvmmu sweep`: run `xenvmmu simulate` over a grid and keep every point's figures.

Each point (scenario x release x paging mode x guest size x vCPUs x cost profile x seed) is
one simulator run. Results go to OUT/results.csv (one row per point) and OUT/results.jsonl
(the whole metrics of each point), a point at a time: a sweep that is interrupted loses
only the points under way, and running the same command again (or with more values on an
axis) runs only the points OUT does not have. Every run arms the 5 s watchdog without
letting it stop the run, so `max_nonpreemptible_ms` is the whole stall and `watchdog_fired`
says whether a watchdog would have fired. The same seed gives the same figures.

Lists are comma-separated: --xen 4.4.0,4.5.0 --memory 1G,64G,1T. `--costs` may be given
more than once (`low` or `high` for the built-in profile at either end of its cost ranges,
`default` = `high`, or a TOML cost file): each profile is one more axis, and the plots draw
the range between them as a band.

Exit status: 0 every point done; 1 some point was refused by the model (its error is in the
results); 2 usage error, or OUT cannot take the sweep; 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TextIO

from ..costs import CostProfileError
from ..report.costspec import load_specs
from ..report.grid import expand
from ..report.progress import ProgressBar
from ..report.runners import DaskRunner, LocalRunner, Runner, RunnerError
from ..report.runpoint import RunSettings
from ..report.store import SweepDirError
from ..report.sweep import run_sweep
from ..sim.scenarios import SCENARIOS
from ..versions import VersionError, XenVersion, profile_for
from .simulate import parse_size

EXIT_OK, EXIT_FAILED_POINTS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def configure(p: argparse.ArgumentParser) -> None:
    """Description and arguments of `xenvmmu sweep` (``xenvmmu.cli`` calls it)."""
    doc = (__doc__ or "").split("\n\n")
    p.description = "\n\n".join(doc[1:-1])
    p.epilog = doc[-1]
    g = p.add_argument_group("grid (comma-separated lists)")
    g.add_argument("--scenario", default="attack", metavar="LIST",
                   help=f"scenarios: {', '.join(SCENARIOS)} (default: %(default)s)")
    g.add_argument("--xen", required=True, metavar="LIST", help="Xen releases, e.g. 4.4.0,4.5.0")
    g.add_argument("--paging", default="hap,shadow", metavar="LIST",
                   help="paging modes: hap, shadow (default: %(default)s)")
    g.add_argument("--memory", required=True, metavar="LIST",
                   help="guest sizes, e.g. 1G,16G,256G,1T (plain numbers are MiB)")
    g.add_argument("--vcpus", default="4", metavar="LIST", help="guest vCPUs (default: 4)")
    g.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="seeds 0..N-1 per point (default: 1)")
    g.add_argument("--costs", action="append", metavar="low|high|FILE",
                   help="the built-in profile at its low or high bound (`default` = high), or "
                   "a TOML cost profile; repeat for a range, e.g. --costs low --costs high "
                   "(default: the built-in profile)")
    s = p.add_argument_group("runs")
    s.add_argument("--duration-ms", type=float, metavar="MS",
                   help="how long the attack and vram scenarios run (default: the "
                   "scenario's, 50 ms and 200 ms)")
    s.add_argument("--pcpus", type=int, default=2, metavar="N", help="host pCPUs (default: 2)")
    o = p.add_argument_group("output and execution")
    o.add_argument("--out", required=True, metavar="DIR",
                   help="directory of results.csv, results.jsonl and sweep.json (created; "
                   "points already there are skipped)")
    o.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="local worker processes (default: the number of CPUs, %(default)s)")
    o.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the points on a Dask distributed cluster, e.g. "
                   "tcp://HOST:8786 (needs: pip install 'xenvmmu[dask]')")
    o.add_argument("--plots", action="store_true",
                   help="also draw the figures into OUT/plots/ (PNG and SVG; needs: pip "
                   "install 'xenvmmu[report]')")
    o.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar on stderr")
    p.set_defaults(func=run)


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in _list(text)]
    except ValueError:
        raise ValueError(f"--{what}: not a list of whole numbers: {text!r}") from None


def _sizes(text: str) -> list[int]:
    try:
        return [parse_size(v) for v in _list(text)]
    except argparse.ArgumentTypeError as e:
        raise ValueError(f"--memory: {e}") from None


def _versions(text: str) -> list[str]:
    versions = []
    for item in _list(text):
        v = XenVersion.parse(item)
        profile_for(v)  # an unknown release fails here, not in every worker
        versions.append(str(v))
    return versions


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        specs = load_specs(args.costs)
        points = expand(
            scenarios=_list(args.scenario), xen=_versions(args.xen),
            paging=_list(args.paging), memory_bytes=_sizes(args.memory),
            vcpus=_ints(args.vcpus, "vcpus"), costs=[c.label for c in specs],
            seeds=args.seeds,
        )
        if args.duration_ms is not None and not (
                math.isfinite(args.duration_ms) and args.duration_ms > 0):
            raise ValueError("--duration-ms must be a finite number above 0")
        if args.pcpus < 1:
            raise ValueError("--pcpus must be at least 1")
        settings = RunSettings(duration_ms=args.duration_ms, pcpus=args.pcpus)
        runner: Runner = DaskRunner(args.scheduler) if args.scheduler else LocalRunner(args.jobs)
    except (VersionError, CostProfileError, RunnerError, ValueError) as e:
        print(f"xenvmmu sweep: {e}", file=err)
        return EXIT_USAGE
    bar: ProgressBar | None = None

    def on_start(total: int, skipped: int) -> None:
        nonlocal bar
        print(f"xenvmmu sweep: {total} point(s), {skipped} already in {args.out}, "
              f"{total - skipped} to run ({runner.description})", file=err)
        bar = ProgressBar(err, total, skipped, enabled=args.progress)

    def on_point(_point: object, failed: bool) -> None:
        if bar is not None:
            bar.advance(failed)

    try:
        outcome = run_sweep(points, args.out, settings=settings, costs=specs, runner=runner,
                            on_start=on_start, on_point=on_point)
    except (SweepDirError, RunnerError) as e:
        print(f"xenvmmu sweep: {e}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"xenvmmu sweep: interrupted; the finished points are in {args.out}: run the "
              "same command again to go on", file=err)
        return EXIT_INTERRUPTED
    if outcome.repaired:
        print(f"xenvmmu sweep: dropped {outcome.repaired} unfinished line(s) left by an "
              "interrupted run; their points ran again", file=err)
    results = Path(args.out)
    out.write(f"{results / 'results.csv'}\n{results / 'results.jsonl'}\n")
    if args.plots:
        status = _plots(results, out, err)
        if status:
            return status
    print(f"xenvmmu sweep: {outcome.total} point(s): {outcome.computed} run now, "
          f"{outcome.skipped} already done, {outcome.failed} refused by the model", file=err)
    return EXIT_FAILED_POINTS if outcome.failed else EXIT_OK


def _plots(directory: Path, out: TextIO, err: TextIO) -> int:
    from ..report.plots import MISSING, available, make_figures, save_figures
    from ..report.store import load_sweep

    if not available():
        print(f"xenvmmu sweep: --plots: {MISSING}", file=err)
        return EXIT_USAGE
    figures = make_figures(load_sweep(directory), fleet=None)
    for path in save_figures(figures, directory / "plots"):
        out.write(f"{path}\n")
    return 0
