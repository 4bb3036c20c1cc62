"""`xenvmmu` command line: a thin dispatcher over ``xenvmmu.commands``.

Reports go to stdout, progress and diagnostics to stderr. Exit status is the command's.

A subcommand's module is imported only when that subcommand runs or shows its help, so
``xenvmmu --help``, ``--version`` and ``parse`` never load numpy, SimPy, the paging model or
the cost model. Each module in :data:`COMMANDS` has ``configure(parser)`` (description,
arguments, ``func=run``) and ``run(args)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import __version__

#: (name, module, one-line help), in the order ``xenvmmu --help`` lists them.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("audit", "xenvmmu.commands.audit",
     "which guests can stall a CPU (XSA-97), for how long, and the fix"),
    ("parse", "xenvmmu.commands.parse", "parse xl.cfg files exactly as xl does"),
    ("simulate", "xenvmmu.commands.simulate",
     "run a scenario on a modelled Xen host and measure the stalls"),
)


if TYPE_CHECKING:
    _SubParsersAction = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # not subscriptable at run time
    _SubParsersAction = argparse._SubParsersAction


class _LazySubcommands(_SubParsersAction):
    """Subcommand parsers that get their arguments from their module when chosen."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, tuple[str, argparse.ArgumentParser]] = {}

    def add_lazy(self, name: str, module: str, summary: str) -> None:
        self._pending[name] = (module, self.add_parser(name, help=summary))

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        if isinstance(values, list) and values and values[0] in self._pending:
            module, subparser = self._pending.pop(values[0])
            importlib.import_module(module).configure(subparser)
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xenvmmu",
        description="Audit and simulate Xen virtual-MMU denial of service (XSA-97: "
        "CVE-2014-5146 for HAP guests, CVE-2014-5149 for shadow-paged guests).",
    )
    parser.add_argument("--version", action="version", version=f"xenvmmu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=_LazySubcommands)
    assert isinstance(sub, _LazySubcommands)
    for name, module, summary in COMMANDS:
        sub.add_lazy(name, module, summary)
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
