"""The xl.cfg scanner: a replay of libxlu's flex scanner (``libxlu_cfg_l.l``).

The text is the file's bytes decoded as Latin-1, so that one character is one byte, as in C.
Rules, in flex's order (longest match wins, the earlier rule on a tie)::

    IDENT    [a-z][_0-9a-z]*           ([a-z][._0-9a-z]* from 4.3)
    NUMBER   [0-9][0-9a-fx]*
             [ \\t]                     skipped
    , [ ] = ;                          themselves;  "+=" from 4.13
    NEWLINE  \\n | #.*\\n               its line is the line of the newline
    STRING   '([^'\\\\\\n]|\\\\.)*'  and the same with "
    [+-.():] or any other byte         start a lexical error (the first kind also marks the
                                       file as "likely Python"): the scanner then takes the
                                       rest of the word ([^ \\t\\n]*), or one blank, or the
                                       newline (which it still returns as NEWLINE), reports
                                       "lexical error" and goes on. At the end of the input
                                       the pending byte is dropped without a report.

A quoted string is unescaped when it is scanned (``xlu__cfgl_dequote``, see ``_dequote``).
"""

from __future__ import annotations

import re
from typing import Protocol

from ._dialects import SIMPLE_ESCAPES, Dialect

# Token kinds (the parser's terminal names).
IDENT = "IDENT"
NUMBER = "NUMBER"
STRING = "STRING"
NEWLINE = "NEWLINE"
END = "$end"
PLUS_EQ = "+="

_PUNCT = {",": "','", "[": "'['", "]": "']'", "=": "'='", ";": "';'"}
_PYTHONISH = frozenset("+,-.():")  # flex class [+-.():] is + , - . ( ) :

_TOKEN_RE = {
    dot: re.compile(
        (r"(?P<ident>[a-z][._0-9a-z]*)" if dot else r"(?P<ident>[a-z][_0-9a-z]*)")
        + r"|(?P<num>[0-9][0-9a-fx]*)"
        r"|(?P<ws>[ \t]+)"
        r"|(?P<nl>\n|\#[^\n]*+\n)"
        r"|(?P<str>'[^'\\\n]*+(?:\\[^\n][^'\\\n]*+)*+'|\"[^\"\\\n]*+(?:\\[^\n][^\"\\\n]*+)*+\")"
        r"|(?P<punct>[,\[\]=;])"
    )
    for dot in (False, True)
}
_WORD_RE = re.compile(r"[^ \t\n]*")

# A token: (kind, yytext, line for yylloc or -1 to leave yylloc as it is, semantic value).
Token = tuple[str, str, int, str | None]


class Reporter(Protocol):
    """What the scanner needs from the parse context (``CfgParseContext`` in libxlu)."""

    err: bool
    likely_python: bool

    def lexical_error(self, text: str, lineno: int, message: str) -> None: ...

    def crash(self, assertion: str) -> None: ...


