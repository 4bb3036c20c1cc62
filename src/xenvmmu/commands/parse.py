"""`xenvmmu parse`: show what xl's parser (libxlu) makes of xl.cfg files.

Human output by default: the settings in file order, xl's typed reading of the well-known
keys, and every error as ``FILE:LINE: message`` in xl's own words. ``--json`` prints one JSON
object per file (JSON Lines, argument order): the conformance-suite object plus ``"file"``.
Exit status: 0 every file parsed, 1 some file has errors, 2 usage error or unreadable file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TextIO

from .. import xlcfg
from ..xlcfg import ESCAPES, ParseResult, Value

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
_NUMBER = re.compile(r"[0-9][0-9a-fx]*")

# Character -> its xl.cfg escape, the inverse of libxlu's dequote table.
_ESCAPES = {char: "\\" + escaped for escaped, char in ESCAPES.items() if escaped != "'"}


def configure(p: argparse.ArgumentParser) -> None:
    """Description and arguments of `xenvmmu parse` (``xenvmmu.cli`` calls it)."""
    p.description = __doc__.split("\n\n")[0] if __doc__ else None
    p.epilog = (
        "Dialects: "
        + ", ".join(f"{name}" for name in xlcfg.DIALECTS)
        + " (the first Xen release whose parser behaves that way; "
        "4.3 covers 4.3-4.5, 4.7 covers 4.7-4.12, 4.13 covers 4.13 and later)."
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="xl.cfg file ('-' reads stdin)")
    p.add_argument(
        "--dialect",
        default=xlcfg.DEFAULT_DIALECT,
        choices=list(xlcfg.DIALECTS),
        help="xl.cfg grammar dialect (default: %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per file (JSON Lines)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    status = EXIT_OK
    for name in args.files:
        try:
            data = _read(name)
        except OSError as e:
            print(f"xenvmmu parse: cannot read {name}: {e.strerror or e}", file=err)
            status = EXIT_USAGE
            continue
        result = xlcfg.parse(data, args.dialect)
        if not result.ok and status == EXIT_OK:
            status = EXIT_ERRORS
        if args.json:
            obj = {"file": name, **xlcfg.to_json(result)}
            out.write(json.dumps(obj, ensure_ascii=True) + "\n")
        else:
            _human(name, result, out)
    return status


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as f:
        return f.read()


def _human(name: str, result: ParseResult, out: TextIO) -> None:
    if not result.ok:
        out.write(f"{name}: rejected by xl (xl.cfg dialect {result.dialect})\n")
        for line in result.messages(name):
            out.write(_printable(line) + "\n")
        return
    n = len(result.settings)
    out.write(f"{name}: ok (xl.cfg dialect {result.dialect}, {n} setting{'s' * (n != 1)})\n")
    for s in result.settings:
        out.write(f"  {s.line:5d}  {s.key} {s.op} {render_value(s.value)}\n")
    shown: list[str] = []
    for lk in xlcfg.typed_values(result):
        if lk.status == "ok":
            value = lk.value
            text = render_value(value) if isinstance(value, str) else str(value).lower()
            shown.append(f"{lk.key}={text}")
        elif lk.status == "error":
            out.write(f"{name}:{lk.line}: {lk.message}\n")
    out.write(
        "  xl reads: " + (" ".join(shown) if shown else "(none of the well-known keys)") + "\n"
    )


def render_value(value: Value) -> str:
    """A value in xl.cfg syntax: number-like atoms bare, other strings double-quoted.

    libxlu keeps ``1024`` and ``"1024"`` as the same string, so either spelling shows bare.
    Control characters and undecodable bytes are shown escaped (``\\x..``).
    """
    if isinstance(value, str):
        if _NUMBER.fullmatch(value):
            return value
        return '"' + "".join(_ESCAPES.get(c) or _visible(c) for c in value) + '"'
    return "[" + ", ".join(render_value(v) for v in value) + "]"


def _printable(text: str) -> str:
    """A message with control characters and undecodable bytes made visible."""
    return "".join(_visible(c) for c in text)


def _visible(c: str) -> str:
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if c in _ESCAPES and c not in '\\"':
        return _ESCAPES[c]
    if code < 32 or code == 127:
        return f"\\x{code:02x}"
    return c
