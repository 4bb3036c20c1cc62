"""`xenvmmu` command line: a thin dispatcher over ``xenvmmu.commands``.

Reports go to stdout, progress and diagnostics to stderr. Exit status is the command's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .commands import audit as audit_cmd
from .commands import parse as parse_cmd
from .commands import simulate as simulate_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xenvmmu",
        description="Audit and simulate Xen virtual-MMU denial of service (XSA-97: "
        "CVE-2014-5146 for HAP guests, CVE-2014-5149 for shadow-paged guests).",
    )
    parser.add_argument("--version", action="version", version=f"xenvmmu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    audit_cmd.add_parser(sub)
    parse_cmd.add_parser(sub)
    simulate_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        print("xenvmmu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
