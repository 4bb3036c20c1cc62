"""`xenvmmu audit`: per-guest XSA-97 exposure from real host and guest inputs.

Reads xl.cfg files and `xl list -l` JSON (files or directories, recursively; `-` reads one
from standard input), describes the host with `xl info` output and/or flags, and reports per
guest whether a non-preemptible virtual-MMU operation can hold a CPU longer than the latency
budget, for how long, why, and the cheapest mitigation. On dom0, `--live` runs `xl info` and
`xl list -l` itself (with `--configs /etc/xen`, configured guests that are not running too).

Exit status: 0 no guest affected; 1 some guest affected by a reported advisory (XSA-97 or
another of the registry; `--advisory` narrows them) that `--suppress` does not silence; 2
usage error (a bad `--suppress` file too), nothing readable or the report could not be
written; 3 no guest affected but some input, guest or advisory could not be assessed
(unreadable file, xm-era Python config, release that cannot be classified).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from typing import BinaryIO, TextIO

from .. import xlcfg
from ..audit.api import STDIN_PATH, InputData, audit_settings, iter_audit
from ..audit.format import DEFAULT_FORMAT, FORMATS, get_formatter, open_atomic, output_target
from ..audit.format.base import one_line
from ..audit.settings import DEFAULT_BUDGET_MS, AuditSettings
from ..audit.suppress import Suppression, load_suppressions
from ..costs import CostProfileError
from ..toolstack import HostSpec, InputFileError
from ..toolstack.live import XL_TIMEOUT_S, LiveError, LiveOutputs, read_live
from ..versions import Profile, VersionError
from ._host import add_host_arguments, host_from_args

EXIT_NONE, EXIT_AFFECTED, EXIT_USAGE, EXIT_UNASSESSED = 0, 1, 2, 3
def configure(p: argparse.ArgumentParser) -> None:
    """Description and arguments of `xenvmmu audit` (``xenvmmu.cli`` calls it)."""
    doc = (__doc__ or "").split("\n\n")
    p.description = doc[1] if len(doc) > 1 else None
    p.epilog = doc[-1]
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="xl.cfg files, `xl list -l` JSON files, or directories of them; - "
                   "reads one from standard input (`--host -`: `xl info` from standard input)")
    add_host_arguments(p, "host (flags override what --host says)")
    live = p.add_argument_group("live dom0 (instead of PATH and --host)")
    live.add_argument("--live", action="store_true",
                      help="audit the host this runs on: run `xl info` and `xl list -l` "
                      "(the host's command line from xl info's xen_commandline)")
    live.add_argument("--xl", metavar="PATH",
                      help="the xl to run with --live (default: xl on PATH)")
    live.add_argument("--xl-timeout", type=float, default=XL_TIMEOUT_S, metavar="S",
                      help="seconds each xl command may take (default: %(default)g)")
    live.add_argument("--configs", action="append", default=[], metavar="DIR",
                      help="with --live, also audit the configured guests here (xl.cfg "
                      "files or directories, e.g. /etc/xen) that are not running: a config "
                      "whose name or uuid is a running domain's is not counted twice")
    o = p.add_argument_group("report")
    names = [DEFAULT_FORMAT, *sorted(n for n in FORMATS if n != DEFAULT_FORMAT)]
    o.add_argument("--format", default=DEFAULT_FORMAT, choices=names,
                   help="output format (default: %(default)s)")
    o.add_argument("--output", metavar="FILE",
                   help="write the report to this regular file (replaced atomically; a "
                   "symbolic link is followed to its target; never read back by the scan)")
    o.add_argument("--advisory", metavar="XSA-N[,...]",
                   help="report only these advisories of the registry per guest (default: "
                   "all; `xenvmmu advisories` lists them)")
    o.add_argument("--budget-ms", type=float, default=DEFAULT_BUDGET_MS, metavar="N",
                   help="latency budget in ms (default: %(default)g = one credit-scheduler "
                   "timeslice); a guest whose worst-case stall reaches it is affected")
    o.add_argument("--costs", metavar="FILE", help="TOML cost profile overriding the defaults")
    o.add_argument("--suppress", action="append", default=[], metavar="FILE",
                   help="silence findings per guest: a TOML file of [[suppress]] entries "
                   "(guest, source or uuid; advisory; reason; optional expires), repeatable; "
                   "a suppressed finding is still reported, marked with its reason, but no "
                   "longer sets the exit status")
    o.add_argument("--color", action="store_true", help="colour the table")
    o.add_argument("-v", "--verbose", action="store_true",
                   help="the reasons for every verdict, not only for the guests that need "
                   "attention (table, markdown)")
    o.add_argument("--summary", action="store_true",
                   help="only the fleet summary: guests per verdict, severity and release, "
                   "and the ten worst guests (table)")
    o.add_argument("--wide", action="store_true",
                   help="do not fit the table to the terminal's width")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    misuse = inputs_problem(args)
    if misuse is not None:
        print(f"xenvmmu audit: {misuse}", file=err)
        return EXIT_USAGE
    live: LiveOutputs | None = None
    try:
        rules = _suppressions(args, err)  # a bad file stops the run before xl is run
        if args.live:
            live = read_live(args.xl, args.xl_timeout)
            for what, said in (("xl info", live.info_stderr), ("xl list -l", live.listing_stderr)):
                for line in said.splitlines():
                    print(f"xenvmmu audit: {what}: {line}", file=err)
        settings, host, profile = _setup(args, live)
    except LiveError as e:
        print(f"xenvmmu audit: --live: {e}", file=err)
        return EXIT_USAGE
    except (InputFileError, CostProfileError, VersionError, ValueError) as e:
        print(f"xenvmmu audit: {e}", file=err)
        return EXIT_USAGE
    if args.output:
        try:
            output_target(args.output)  # refuse a device or FIFO before the work, not after
        except OSError as e:
            print(f"xenvmmu audit: cannot write {args.output}: {e.strerror or e}", file=err)
            return EXIT_USAGE
    formatter = FORMATS[args.format]
    if args.summary and "summary_only" not in formatter.options:
        print(f"xenvmmu audit: --summary is for --format table, not {args.format}", file=err)
        return EXIT_USAGE
    exclude = [args.output] if args.output else []
    inputs: Sequence[str | InputData] = (
        [InputData(LIVE_LIST_SOURCE, live.listing)] if live is not None else args.paths)
    audit = iter_audit(inputs, host, settings, profile=profile, exclude=exclude,
                       configs=args.configs, suppress=rules,
                       note=lambda text: print(f"xenvmmu audit: {one_line(text)}", file=err))
    if audit.peek() is None:  # the scan is done: refuse an empty audit before writing
        if not audit.inputs_read:
            print("xenvmmu audit: nothing readable among the inputs", file=err)
            for problem in audit.errors:
                print(f"xenvmmu audit: {problem.path}: {problem.message}", file=err)
            return EXIT_USAGE
        if args.format == "openvex":
            print("xenvmmu audit: no guest to describe: an OpenVEX document needs at least "
                  "one statement", file=err)
            return EXIT_USAGE
    report = get_formatter(args.format, color=args.color, verbose=args.verbose,
                           summary_only=args.summary, width=_width(args, out))
    try:  # the findings are written as they come: the audit runs inside write()
        if args.output:
            with open_atomic(args.output) as fh:
                report.write(audit, fh)
        else:
            report.write(audit, out)
    except BrokenPipeError:
        raise  # stdout closed (| head): xenvmmu.cli ends quietly
    except OSError as e:
        where = args.output or "the report"
        print(f"xenvmmu audit: cannot write {where}: {e.strerror or e}", file=err)
        return EXIT_USAGE
    print(f"xenvmmu audit: {audit.inputs_read} input file(s), {audit.guests} guest(s), "
          f"{len(audit.errors)} input error(s)", file=err)
    if audit.any_affected:
        return EXIT_AFFECTED
    if audit.errors or audit.any_unknown:
        return EXIT_UNASSESSED
    return EXIT_NONE


def _suppressions(args: argparse.Namespace, err: TextIO) -> tuple[Suppression, ...]:
    """The entries of the ``--suppress`` files (``SuppressionError``, a ``ValueError``, for
    one that cannot be used); each expired entry is named on ``err`` and left out."""
    return load_suppressions(
        args.suppress, warn=lambda text: print(f"xenvmmu audit: warning: {text}", file=err))


def _width(args: argparse.Namespace, out: TextIO) -> int | None:
    """The columns to fit the table to: none with --wide or --output; else ``COLUMNS``, else
    the terminal's width when the report goes to a terminal (a pipe gets whole lines)."""
    if args.wide or args.output:
        return None
    try:
        return max(int(os.environ["COLUMNS"]), 20)
    except (KeyError, ValueError):
        pass
    try:
        if out.isatty():
            return max(os.get_terminal_size(out.fileno()).columns, 20)
    except (AttributeError, ValueError, OSError):
        pass
    return None


