"""Start-up time of the command line: `xenvmmu parse` against bare `python -c pass`.

A short command should not pay for numpy, SimPy and the paging model: `cli.py` imports a
subcommand only when it runs. Both commands run in fresh interpreters in
the same session, interleaved, and the figure is the best of several runs (wall clock), so
that other load on the machine inflates it less; the median is printed too. Goal: `parse`
of one small file within 4x of bare Python.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUEST = REPO / "examples" / "guests" / "web-01.cfg"
GOAL_RATIO = 4.0


def _time(cmd: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=REPO)
    return time.perf_counter() - start


def main(runs: int = 15) -> None:
    env = dict(os.environ)
    src = str(REPO / "src")  # the working tree, whether or not the package is installed
    env["PYTHONPATH"] = src + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else src
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        f"xenvmmu parse {GUEST.name}": [sys.executable, "-m", "xenvmmu.cli", "parse", str(GUEST)],
        "xenvmmu --version": [sys.executable, "-m", "xenvmmu.cli", "--version"],
    }
    for cmd in commands.values():
        _time(cmd, env)  # warm-up: page cache, .pyc files
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, cmd in commands.items():
            times[label].append(_time(cmd, env))
    print(f"startup: best (median) of {runs} runs, wall clock, fresh interpreter each")
    bare = min(times["python -c pass"])
    for label, samples in times.items():
        best = min(samples)
        print(f"  {label:<28} {best * 1e3:7.1f} ms ({statistics.median(samples) * 1e3:7.1f} ms)"
              f"  {best / bare:5.2f}x bare python")
    ratio = min(times[f"xenvmmu parse {GUEST.name}"]) / bare
    verdict = "meets" if ratio <= GOAL_RATIO else "MISSES"
    print(f"  goal: parse within {GOAL_RATIO:g}x of bare python: {verdict} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
