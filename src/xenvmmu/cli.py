"""`xenvmmu` command line: a thin dispatcher over ``xenvmmu.commands``.

Reports go to stdout, progress and diagnostics to stderr. Exit status is the command's;
a report that cannot be written to stdout (a full disk, an I/O error) is a message on stderr
and exit status 2, whatever the command found; a closed pipe (``| head``) ends quietly with 0.

A subcommand's module is imported only when that subcommand runs or shows its help, so
``xenvmmu --help``, ``--version`` and ``parse`` never load numpy, SimPy, the paging model or
the cost model. Each module in :data:`COMMANDS` has ``configure(parser)`` (description,
arguments, ``func=run``) and ``run(args, out=None, err=None)``; ``main`` passes ``out``, a
stdout whose write errors it turns into that exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO, cast

from . import __version__

#: (name, module, one-line help), in the order ``xenvmmu --help`` lists them.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("audit", "xenvmmu.commands.audit",
     "which guests can stall a CPU (XSA-97), for how long, and the fix"),
    ("explain", "xenvmmu.commands.explain",
     "one guest: its config with the deciding lines, every reason and operation, the fix"),
    ("parse", "xenvmmu.commands.parse", "parse xl.cfg files exactly as xl does"),
    ("simulate", "xenvmmu.commands.simulate",
     "run a scenario on a modelled Xen host and measure the stalls"),
    ("sweep", "xenvmmu.commands.sweep",
     "run simulate over a grid of releases, paging modes and sizes (resumable)"),
    ("advisories", "xenvmmu.commands.advisories",
     "the advisories the audit knows, with the source of every fact"),
    ("report", "xenvmmu.commands.report",
     "the audit, a sweep and their figures in one self-contained HTML file"),
    ("calibrate", "xenvmmu.commands.calibrate", "measure this host's costs per unit of work"),
)


if TYPE_CHECKING:
    _SubParsersAction = argparse._SubParsersAction[argparse.ArgumentParser]
else:  # not subscriptable at run time
    _SubParsersAction = argparse._SubParsersAction


def _columns() -> int:
    """The terminal width, as ``shutil.get_terminal_size`` finds it (``COLUMNS``, then
    stdout's terminal, else 80), without importing shutil."""
    try:
        return max(int(os.environ["COLUMNS"]), 1)
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every parser's formatter: descriptions kept as written (paragraphs of the command
    modules' docstrings). argparse builds one for every ``add_argument``; its own looks up
    the terminal width through shutil, which would be most of ``parse``'s start-up."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


class _LazySubcommands(_SubParsersAction):
    """Subcommand parsers that get their arguments from their module when chosen."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, tuple[str, argparse.ArgumentParser]] = {}

    def add_lazy(self, name: str, module: str, summary: str) -> None:
        self._pending[name] = (module, self.add_parser(name, help=summary,
                                                       formatter_class=HelpFormatter))

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
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"xenvmmu {__version__}")
    # prog given: argparse would otherwise build a help formatter (and import shutil) now
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=_LazySubcommands,
                                prog="xenvmmu")
    assert isinstance(sub, _LazySubcommands)
    for name, module, summary in COMMANDS:
        sub.add_lazy(name, module, summary)
    return parser


class _OutputFailed(Exception):
    """Writing the report to stdout failed (not a closed pipe)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


class _GuardedStdout:
    """stdout for a command: a failed write or flush (ENOSPC, EIO...) raises
    :class:`_OutputFailed`, so that it cannot pass for a result; a closed pipe stays
    ``BrokenPipeError``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _OutputFailed(e) from e

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _OutputFailed(e) from e

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _tolerant(stream: object) -> None:
    """Never fail on text that cannot be encoded (a lone surrogate in a path)."""
    if isinstance(stream, io.TextIOWrapper):
        with contextlib.suppress(ValueError, io.UnsupportedOperation):  # detached
            stream.reconfigure(errors="backslashreplace")


def _discard_stdout() -> None:
    """After a failed write, send what is still buffered to /dev/null, so that the flush at
    interpreter exit neither fails again nor prints a traceback."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return  # not a real file (a test's capture)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant(sys.stdout)
    _tolerant(sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    out = _GuardedStdout(sys.stdout)
    try:
        status: int = args.func(args, out=cast(TextIO, out))
        out.flush()
    except KeyboardInterrupt:
        print("xenvmmu: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return 0
    except _OutputFailed as e:
        _discard_stdout()
        print(f"xenvmmu {args.command}: cannot write the report to standard output: {e}",
              file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
