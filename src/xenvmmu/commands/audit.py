"""`xenvmmu audit`: per-guest XSA-97 exposure from real host and guest inputs.

Reads xl.cfg files and `xl list -l` JSON (files or directories, recursively), describes
the host with `xl info` output and/or flags, and reports per guest whether a non-preemptible
virtual-MMU operation can hold a CPU longer than the latency budget, for how long, why, and
the cheapest mitigation.

Exit status: 0 no guest affected; 1 some guest affected; 2 usage error or nothing readable;
3 no guest affected but some input or guest could not be assessed (unreadable file, xm-era
Python config, release that cannot be classified).
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from .. import __version__
from ..audit.findings import AuditReport, Finding, InputError
from ..audit.format import DEFAULT_FORMAT, FORMATS, get_formatter, write_atomic
from ..audit.rules import assess
from ..audit.scan import Input, scan
from ..audit.settings import DEFAULT_BUDGET_MS, AuditSettings
from ..costs import CostProfileError, default_profile, load_profile
from ..toolstack import (
    HostOverrides,
    HostSpec,
    InputFileError,
    guest_from_xlcfg,
    guests_from_xl_list,
    host_from_flags,
    load_host,
)
from ..versions import KNOWN_PATCHES, Profile, VersionError, XenVersion

EXIT_NONE, EXIT_AFFECTED, EXIT_USAGE, EXIT_UNASSESSED = 0, 1, 2, 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doc = (__doc__ or "").split("\n\n")
    p = sub.add_parser(
        "audit", help="which guests can stall a CPU (XSA-97), for how long, and the fix",
        description=doc[1] if len(doc) > 1 else None, epilog=doc[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="xl.cfg files, `xl list -l` JSON files, or directories of them")
    h = p.add_argument_group("host (flags override what --host says)")
    h.add_argument("--host", metavar="XL_INFO_FILE", help="`xl info` output of the host")
    h.add_argument("--xen-version", metavar="V", help="Xen version, e.g. 4.4.1 or 4.5-unstable")
    h.add_argument("--cmdline", metavar="TEXT", help="the hypervisor command line")
    h.add_argument("--arch", choices=["x86", "arm"], help="host architecture")
    h.add_argument("--cpu-hap", dest="cpu_hap", action="store_true", default=None,
                   help="the CPU has EPT/NPT (default: assumed unless xl info says otherwise)")
    h.add_argument("--no-cpu-hap", dest="cpu_hap", action="store_false",
                   help="the CPU has no EPT/NPT")
    h.add_argument("--watchdog", dest="watchdog", action="store_true", default=None,
                   help="Xen's NMI watchdog is on")
    h.add_argument("--no-watchdog", dest="watchdog", action="store_false")
    h.add_argument("--watchdog-timeout", type=int, metavar="S", help="watchdog timeout (s)")
    h.add_argument("--patched", action="append", default=[], choices=sorted(KNOWN_PATCHES),
                   help="the hypervisor carries this patch on an unfixed version (repeatable)")
    o = p.add_argument_group("report")
    names = [DEFAULT_FORMAT, *sorted(n for n in FORMATS if n != DEFAULT_FORMAT)]
    o.add_argument("--format", default=DEFAULT_FORMAT, choices=names,
                   help="output format (default: %(default)s)")
    o.add_argument("--output", metavar="FILE", help="write the report here (atomically)")
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
    inputs, errors = scan(args.paths)
    findings: list[Finding] = []
    for item in inputs:
        findings.extend(_assess_input(item, host, profile, settings, errors))
    report = AuditReport(
        findings=tuple(findings), errors=tuple(errors), host=_host_facts(host, profile),
        budget_ms=settings.budget_ms, tool_version=__version__,
    )
    if not findings and not inputs:
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
    print(f"xenvmmu audit: {len(inputs)} input file(s), {len(findings)} guest(s), "
          f"{len(errors)} input error(s)", file=err)
    if any(f.verdict == "affected" for f in findings):
        return EXIT_AFFECTED
    if errors or any(f.verdict == "unknown" for f in findings):
        return EXIT_UNASSESSED
    return EXIT_NONE


def _setup(args: argparse.Namespace) -> tuple[AuditSettings, HostSpec, Profile]:
    if args.budget_ms <= 0:
        raise ValueError("--budget-ms must be positive")
    costs = load_profile(args.costs) if args.costs else default_profile()
    overrides = HostOverrides(
        xen_version=XenVersion.parse(args.xen_version) if args.xen_version else None,
        arch=args.arch, cmdline=args.cmdline, cpu_hap=args.cpu_hap, watchdog=args.watchdog,
        watchdog_timeout=args.watchdog_timeout,
    )
    if args.host:
        host = load_host(args.host, overrides)
    elif overrides.xen_version is not None:
        host = host_from_flags(
            overrides.xen_version, cmdline=args.cmdline or "", arch=args.arch or "x86",
            cpu_hap=args.cpu_hap, watchdog=args.watchdog, watchdog_timeout=args.watchdog_timeout,
        )
    else:
        raise ValueError("describe the host: give --host XL_INFO_FILE or --xen-version V")
    profile = host.profile(patched=frozenset(args.patched))
    return AuditSettings(costs=costs, budget_ms=args.budget_ms), host, profile


def _assess_input(item: Input, host: HostSpec, profile: Profile, settings: AuditSettings,
                  errors: list[InputError]) -> list[Finding]:
    if item.kind == "xlcfg":
        guest = guest_from_xlcfg(item.data, profile, source=item.path, arch=host.arch)
        return [assess(guest, host, profile, settings)]
    try:
        listing = guests_from_xl_list(item.data, source=item.path)
    except InputFileError as e:
        errors.append(InputError(e.path, e.line, e.message))
        return []
    return [assess(g, host, profile, settings) for g in listing.guests]


def _host_facts(host: HostSpec, profile: Profile) -> dict[str, object]:
    return {
        "source": host.source,
        "xen_version": str(host.xen_version),
        "arch": host.arch,
        "cpu_hap": host.cpu_hap,
        "cpu_hap_assumed": host.cpu_hap_assumed,
        "hap_enabled": host.hap_enabled,
        "watchdog": host.watchdog,
        "watchdog_timeout_s": host.watchdog_timeout,
        "xsa97_fixed": profile.logdirty_preemptible,
        "hap_retype": profile.hap_retype,
        "patched": sorted(profile.patched),
    }
