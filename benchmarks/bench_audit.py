"""Audit throughput: 10,000 generated guest configs against one host.

Target: <= 5 s on one core and <= 500 MB peak memory for the whole run (scan,
parse, assess, JSON report). Runs in a fresh subprocess so the peak RSS is the audit's own.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_GUESTS = 10_000
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
args = ["--host", sys.argv[1], "--format", "json", "--output", sys.argv[3], sys.argv[2]]
rc = main(["audit", *args])
cpu = time.process_time() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{cpu:.3f} {peak:.1f} {rc}")
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        guests = Path(tmp) / "guests"
        guests.mkdir()
        size = generate(guests)
        out = Path(tmp) / "report.json"
        start = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-c", _CHILD, str(HOST), str(guests), str(out)],
            capture_output=True, text=True, check=False,
        )
        wall = time.perf_counter() - start
        if res.returncode != 0:
            print(res.stderr)
            raise SystemExit("audit benchmark failed")
        cpu, peak, rc = res.stdout.split()
        print(f"audit: {N_GUESTS:,} generated configs ({size / 1e6:.1f} MB) against Xen 4.4.0")
        print(f"  CPU time {float(cpu):.2f} s (wall {wall:.2f} s incl. interpreter start), "
              f"peak RSS {float(peak):.0f} MB, exit status {rc}, report "
              f"{out.stat().st_size / 1e6:.1f} MB")
        ok = float(cpu) <= 5.0 and float(peak) <= 500
        print(f"  target <= 5 s and <= 500 MB: {'meets' if ok else 'MISSES'}")


if __name__ == "__main__":
    main()
