"""Hostile inputs at the size limit: CPU time and peak memory of the worst cases.

Each case runs `xenvmmu` in a fresh interpreter (peak RSS from ``getrusage`` of the child):
80,000 lines of ``x += [...]`` (linear since the parser hands the list on), an 8 MiB xl.cfg
whose one list defeats the regular-expression fast path (the full replay's worst case),
8 MiB of garbage lines (cut at the first errors), the ``[0,0,...]`` amplification file and
a 100,000-element ``xl list -l`` of minimal domains (refused: more than Xen can run).
Run: ``python benchmarks/bench_hostile.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIMIT = 8 << 20


def _cases(d: Path) -> list[tuple[str, list[str]]]:
    adds = d / "adds.cfg"
    adds.write_bytes(b'name = "a"\n' + b"".join(b'x += ["a%d", "b"]\n' % i
                                                for i in range(80_000)))
    atoms = (LIMIT - 64) // 2
    deep = d / "list.cfg"
    deep.write_bytes(b'name = "a"\nv = [[[[' + b"1," * (atoms - 1) + b"1]]]]\n")
    garbage = d / "garbage.cfg"
    garbage.write_bytes(b"!\n" * (LIMIT // 2 - 1))
    zeros = d / "zeros.json"
    zeros.write_bytes(b"[" + b",".join([b"0"] * 30_000) + b"]")
    many = d / "many.json"
    many.write_bytes(b"[" + b",".join([b"{}"] * 100_000) + b"]")
    audit = ["audit", "--xen-version", "4.17.0", "--format", "json"]
    return [
        ("parse: 80,000 lines of x += [...]", ["parse", str(adds)]),
        ("audit: 8 MiB list of 4M atoms", [*audit, str(deep)]),
        ("parse: 8 MiB of garbage lines", ["parse", str(garbage)]),
        ("audit: 8 MiB of garbage lines", [*audit, str(garbage)]),
        ("audit: [0,0,...] x 30,000", [*audit, str(zeros)]),
        ("audit: [{}] x 100,000", [*audit, str(many)]),
    ]


def _run(argv: list[str]) -> tuple[float, float, int, int]:
    """CPU seconds, wall seconds, peak RSS (KiB) and output bytes of one child."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen([sys.executable, "-m", "xenvmmu.cli", *argv], env=env,
                                 stdout=out, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(child.pid, 0)
        child.returncode = 0  # reaped by wait4
        wall = time.perf_counter() - start
        size = out.tell()
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss, size


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print("hostile inputs at the limit: CPU s, wall s, peak RSS (MiB), output bytes")
        for label, argv in _cases(Path(tmp)):
            cpu, wall, rss_kib, out = _run(argv)
            print(f"  {label:<38} {cpu:6.2f} s {wall:6.2f} s {rss_kib / 1024:7.0f} MiB "
                  f"{out:>10,} B")


if __name__ == "__main__":
    main()