def _setup(args: argparse.Namespace,
           live: LiveOutputs | None = None) -> tuple[AuditSettings, HostSpec, Profile]:
    if not (math.isfinite(args.budget_ms) and args.budget_ms > 0):
        raise ValueError(f"--budget-ms must be a finite number above 0, not {args.budget_ms}")
    names = [a for a in (args.advisory or "").split(",") if a.strip()] if args.advisory else None
    settings = audit_settings(budget_ms=args.budget_ms, costs=args.costs or None,
                              advisories=names)
    host = (host_from_args(args, (live.info, LIVE_INFO_SOURCE)) if live is not None
            else read_host(args))
    return settings, host, host.profile(patched=frozenset(args.patched))


# --- inputs from standard input and from a live dom0 (shared with `xenvmmu explain`) -----------

#: The sources that `--live` reports its two outputs under.
LIVE_INFO_SOURCE = "xl info"
LIVE_LIST_SOURCE = "xl list -l"
STDIN_SOURCE = "<stdin>"


def inputs_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of inputs given, if anything (a usage error)."""
    paths: list[str] = args.paths
    if args.live:
        if paths:
            return ("--live reads the guests from `xl list -l`: give configured guests with "
                    "--configs DIR, not as PATH")
        if args.host:
            return ("--live reads the host from `xl info`: --host cannot be combined with it "
                    "(the other host flags still override what xl info says)")
    else:
        if not paths:
            return ("give the guests to audit (xl.cfg files, `xl list -l` JSON, directories, "
                    "or - for standard input), or --live on dom0")
        if args.configs or args.xl:
            return "--configs and --xl go with --live"
    if paths.count(STDIN_PATH) + (args.host == STDIN_PATH) > 1:
        return "standard input holds one input: give - once (as a PATH or as --host -)"
    if not (math.isfinite(args.xl_timeout) and args.xl_timeout > 0):
        return f"--xl-timeout must be a finite number of seconds above 0, not {args.xl_timeout}"
    return None


def read_host(args: argparse.Namespace, stdin: BinaryIO | None = None) -> HostSpec:
    """The host of the host flags: ``--host FILE`` or ``--host -`` (``xl info`` on standard
    input) as the base, the other flags winning; else the flags alone."""
    if args.host != STDIN_PATH:
        return host_from_args(args)
    return host_from_args(args, (read_stdin(stdin), STDIN_SOURCE))


def read_stdin(stdin: BinaryIO | None = None) -> bytes:
    """Standard input's bytes, at most ``MAX_INPUT_BYTES`` (``InputFileError`` otherwise)."""
    try:
        return xlcfg.read_stream(stdin if stdin is not None else sys.stdin.buffer,
                                 STDIN_SOURCE)
    except OSError as e:
        raise InputFileError(STDIN_SOURCE, None, f"cannot read: {e.strerror or e}") from None


