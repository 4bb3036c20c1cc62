"""`xenvmmu parse`: show what xl's parser (libxlu) makes of xl.cfg files.

Human output by default: the settings in file order, xl's typed reading of the well-known
keys, and every error as ``FILE:LINE: message`` in xl's own words. ``--json`` prints one JSON
object per file (JSON Lines, argument order): the conformance-suite object plus ``"file"``.
Exit status: 0 every file parsed, 1 some file has errors, 2 usage error, unreadable file
(missing, not a regular file, larger than the input limit) or output that cannot be written.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from typing import TextIO

from .. import xlcfg
from ..xlcfg import ESCAPES, MAX_INPUT_BYTES, ParseResult, Value

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
#: Errors shown per file: a few MiB of garbage hold millions (libxlu prints them all).
MAX_ERRORS = 1000
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
    p.add_argument("files", nargs="+", metavar="FILE",
                   help=f"xl.cfg file ('-' reads stdin); regular files of at most "
                   f"{MAX_INPUT_BYTES} bytes")
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
        result = xlcfg.parse(data, args.dialect, max_errors=MAX_ERRORS)
        if not result.ok and status == EXIT_OK:
            status = EXIT_ERRORS
        if args.json:
            obj = {"file": name, **xlcfg.to_json(result)}
            if result.truncated:
                obj["truncated"] = True
            out.write(dumps_json(obj) + "\n")
        else:
            _human(name, result, out)
    return status


def _read(name: str) -> bytes:
    """The file's bytes (stdin for ``-``), at most ``MAX_INPUT_BYTES``; only regular files
    are opened (a FIFO or device is refused, without blocking)."""
    if name == "-":
        return xlcfg.read_stream(sys.stdin.buffer, "-")
    return xlcfg.read_bytes(name)


def _human(name: str, result: ParseResult, out: TextIO) -> None:
    if not result.ok:
        out.write(f"{_printable(name)}: rejected by xl (xl.cfg dialect {result.dialect})\n")
        for line in result.messages(name):
            out.write(_printable(line) + "\n")
        if result.truncated:
            out.write(f"{_printable(name)}: xenvmmu stopped after the first {MAX_ERRORS} "
                      "errors (xl would print more)\n")
        return
    n = len(result.settings)
    settings = f"{n} setting{'s' * (n != 1)}"
    out.write(f"{_printable(name)}: ok (xl.cfg dialect {result.dialect}, {settings})\n")
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
    Control characters and undecodable bytes are shown escaped (``\\x..``). Lists nested
    thousands deep (libxlu accepts ~5000 levels) are rendered without recursion.
    """
    if isinstance(value, str):
        return _atom(value)
    parts: list[str] = []
    stack: list[Iterator[Value]] = [iter(value)]
    parts.append("[")
    first = True
    while stack:
        for item in stack[-1]:
            if not first:
                parts.append(", ")
            if isinstance(item, str):
                parts.append(_atom(item))
                first = False
            else:
                parts.append("[")
                stack.append(iter(item))
                first = True
                break
        else:
            stack.pop()
            parts.append("]")
            first = False
    return "".join(parts)


def _atom(value: str) -> str:
    if _NUMBER.fullmatch(value):
        return value
    return '"' + "".join(_ESCAPES.get(c) or _visible(c) for c in value) + '"'


def dumps_json(document: object) -> str:
    """``json.dumps(document, ensure_ascii=True)`` without recursion, for the values of a
    parse (strings, lists nested thousands deep, dicts, numbers, booleans, None)."""
    import json  # only --json needs it: a plain parse starts without it

    out: list[str] = []
    # Each frame: an iterator over (key or None, value) and the closing bracket.
    stack: list[tuple[Iterator[tuple[str | None, object]], str]] = []
    first = True

    def opening(value: object) -> bool:
        """Write a scalar, or open a container (pushing a frame); True if opened."""
        nonlocal first
        if isinstance(value, dict):
            out.append("{")
            stack.append((iter(value.items()), "}"))
        elif isinstance(value, list | tuple):
            out.append("[")
            stack.append((((None, v) for v in value), "]"))
        else:
            out.append(json.dumps(value, ensure_ascii=True))
            return False
        first = True
        return True

    opening(document)
    while stack:
        items, close = stack[-1]
        for key, value in items:
            if not first:
                out.append(", ")
            first = False
            if key is not None:
                out.append(json.dumps(key, ensure_ascii=True) + ": ")
            if opening(value):
                break
        else:
            stack.pop()
            out.append(close)
            first = False
    return "".join(out)


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
