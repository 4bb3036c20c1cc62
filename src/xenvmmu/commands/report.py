"""`xenvmmu report`: the audit, the sweep and the figures in one self-contained HTML file.

Audits the inputs as `xenvmmu audit` does (same inputs, same host description: `xl info`
output and/or flags) and writes one HTML file with the fleet summary, the audit table
ordered by severity, each guest's reasons and mitigations, the figures (the stall against
guest size per release and paging mode from a sweep made by `xenvmmu sweep`, with the
audited guests drawn over it, and the victim's delays), the cost profile used with the
source of every price, the tool version and the sha256 of every input. The file has no
script and loads nothing: it can be mailed, attached or archived as it is. Figures need
matplotlib (pip install 'xenvmmu[report]'); without it the report says so and has none.

Exit status as `xenvmmu audit`: 0 no guest affected; 1 some guest affected; 2 usage error,
nothing readable or the report could not be written; 3 some input or guest could not be
assessed. A report of a sweep alone (no INPUTS) exits 0 once written.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..audit.api import audit_settings, run_audit
from ..audit.findings import AuditReport
from ..audit.format.base import output_target, write_atomic
from ..audit.settings import DEFAULT_BUDGET_MS
from ..costs import CostProfileError
from ..report import plots
from ..report.costspec import DEFAULT_LABEL, CostSpec, from_profile
from ..report.digests import report_digests
from ..report.html import ReportInput, render
from ..report.store import SweepData, SweepDirError, load_sweep
from ..toolstack import InputFileError
from ..versions import VersionError
from ._host import add_host_arguments, host_from_args

EXIT_NONE, EXIT_AFFECTED, EXIT_USAGE, EXIT_UNASSESSED = 0, 1, 2, 3


def configure(p: argparse.ArgumentParser) -> None:
    """Description and arguments of `xenvmmu report` (``xenvmmu.cli`` calls it)."""
    doc = (__doc__ or "").split("\n\n")
    p.description = "\n\n".join(doc[1:-1])
    p.epilog = doc[-1]
    p.add_argument("paths", nargs="*", metavar="INPUT",
                   help="xl.cfg files, `xl list -l` JSON files, or directories of them")
    add_host_arguments(p, "host (as xenvmmu audit; flags override what --host says)")
    o = p.add_argument_group("report")
    o.add_argument("--sweep", metavar="DIR", help="a directory written by `xenvmmu sweep`")
    o.add_argument("--output", default="report.html", metavar="FILE",
                   help="the HTML file to write (replaced atomically; default: %(default)s)")
    o.add_argument("--plots-dir", metavar="DIR",
                   help="also write every figure there as PNG and SVG")
    o.add_argument("--title", default="XSA-97 report", help="the report's title")
    o.add_argument("--budget-ms", type=float, default=DEFAULT_BUDGET_MS, metavar="N",
                   help="latency budget in ms (default: %(default)g)")
    o.add_argument("--costs", metavar="FILE", help="TOML cost profile for the audit")
    p.set_defaults(func=run)


def _generated() -> datetime:
    """Now, or ``SOURCE_DATE_EPOCH`` (reproducible builds) when set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC).replace(microsecond=0)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr

    def fail(message: str) -> int:
        print(f"xenvmmu report: {message}", file=err)
        return EXIT_USAGE

    if not args.paths and not args.sweep:
        return fail("nothing to report: give INPUTS to audit and/or --sweep DIR")
    if not (math.isfinite(args.budget_ms) and args.budget_ms > 0):
        return fail(f"--budget-ms must be a finite number above 0, not {args.budget_ms}")
    try:
        output_target(args.output)
    except OSError as e:
        return fail(f"cannot write {args.output}: {e.strerror or e}")
    audit: AuditReport | None = None
    costs: list[CostSpec] = []
    fleet: plots.Fleet | None = None
    watchdog_ms = plots.WATCHDOG_MS
    try:
        sweep: SweepData | None = load_sweep(args.sweep) if args.sweep else None
        if args.paths:
            host = host_from_args(args)
            settings = audit_settings(budget_ms=args.budget_ms, costs=args.costs or None)
            profile = host.profile(patched=frozenset(args.patched))
            audit = run_audit(args.paths, host, settings, profile=profile,
                              exclude=[args.output])
            label = Path(args.costs).stem if args.costs else DEFAULT_LABEL
            costs.append(from_profile(label, settings.costs))
            fleet = plots.fleet_from_findings(
                audit.findings, f"audited fleet (Xen {host.xen_version})")
            if host.watchdog_timeout:
                watchdog_ms = host.watchdog_timeout * 1000.0
    except (InputFileError, CostProfileError, VersionError, SweepDirError, ValueError) as e:
        return fail(str(e))
    if audit is not None and not audit.findings and not audit.inputs_read:
        for problem in audit.errors:
            print(f"xenvmmu report: {problem.path}: {problem.message}", file=err)
        return fail("nothing readable among the inputs")
    if sweep is not None:
        seen = {c.digest for c in costs}
        costs += [c for c in sweep.costs if c.digest not in seen]
    notes: list[str] = []
    figures: list[plots.Figure] = []
    if plots.available():
        figures = plots.make_figures(sweep, fleet, budget_ms=args.budget_ms,
                                     watchdog_ms=watchdog_ms)
    else:
        notes.append(f"No figures: {plots.MISSING}.")
        print(f"xenvmmu report: no figures: {plots.MISSING}", file=err)
    if sweep is None:
        notes.append("No sweep was given (--sweep DIR from `xenvmmu sweep`): the figures "
                     "have no simulated curves.")
    digests = report_digests(audit, args.paths, host_file=args.host,
                             cost_files=[args.costs] if args.costs else [],
                             sweep_dir=args.sweep)
    text = render(ReportInput(title=args.title, audit=audit, sweep=sweep, figures=figures,
                              costs=costs, digests=digests, generated=_generated(),
                              notes=notes))
    try:
        write_atomic(args.output, text)
        if args.plots_dir and figures:
            for path in plots.save_figures(figures, args.plots_dir):
                out.write(f"{path}\n")
    except OSError as e:
        return fail(f"cannot write {getattr(e, 'filename', None) or args.output}: "
                    f"{e.strerror or e}")
    out.write(f"{args.output}\n")
    size = len(text.encode("utf-8", "backslashreplace"))
    if audit is None:
        print(f"xenvmmu report: {args.output}: {size:,} bytes, {len(figures)} figure(s)",
              file=err)
        return EXIT_NONE
    print(f"xenvmmu report: {args.output}: {size:,} bytes, {len(audit.findings)} guest(s), "
          f"{len(audit.errors)} input error(s), {len(figures)} figure(s)", file=err)
    if any(f.verdict == "affected" for f in audit.findings):
        return EXIT_AFFECTED
    if audit.errors or any(f.verdict == "unknown" for f in audit.findings):
        return EXIT_UNASSESSED
    return EXIT_NONE
