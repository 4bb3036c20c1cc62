"""`xenvmmu audit`: per-guest XSA-97 exposure from real host and guest inputs.

Reads xl.cfg files and `xl list -l` JSON (files or directories, recursively), describes
the host with `xl info` output and/or flags, and reports per guest whether a non-preemptible
virtual-MMU operation can hold a CPU longer than the latency budget, for how long, why, and
the cheapest mitigation.

Exit status: 0 no guest affected; 1 some guest affected; 2 usage error, nothing readable or
the report could not be written; 3 no guest affected but some input or guest could not be
assessed (unreadable file, xm-era Python config, release that cannot be classified).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TextIO

from ..audit.api import audit_settings, run_audit
from ..audit.format import DEFAULT_FORMAT, FORMATS, get_formatter, output_target, write_atomic
from ..audit.settings import DEFAULT_BUDGET_MS, AuditSettings
from ..costs import CostProfileError
from ..toolstack import HostSpec, InputFileError
from ..versions import Profile, VersionError
from ._host import add_host_arguments, host_from_args

EXIT_NONE, EXIT_AFFECTED, EXIT_USAGE, EXIT_UNASSESSED = 0, 1, 2, 3
def configure(p: argparse.ArgumentParser) -> None:
    """Description and arguments of `xenvmmu audit` (``xenvmmu.cli`` calls it)."""
    doc = (__doc__ or "").split("\n\n")
    p.description = doc[1] if len(doc) > 1 else None
    p.epilog = doc[-1]
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="xl.cfg files, `xl list -l` JSON files, or directories of them")
    add_host_arguments(p, "host (flags override what --host says)")
    o = p.add_argument_group("report")
    names = [DEFAULT_FORMAT, *sorted(n for n in FORMATS if n != DEFAULT_FORMAT)]
    o.add_argument("--format", default=DEFAULT_FORMAT, choices=names,
                   help="output format (default: %(default)s)")
    o.add_argument("--output", metavar="FILE",
                   help="write the report to this regular file (replaced atomically; a "
                   "symbolic link is followed to its target; never read back by the scan)")
    o.add_argument("--budget-ms", type=float, default=DEFAULT_BUDGET_MS, metavar="N",
                   help="latency budget in ms (default: %(default)g = one credit-scheduler "
                   "timeslice); a guest whose worst-case stall reaches it is affected")
    o.add_argument("--costs", metavar="FILE", help="TOML cost profile overriding the defaults")
    o.add_argument("--color", action="store_true", help="colour the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        settings, host, profile = _setup(args)
    except (InputFileError, CostProfileError, VersionError, ValueError) as e:
        print(f"xenvmmu audit: {e}", file=err)
        return EXIT_USAGE
    if args.output:
        try:
            output_target(args.output)  # refuse a device or FIFO before the work, not after
        except OSError as e:
            print(f"xenvmmu audit: cannot write {args.output}: {e.strerror or e}", file=err)
            return EXIT_USAGE
    exclude = [args.output] if args.output else []
    report = run_audit(args.paths, host, settings, profile=profile, exclude=exclude)
    findings, errors = report.findings, report.errors
    if not findings and not report.inputs_read:
        print("xenvmmu audit: nothing readable among the inputs", file=err)
        for problem in errors:
            print(f"xenvmmu audit: {problem.path}: {problem.message}", file=err)
        return EXIT_USAGE
    if args.format == "openvex" and not findings:
        print("xenvmmu audit: no guest to describe: an OpenVEX document needs at least one "
              "statement", file=err)
        return EXIT_USAGE
    text = get_formatter(args.format, color=args.color).render(report)
    if args.output:
        try:
            write_atomic(args.output, text)
        except OSError as e:
            print(f"xenvmmu audit: cannot write {args.output}: {e.strerror or e}", file=err)
            return EXIT_USAGE
    else:
        out.write(text)
    print(f"xenvmmu audit: {report.inputs_read} input file(s), {len(findings)} guest(s), "
          f"{len(errors)} input error(s)", file=err)
    if any(f.verdict == "affected" for f in findings):
        return EXIT_AFFECTED
    if errors or any(f.verdict == "unknown" for f in findings):
        return EXIT_UNASSESSED
    return EXIT_NONE


def _setup(args: argparse.Namespace) -> tuple[AuditSettings, HostSpec, Profile]:
    if not (math.isfinite(args.budget_ms) and args.budget_ms > 0):
        raise ValueError(f"--budget-ms must be a finite number above 0, not {args.budget_ms}")
    settings = audit_settings(budget_ms=args.budget_ms, costs=args.costs or None)
    host = host_from_args(args)
    return settings, host, host.profile(patched=frozenset(args.patched))
