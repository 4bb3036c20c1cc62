"""Results of parsing an xl.cfg file: settings, errors, typed look-ups."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal, NamedTuple, TypeAlias

# An atom is a string (libxlu keeps numbers as their text); a list holds values
# (nested from dialect 4.6). Strings are the file's bytes decoded as UTF-8 with
# Python's "surrogateescape" handler: s.encode("utf-8", "surrogateescape") gives the bytes.
Value: TypeAlias = "str | tuple[Value, ...]"


class Setting(NamedTuple):
    """One assignment libxlu stored, with the line it records (where the value starts).

    A named tuple rather than a dataclass: a scan builds millions of them.
    """

    key: str
    value: Value
    line: int
    op: Literal["=", "+="] = "="

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, tuple)


class ConfigError(NamedTuple):
    """One line libxlu prints: ``<file>:<line>: <message>`` (line as libxlu prints it)."""

    line: int
    message: str

    def format(self, source: str) -> str:
        return f"{source}:{self.line}: {self.message}"


class Lookup(NamedTuple):
    """The result of one of xl's typed getters.

    ``status`` is ``"ok"`` (``value`` set), ``"absent"`` (no such key: ESRCH, nothing
    printed) or ``"error"`` (``errno`` is ``"EINVAL"`` or ``"ERANGE"``; xl printed
    ``message`` for ``line`` and ignores the key).
    """

    key: str
    status: Literal["ok", "absent", "error"]
    value: int | bool | str | tuple[Value, ...] | None = None
    errno: str | None = None
    line: int | None = None
    message: str | None = None


def rebuild(value: object, leaf: Callable[[str], Any], seq: Callable[[list[Any]], Any]) -> Any:
    """Map a (possibly deeply) nested value bottom-up without recursion.

    libxlu accepts lists nested thousands deep (up to bison's stack limit), deeper than
    Python's recursion limit, so nested values are never walked recursively.
    """
    if isinstance(value, str):
        return leaf(value)
    assert isinstance(value, (list, tuple))
    stack: list[tuple[Iterator[object], list[Any]]] = [(iter(value), [])]
    while True:
        items, out = stack[-1]
        for item in items:
            if isinstance(item, str):
                out.append(leaf(item))
            else:
                assert isinstance(item, (list, tuple))
                stack.append((iter(item), []))
                break
        else:
            stack.pop()
            done = seq(out)
            if not stack:
                return done
            stack[-1][1].append(done)


PYTHON_WARNING = (
    "warning: Config file looks like it contains Python code.",
    "warning:  Arbitrary Python is no longer supported.",
    "warning:  See https://wiki.xen.org/wiki/PythonInXlConfig",
)


class ParseResult:
    """Everything libxlu reports for one file in one dialect.

    ``ok`` is true when the file parsed; xl then uses ``settings`` (file order, the last
    one of a key wins). On failure xl uses nothing from the file: ``errors`` holds what
    libxlu printed and ``python_warning`` whether it added its "looks like Python" warning.
    ``crash`` names the assertion on which real libxlu aborts for this input (a NUL byte
    inside a quoted string); we report it as an error instead of crashing. ``failure`` is
    an error libxlu returns without printing a line (``Cannot allocate memory`` when ``+=``
    strings outgrow ``_parser.CONCAT_BUDGET``); xl then prints ``Failed to parse config``.
    ``truncated``: parsing stopped at the caller's ``max_errors``; libxlu would go on and
    print more.

    Immutable, compared and hashed by its fields (a plain class, not a dataclass: see
    ``_lalr.Rule``).
    """

    __slots__ = ("_index", "crash", "dialect", "errors", "failure", "ok", "python_warning",
                 "settings", "truncated")
    _FIELDS = ("dialect", "ok", "settings", "errors", "python_warning", "crash", "failure",
               "truncated")

    dialect: str
    ok: bool
    settings: tuple[Setting, ...]
    errors: tuple[ConfigError, ...]
    python_warning: bool
    crash: str | None
    failure: str | None
    truncated: bool
    _index: dict[str, Setting]

    def __init__(self, dialect: str, ok: bool, settings: tuple[Setting, ...] = (),
                 errors: tuple[ConfigError, ...] = (), python_warning: bool = False,
                 crash: str | None = None, failure: str | None = None,
                 truncated: bool = False) -> None:
        index: dict[str, Setting] = {}
        for s in settings:
            index[s.key] = s  # later settings replace earlier ones: last wins
        for name, value in (("dialect", dialect), ("ok", ok), ("settings", settings),
                            ("errors", errors), ("python_warning", python_warning),
                            ("crash", crash), ("failure", failure), ("truncated", truncated),
                            ("_index", index)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ParseResult is immutable (cannot set {name})")

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, f) for f in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParseResult):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._FIELDS)
        return f"ParseResult({inner})"

    def find(self, key: str) -> Setting | None:
        """The setting a libxlu look-up returns: the most recent one of ``key``."""
        return self._index.get(key)

    def keys(self) -> list[str]:
        """Distinct keys, in order of first appearance."""
        return list(dict.fromkeys(s.key for s in self.settings))

    def messages(self, source: str) -> list[str]:
        """The lines libxlu would print for this file, as ``source:line: message``."""
        if self.crash is not None:
            return [
                f"{source}: libxlu would abort on this file (assertion `{self.crash}' "
                "fails: a NUL byte inside a quoted string)"
            ]
        lines = [e.format(source) for e in self.errors]
        if self.python_warning:
            lines.extend(PYTHON_WARNING)
        if self.failure is not None:
            lines.append(f"Failed to parse config: {self.failure}")
        return lines