class Lexer:
    """Pull scanner: ``next()`` returns one token, as ``yylex`` does."""

    __slots__ = ("_ctx", "_dialect", "_re", "lineno", "pos", "text")

    def __init__(self, text: str, dialect: Dialect, ctx: Reporter) -> None:
        self.text = text
        self.pos = 0
        self.lineno = 1
        self._dialect = dialect
        self._ctx = ctx
        self._re = _TOKEN_RE[dialect.dot_in_keys]

    def next(self) -> Token:
        text = self.text
        n = len(text)
        while True:  # one pass per flex match; skipped blanks and lexical errors loop
            pos = self.pos
            if pos >= n:
                # yytext at end of input is flex's end-of-buffer NUL.
                return (END, "\0", -1, None)
            m = self._re.match(text, pos)
            if m is not None:
                kind = m.lastgroup
                self.pos = m.end()
                if kind == "ws":
                    continue
                tok = m.group()
                if kind == "ident":
                    return (IDENT, tok, self.lineno, tok)
                if kind == "num":
                    return (NUMBER, tok, self.lineno, tok)
                if kind == "nl":
                    self.lineno += 1
                    return (NEWLINE, tok, self.lineno - 1, None)
                if kind == "str":
                    return (STRING, tok, self.lineno, self._dequote(tok))
                return (_PUNCT[tok], tok, self.lineno, None)
            ch = text[pos]
            if self._dialect.plus_equals and ch == "+" and text.startswith("=", pos + 1):
                self.pos = pos + 2
                return (PLUS_EQ, "+=", self.lineno, None)
            # Lexical error: flex's "." (or the likely-Python class), then the lexerr state.
            if ch in _PYTHONISH:
                self._ctx.likely_python = True
            pos += 1
            if pos >= n:
                # End of input in the lexerr state: the byte is dropped without a report,
                # but it stays in yytext (before flex's end-of-buffer NUL).
                self.pos = pos
                return (END, ch + "\0", -1, None)
            nxt = text[pos]
            if nxt == "\n":
                self.pos = pos + 1
                self.lineno += 1
                self._ctx.lexical_error(ch + "\n", self.lineno, "lexical error")
                return (NEWLINE, ch + "\n", self.lineno, None)
            if nxt in " \t":
                self.pos = pos + 1
                self._ctx.lexical_error(ch + nxt, self.lineno, "lexical error")
                continue
            m2 = _WORD_RE.match(text, pos)
            assert m2 is not None
            self.pos = m2.end()
            self._ctx.lexical_error(ch + m2.group(), self.lineno, "lexical error")

    def _dequote(self, token: str) -> str | None:
        """Unescape a quoted string as ``xlu__cfgl_dequote`` does, bugs included.

        Escapes ``\\\\ \\" \\' \\a \\b \\f \\n \\r \\t \\v``. ``\\x`` always fails (it skips one
        character, then needs more than the two it reads). ``\\`` + a digit 0-7 reads up to three
        more characters with ``strtoul(..., 10)``, emits nothing, and fails unless that
        consumed at least two characters. Any other escaped byte is an error from 4.7 and
        silently dropped, with its backslash, before. The C code works on a NUL-terminated
        copy, so a NUL inside the quotes cuts the string and trips its assertions.
        """
        ctx = self._ctx
        if ctx.err:
            return None  # libxlu stops building values after the first error
        cut = token.find("\0")
        src = token if cut < 0 else token[:cut]
        end = len(src) - 1
        if not (len(src) >= 2 and src[0] == src[end]):
            ctx.crash("len>=2 && src[0]==src[len-1]")
            return None
        if "\\" not in src:
            return src[1:end]
        out: list[str] = []
        p = 1
        while p < end:
            c = src[p]
            p += 1
            if c != "\\":
                out.append(c)
                continue
            if not p < end:
                ctx.crash("p < src+len-1")
                return None
            nc = src[p]
            p += 1
            simple = SIMPLE_ESCAPES.get(nc)
            if simple is not None:
                out.append(simple)
            elif nc == "x":
                # p++ then a 2-character hex field that must be longer than 2: never.
                ctx.lexical_error(
                    token,
                    self.lineno,
                    "invalid digit after backslash hexnumerical character escape in quoted string",
                )
                return "".join(out)
            elif "0" <= nc <= "7":
                used = _strtoul10_length(src[p : p + 3])
                if used <= 1:
                    ctx.lexical_error(
                        token,
                        self.lineno,
                        "invalid digit after backslash octalnumerical character escape"
                        " in quoted string",
                    )
                    return "".join(out)
                p += used
            elif self._dialect.strict_escapes:
                ctx.lexical_error(
                    token, self.lineno, "invalid character after backlash in quoted string"
                )
                return "".join(out)
        return "".join(out)


_C_SPACE = " \t\n\v\f\r"


def _strtoul10_length(field: str) -> int:
    """How many characters ``strtoul(field, &end, 10)`` consumes (0 when it converts none)."""
    i = 0
    n = len(field)
    while i < n and field[i] in _C_SPACE:
        i += 1
    if i < n and field[i] in "+-":
        i += 1
    start = i
    while i < n and "0" <= field[i] <= "9":
        i += 1
    return i if i > start else 0
