"""`xenvmmu simulate`: run a scenario on a modelled Xen host and measure the stalls.

Scenarios: ``attack`` (a domain controlling the guest loops on the log-dirty operations
XSA-97 is about, against a guest that maximises their work), ``migration`` (pre-copy live
migration driven by CLEAN each round), ``vram`` (the device model tracks dirty VRAM every
refresh), ``teardown`` (the toolstack destroys the guest). A victim vCPU on the same pCPU
wakes every millisecond and records how late it runs.

Times are simulated: work is counted by the paging model and priced by the cost profile
(``--costs high``, the default: the upper end of every unit's range; ``--costs low``: the
lower end; or a TOML file, e.g. from ``xenvmmu calibrate``), so results are the model's, not a
measurement of any machine.
Runs are deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from fractions import Fraction
from typing import TextIO

from ..costs import CostProfileError, resolve_costs
from ..severity import DEFAULT_BUDGET_MS, WATCHDOG_TIMEOUT_S, severity_for, watchdog_panic_ms
from ..sim.metrics import Metrics
from ..sim.scenarios import SCENARIOS, run_scenario
from ..versions import Unknown, VersionError, XenVersion, profile_for
from ._host import changeset_date

_SIZE = re.compile(r"(?i)\s*(\d{1,20}(?:\.\d{1,20})?)\s*([kmgtp]?)i?b?\s*")
_UNITS = {"": 1 << 20, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

#: x86 HVM guests: 16 TiB is the largest guest RAM Xen supports (its x86 memory limit).
MAX_MEMORY_BYTES = 16 << 40
#: HVM_MAX_VCPUS (xen/include/public/hvm/hvm_info_table.h): 128 vCPUs per HVM guest.
MAX_VCPUS = 128
#: Xen's default NR_CPUS on x86 (xen/arch/Kconfig); each modelled pCPU has its own timer
#: tick, so the run time grows with it (about 25 s for a 16 TiB attack on 256 pCPUs).
MAX_PCPUS = 256
MAX_SEED = 2**64 - 1


def parse_size(text: str) -> int:
    """Bytes from ``256G``, ``1T``, ``512MiB`` or a plain number of MiB (as xl.cfg), from
    1 MiB to 16 TiB (``MAX_MEMORY_BYTES``)."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 64G, 1T or 4096)")
    value = int(Fraction(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 1 << 20:
        raise argparse.ArgumentTypeError(f"size too small: {text!r} (at least 1 MiB)")
    if value > MAX_MEMORY_BYTES:
        raise argparse.ArgumentTypeError(
            f"size too large: {text!r} (at most 16T: the largest x86 HVM guest Xen supports)"
        )
    return value


def configure(p: argparse.ArgumentParser) -> None:
    """Description and arguments of `xenvmmu simulate` (``xenvmmu.cli`` calls it)."""
    doc = (__doc__ or "").split("\n\n")
    p.description = "\n\n".join(doc[1:])
    p.add_argument("scenario", choices=SCENARIOS)
    p.add_argument("--xen", default="4.4.0", metavar="V",
                   help="Xen release whose behaviour is modelled (default: %(default)s)")
    p.add_argument("--changeset", type=changeset_date, metavar="DATE",
                   help="the build's changeset date (2014-09-12, or xl info's xen_changeset "
                   "line): decides which fixes a -unstable/-rc/-pre build has")
    p.add_argument("--paging", choices=["hap", "shadow"], default="hap")
    p.add_argument("--cpu-vendor", choices=["intel", "amd"], default="intel",
                   help="the host CPU: intel (EPT) or amd (NPT) paging (default: %(default)s)")
    p.add_argument("--memory", type=parse_size, default=parse_size("256G"), metavar="SIZE",
                   help="guest memory, e.g. 64G, 1T (plain numbers are MiB; default 256G; "
                   "1M..16T)")
    p.add_argument("--vcpus", type=int, default=4, metavar="N",
                   help=f"guest vCPUs (1..{MAX_VCPUS})")
    p.add_argument("--pcpus", type=int, default=2, metavar="N",
                   help=f"host pCPUs (1..{MAX_PCPUS})")
    p.add_argument("--shadow-memory", type=int, metavar="MIB",
                   help=f"paging pool in MiB (default: the release's formula; "
                   f"1..{MAX_MEMORY_BYTES >> 20})")
    p.add_argument("--watchdog", action="store_true",
                   help="turn on Xen's NMI watchdog (5 s: a longer stall panics the host)")
    p.add_argument("--costs", metavar="low|high|FILE",
                   help="the built-in cost profile at the low or high end of its ranges "
                   "(default: high), or a TOML cost profile")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true",
                   help="print the metrics as JSON (schema xenvmmu.sim/1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        profile = profile_for(XenVersion.parse(args.xen), changeset_date=args.changeset)
        costs = resolve_costs(args.costs)
        _check_ranges(args)
    except (VersionError, CostProfileError, ValueError) as e:
        print(f"xenvmmu simulate: {e}", file=err)
        return 2
    for _, answer in profile.assessments:
        if isinstance(answer, Unknown):  # audit says "unknown"; simulate models the worse
            print(f"xenvmmu simulate: warning: {answer.reason}; modelled without that fix "
                  "(the conservative reading; give --changeset to decide)", file=err)
    bar = _ProgressBar(err)
    try:
        metrics = run_scenario(
            args.scenario, profile=profile, paging=args.paging, vendor=args.cpu_vendor,
            memory_bytes=args.memory,
            vcpus=args.vcpus, pcpus=args.pcpus, shadow_memory_mib=args.shadow_memory,
            watchdog=args.watchdog, costs=costs, seed=args.seed, progress=bar,
        )
    except ValueError as e:
        bar.done()
        print(f"xenvmmu simulate: {e}", file=err)
        return 2
    bar.done()
    if args.json:
        out.write(metrics.to_json(indent=2) + "\n")
    else:
        out.write(summary(metrics, args, str(profile.version)))
    return 0


def _check_ranges(args: argparse.Namespace) -> None:
    """Every numeric flag in its documented range (``ValueError`` names the flag)."""
    for flag, value, low, high in (
        ("--vcpus", args.vcpus, 1, MAX_VCPUS),
        ("--pcpus", args.pcpus, 1, MAX_PCPUS),
        ("--shadow-memory", args.shadow_memory, 1, MAX_MEMORY_BYTES >> 20),
        ("--seed", args.seed, 0, MAX_SEED),
        ("--memory", args.memory, 1 << 20, MAX_MEMORY_BYTES),
    ):
        if value is not None and not low <= value <= high:
            raise ValueError(f"{flag} must be in {low}..{high}, not {value}")


def summary(m: Metrics, args: argparse.Namespace, version: str) -> str:
    """A readable account of one run."""
    gib = args.memory / (1 << 30)
    v = m.victim_latency
    lines = [
        f"{m.scenario} on Xen {version}, {args.paging.upper()} guest of {gib:,.0f} GiB, "
        f"{args.vcpus} vCPUs, {args.pcpus} pCPUs, seed {m.seed}",
        f"  longest non-preemptible section  {m.max_nonpreemptible_ms:12,.3f} ms",
    ]
    for op in m.ops:
        lines.append(
            f"    {op.name:<28} {op.max_nonpreemptible_ms:12,.3f} ms  "
            f"({op.calls} call(s), {op.continuations} continuation(s))"
        )
    lines += [
        f"  victim wake-up delay             p50 {v.p50_ms:,.3f} ms, p99 {v.p99_ms:,.3f} ms, "
        f"max {v.max_ms:,.3f} ms ({v.samples} samples)",
        f"  longest RCU grace period         {m.rcu_max_grace_ms:12,.3f} ms",
        "  watchdog                         "
        + ("FIRED: host panic at "
           f"{m.panic_at_ms:,.1f} ms on pCPU {m.panic_cpu}" if m.watchdog_fired
           else ("on, did not fire" if args.watchdog else "off")),
        f"  severity (as audit rates it)     "
        f"{severity_for(m.max_nonpreemptible_ms, DEFAULT_BUDGET_MS)} "
        f"(budget {DEFAULT_BUDGET_MS:g} ms; a stall from {watchdog_panic_ms():,.0f} ms can trip "
        f"a {WATCHDOG_TIMEOUT_S} s watchdog)",
        f"  continuations                    {m.continuations}",
        f"  simulated time                   {m.sim_time_ms:12,.3f} ms",
    ]
    source = m.extra.get("ops")
    if source:
        lines.append(f"  operations from                  {source}")
    return "\n".join(lines) + "\n"


class _ProgressBar:
    """A one-line progress display on stderr, shown only for runs longer than a second and
    only on a terminal (logs stay clean)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False
        self.enabled = stream.isatty()

    def __call__(self, message: str, sim_time_ms: float) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < 1.0 or now - self.last < 0.2:
            return
        self.last = now
        self.shown = True
        text = f"\r[{now - self.start:6.1f} s] simulated {sim_time_ms:12,.1f} ms  {message}"
        self.stream.write(text[:100].ljust(100))
        self.stream.flush()

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()
