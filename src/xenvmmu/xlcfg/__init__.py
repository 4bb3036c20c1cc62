"""The xl.cfg language exactly as Xen's libxlu parses it, per grammar dialect.

Tiny API in the style of ``tomllib``::

    result = xlcfg.parse(data, dialect="4.13")   # bytes or str -> ParseResult (never raises)
    result = xlcfg.load(path, dialect="4.4")     # reads the file's bytes
    cfg = xlcfg.loads(text)                      # ParseResult, or raises XlCfgError

``ParseResult`` holds the settings in file order (last one of a key wins), the errors as
libxlu prints them, and whether libxlu adds its "looks like Python" warning. The typed
getters ``get_long``, ``get_defbool``, ``get_string`` and ``get_list`` give xl's reading of
one key, warnings included. This package knows nothing of what the keys mean.

``read_bytes`` (a path) and ``read_stream`` (stdin) are how every xenvmmu input is read:
regular files only, never blocking, at most ``MAX_INPUT_BYTES``.
"""

from __future__ import annotations

import os

from ._dialects import DEFAULT_DIALECT, DIALECTS, Dialect
from ._dialects import SIMPLE_ESCAPES as ESCAPES
from ._export import TYPED_KEYS, to_json, typed_values
from ._fast import fast_parse
from ._getters import get_defbool, get_list, get_long, get_string, strtol
from ._io import (
    MAX_INPUT_BYTES,
    InputRejected,
    check_regular,
    file_kind,
    open_regular,
    read_bytes,
    read_stream,
)
from ._types import ConfigError, Lookup, ParseResult, Setting, Value, rebuild

__all__ = [
    "DEFAULT_DIALECT",
    "DIALECTS",
    "ESCAPES",
    "MAX_INPUT_BYTES",
    "TYPED_KEYS",
    "ConfigError",
    "Dialect",
    "InputRejected",
    "Lookup",
    "ParseResult",
    "Setting",
    "Value",
    "XlCfgError",
    "check_regular",
    "file_kind",
    "get_defbool",
    "get_list",
    "get_long",
    "get_string",
    "load",
    "loads",
    "open_regular",
    "parse",
    "read_bytes",
    "read_stream",
    "strtol",
    "to_json",
    "typed_values",
]


class XlCfgError(ValueError):
    """Raised by ``loads`` for a file libxlu rejects; carries the first error's line."""

    def __init__(self, result: ParseResult, source: str = "CFG") -> None:
        self.result = result
        first = result.errors[0] if result.errors else None
        self.lineno = first.line if first else 0
        super().__init__("\n".join(result.messages(source)))


def parse(data: bytes | str, dialect: str = DEFAULT_DIALECT, *, fast: bool = True,
          max_errors: int | None = None) -> ParseResult:
    """Parse xl.cfg text as libxlu of ``dialect`` does. Never raises for bad input.

    ``str`` input is encoded as UTF-8 (lone surrogates from "surrogateescape" become the
    original bytes again). ``fast=False`` skips the regular-expression fast path and always
    replays the full parser (the two agree; tests check it). ``max_errors`` stops at that
    many errors (``ParseResult.truncated``; the Python warning then reflects only the part
    parsed): a few MiB of garbage hold millions of errors, and libxlu prints every one.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown xl.cfg dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    text = raw.decode("latin-1")
    if fast:
        plain = fast_parse(text, dialect)
        if plain is not None:
            return _success(dialect, plain)
    if max_errors is not None and max_errors < 1:
        raise ValueError(f"max_errors must be at least 1, not {max_errors}")
    from ._parser import parse_text  # the full parser, for files the fast path declines

    ctx, crash = parse_text(text, dialect, max_errors)
    if crash is not None:
        return ParseResult(dialect, False, crash=crash)
    if ctx.err:
        return ParseResult(
            dialect,
            False,
            errors=tuple(ConfigError(line, _public(msg)) for line, msg in ctx.errors),
            python_warning=ctx.likely_python,
            failure=ctx.failure,
            truncated=ctx.truncated,
        )
    return _success(dialect, ctx.settings)


def _success(dialect: str, raw_settings: list[list[object]]) -> ParseResult:
    settings = tuple(
        Setting(_public(key), _freeze(value), line, op)  # type: ignore[arg-type]
        for key, value, line, op in raw_settings
    )
    return ParseResult(dialect, True, settings=settings)


def loads(data: bytes | str, dialect: str = DEFAULT_DIALECT, source: str = "CFG") -> ParseResult:
    """Parse, raising ``XlCfgError`` (with libxlu's messages) when the file is rejected."""
    result = parse(data, dialect)
    if not result.ok:
        raise XlCfgError(result, source)
    return result


def load(path: str | os.PathLike[str], dialect: str = DEFAULT_DIALECT) -> ParseResult:
    """Read a file's bytes and parse them (``OSError`` propagates: ``InputRejected`` for a
    path that is not a regular file or is larger than ``MAX_INPUT_BYTES``)."""
    return parse(read_bytes(path), dialect)


def _public(raw: str) -> str:
    """Latin-1 text (one char per byte) to the UTF-8/surrogateescape form."""
    if raw.isascii():
        return raw
    return raw.encode("latin-1").decode("utf-8", "surrogateescape")


def _freeze(value: object) -> Value:
    if isinstance(value, str):
        return _public(value)
    frozen: Value = rebuild(value, _public, tuple)
    return frozen
