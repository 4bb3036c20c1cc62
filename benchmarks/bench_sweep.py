"""Sweep figures: a 240-point sweep with two local worker processes, its resume, and the
report made from it.

240 points = 10 guest sizes (1 GiB .. 256 GiB, where every run is the paging model itself)
x 6 releases x 2 paging modes x 2 seeds, the ``attack`` scenario for 10 ms of simulated time,
``--jobs 2``: what ``xenvmmu sweep`` does, timed from the command's start to its last file.
The goal is 60 s or less on a 2-core machine. Then the same command again (every point is
already there: the cost of resuming), and ``xenvmmu report`` on the example fleet with this
sweep (wall time and size of the HTML file).
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

from xenvmmu.cli import main as xenvmmu

REPO = Path(__file__).resolve().parent.parent
SIZES = "1G,2G,4G,8G,16G,32G,64G,128G,192G,256G"
RELEASES = "4.3.0,4.4.0,4.4.2,4.5.0,4.13.0,4.17.0"
GRID = ("--scenario", "attack", "--xen", RELEASES, "--paging", "hap,shadow",
        "--memory", SIZES, "--seeds", "2", "--duration-ms", "10", "--jobs", "2",
        "--no-progress")


def _quiet(argv: list[str]) -> tuple[int, float, str]:
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = xenvmmu(argv)
    return status, time.perf_counter() - t0, err.getvalue()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="xenvmmu-bench-sweep-") as tmp:
        out = Path(tmp) / "sweep"
        status, wall, err = _quiet(["sweep", *GRID, "--out", str(out)])
        rows = (out / "results.csv").read_text().count("\n") - 1
        print(f"sweep: {rows} points (10 sizes x 6 releases x 2 modes x 2 seeds), --jobs 2: "
              f"{wall:.1f} s wall (goal <= 60 s), exit {status}")
        if status not in (0, 1):
            print(err, file=sys.stderr)
        status, wall, _ = _quiet(["sweep", *GRID, "--out", str(out)])
        print(f"resume with every point done: {wall:.2f} s wall, exit {status}")
        html = Path(tmp) / "report.html"
        status, wall, _ = _quiet([
            "report", "--host", str(REPO / "examples/hosts/xen-4.4.0-intel.txt"),
            "--sweep", str(out), "--output", str(html), str(REPO / "examples/guests")])
        print(f"report (7 example guests + this sweep): {wall:.1f} s wall, "
              f"{html.stat().st_size / 1024:,.0f} KiB, exit {status}")


if __name__ == "__main__":
    main()
