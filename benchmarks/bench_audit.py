"""Audit throughput: 10,000 generated guest configs against one host, then 100,000 in every
output format.

Targets: 10,000 guests in <= 5 s on one core and <= 500 MB peak memory for the whole run
(scan, parse, assess, JSON report); 100,000 guests in <= 30 s of CPU and <= 500 MB peak RSS in
every format (the report is written guest by guest). Each run is a fresh subprocess, so the
peak RSS is the audit's own.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_GUESTS = 10_000
N_FLEET = 100_000
FLEET_CPU_S = 30.0
FLEET_RSS_MB = 500.0
REPO = Path(__file__).resolve().parent.parent
HOST = REPO / "examples" / "hosts" / "xen-4.4.0-intel.txt"


def generate(directory: Path, n: int = N_GUESTS, seed: int = 97) -> int:
    """Write ``n`` varied xl.cfg files; returns their total size in bytes."""
    rng = random.Random(seed)
    total = 0
    for i in range(n):
        kind = rng.choice(["hvm", "hvm", "hvm", "pv", "shadow"])
        memory = rng.choice([512, 1024, 2048, 4096, 16384, 65536, 262144, 1048576])
        lines = [
            f"# generated guest {i}",
            f'name = "guest-{i:05d}"',
            f"memory = {memory}",
            f"vcpus = {rng.choice([1, 2, 4, 8, 16])}",
            f"disk = [ 'phy:/dev/vg0/guest-{i:05d},xvda,w',\n"
            "         'file:/srv/iso/x.iso,hdc:cdrom,r' ]",
            f"vif = [ 'bridge=xenbr{rng.randrange(4)},"
            f"mac=00:16:3e:{i >> 8 & 255:02x}:{i & 255:02x}:01' ]",
        ]
        if kind != "pv":
            lines.append('builder = "hvm"')
        if kind == "shadow":
            lines.append("hap = 0")
            if rng.random() < 0.5:
                lines.append(f"shadow_memory = {rng.choice([16, 64, 256])}")
        if rng.random() < 0.3:
            lines.append(f"maxmem = {memory * 2}")
        text = "\n".join(lines) + "\n"
        (directory / f"guest-{i:05d}.cfg").write_text(text)
        total += len(text)
    return total


_CHILD = """
import resource, sys, time
from xenvmmu.cli import main
t = time.process_time()
args = ["--host", sys.argv[1], "--format", sys.argv[4], "--output", sys.argv[3], sys.argv[2]]
rc = main(["audit", *args])
cpu = time.process_time() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{cpu:.3f} {peak:.1f} {rc}")
"""


def audit_run(guests: Path, out: Path, fmt: str = "json") -> tuple[float, float, int, float]:
    """One ``xenvmmu audit --output`` in a fresh interpreter: its CPU time (s, from the
    command's start), peak RSS (MB), exit status, and the wall time with interpreter start."""
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, str(HOST), str(guests), str(out), fmt],
        capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - start
    if res.returncode != 0:
        print(res.stderr)
        raise SystemExit(f"audit benchmark failed ({fmt})")
    cpu, peak, rc = res.stdout.split()
    return float(cpu), float(peak), int(rc), wall


def fleet(n: int = N_FLEET) -> bool:
    """The 100k-guest row: every format, CPU time and peak RSS; True when all meet the
    targets."""
    from xenvmmu.audit.format import FORMATS

    with tempfile.TemporaryDirectory() as tmp:
        guests = Path(tmp) / "guests"
        guests.mkdir()
        size = generate(guests, n)
        print(f"audit: {n:,} generated configs ({size / 1e6:.1f} MB) against Xen 4.4.0, "
              "each format in a fresh process, report written with --output")
        print(f"  {'format':<11} {'CPU s':>7} {'peak RSS MB':>12} {'report MB':>10}  target")
        ok = True
        for fmt in FORMATS:
            out = Path(tmp) / f"report.{fmt}"
            cpu, peak, _, _ = audit_run(guests, out, fmt)
            meets = cpu <= FLEET_CPU_S and peak <= FLEET_RSS_MB
            ok = ok and meets
            print(f"  {fmt:<11} {cpu:>7.2f} {peak:>12.0f} {out.stat().st_size / 1e6:>10.1f}  "
                  f"{'meets' if meets else 'MISSES'}")
            out.unlink()
        print(f"  target <= {FLEET_CPU_S:g} s CPU and <= {FLEET_RSS_MB:g} MB in every format: "
              f"{'meets' if ok else 'MISSES'}")
        return ok


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        guests = Path(tmp) / "guests"
        guests.mkdir()
        size = generate(guests)
        out = Path(tmp) / "report.json"
        cpu, peak, rc, wall = audit_run(guests, out)
        print(f"audit: {N_GUESTS:,} generated configs ({size / 1e6:.1f} MB) against Xen 4.4.0")
        print(f"  CPU time {cpu:.2f} s (wall {wall:.2f} s incl. interpreter start), "
              f"peak RSS {peak:.0f} MB, exit status {rc}, report "
              f"{out.stat().st_size / 1e6:.1f} MB")
        ok = cpu <= 5.0 and peak <= 500
        print(f"  target <= 5 s and <= 500 MB: {'meets' if ok else 'MISSES'}")
    fleet()


if __name__ == "__main__":
    main()
