"""A fast path for the common case: a file libxlu accepts without a single complaint.

Replaying bison token by token costs a few microseconds a token. Most real files are plain
``key = atom`` / ``key = [atom, ...]`` statements, blank lines and comments; for those, one
regular expression per statement recognises exactly the language the grammar accepts and
gives the same settings. Strings may hold the simple escapes (``\\\\ \\" \\' \\a \\b \\f \\n
\\r \\t \\v``); lists may nest a few levels where the dialect allows it. Anything else —
deeper lists, ``+=``, other escapes, a NUL byte, a stray character, any error at all —
returns ``None`` and the full replay in ``_parser`` decides. Property tests check that both
paths agree wherever the fast one answers.
"""

from __future__ import annotations

import re
from functools import cache

from ._dialects import DIALECTS, SIMPLE_ESCAPES

_NESTING = 3  # list depth the fast path recognises (deeper lists take the full parser)

# Every token here is deterministic, so quantifiers are possessive (*+): a file that does
# not match fails in linear time instead of backtracking through a long list.
_WS = r"[ \t]*+"
_SEP = r"[ \t\n]*+(?:\#[^\n]*+\n[ \t\n]*+)*+"  # blanks, newlines and comments (nlok)
_ESC = r"\\[\\\"'abfnrtv]"
# An atom: a NUMBER token, or a quoted string without NUL and with simple escapes only.
_ATOM = (
    rf"(?:[0-9][0-9a-fx]*+"
    rf"|\"[^\"\\\n\x00]*+(?:{_ESC}[^\"\\\n\x00]*+)*+\""
    rf"|'[^'\\\n\x00]*+(?:{_ESC}[^'\\\n\x00]*+)*+')"
)
_END_LINE = r"(?:\n|\#[^\n]*+\n)"
# Blank statements: empty lines, comment lines and lone ';' (endstmt alone).
_SKIP = rf"(?:[ \t]*+(?:{_END_LINE}|;))*+"

# Tokens inside an already validated list, for ``findall`` (whole matches): comments,
# strings (with their quotes), numbers and brackets; blanks and commas are skipped by the
# scan itself.
_LIST_TOKEN = re.compile(
    r"\#[^\n]*+\n|\"[^\"\\]*+(?:\\.[^\"\\]*+)*+\"|'[^'\\]*+(?:\\.[^'\\]*+)*+'"
    r"|[0-9][0-9a-fx]*+|[\[\]]"
)
_ESCAPE = re.compile(r"\\(.)")


def _list_re(element: str) -> str:
    return rf"\[{_SEP}(?:{element}{_SEP}(?:,{_SEP}{element}{_SEP})*+(?:,{_SEP})?)?\]"


@cache
def _statement_re(dialect: str) -> re.Pattern[str]:
    d = DIALECTS[dialect]
    ident = r"[a-z][._0-9a-z]*+" if d.dot_in_keys else r"[a-z][_0-9a-z]*+"
    value = _list_re(_ATOM)
    if d.nested_lists:
        for _ in range(_NESTING - 1):
            value = _list_re(f"(?:{_ATOM}|{value})")
    # An assignment ends at a newline (or comment) or ';', or, where the dialect accepts an
    # unterminated last statement, at the end of the text.
    end = rf"(?:{_END_LINE}|;|\Z)" if d.statement_grammar else rf"(?:{_END_LINE}|;)"
    return re.compile(
        rf"{_SKIP}(?:{_WS}(?P<key>{ident}){_WS}={_WS}"
        rf"(?:(?P<atom>{_ATOM})|(?P<list>{value})){_WS}{end}|{_WS}\Z)"
    )


def fast_parse(text: str, dialect: str) -> list[list[object]] | None:
    """Settings ``[key, value, line, "="]`` if ``text`` is plainly valid, else ``None``."""
    match = _statement_re(dialect).match
    settings: list[list[object]] = []
    n = len(text)
    pos = 0
    line = 1
    counted = 0  # newlines in text[:counted] are already in `line`
    while pos < n:
        m = match(text, pos)
        if m is None:
            return None
        key, atom, lst = m.group(1, 2, 3)  # the only capturing groups: key, atom, list
        if key is None:
            break  # only blanks were left
        start = m.start(2) if atom is not None else m.start(3)
        line += text.count("\n", counted, start)
        counted = start
        value: object
        if atom is None:
            value = _list_items(lst)
        elif atom[0] == '"' or atom[0] == "'":
            value = _unescape(atom[1:-1])
        else:
            value = atom
        settings.append([key, value, line, "="])
        pos = m.end()
    return settings


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    return _ESCAPE.sub(lambda m: SIMPLE_ESCAPES[m.group(1)], s)


def _list_items(text: str) -> list[object]:
    """The values of a list the statement expression has already validated."""
    stack: list[list[object]] = []
    top: list[object] = []
    for token in _LIST_TOKEN.findall(text):
        first = token[0]
        if first == '"' or first == "'":
            top.append(_unescape(token[1:-1]))
        elif first == "[":
            stack.append(top)
            top = []
        elif first == "]":
            done = top
            top = stack.pop()
            top.append(done)
        elif first != "#":
            top.append(token)
    outer = top[0]
    assert isinstance(outer, list)
    return outer
