"""The xl.cfg parser: bison's ``yyparse`` replayed over libxlu's grammar and actions.

The driver follows bison's C skeleton (``yacc.c``) step by step, because libxlu's error
reports depend on it: a lookahead token is read only in states that have an explicit action;
after a syntax error the parser pops to a state that can shift ``error`` (``stmt: error
NEWLINE``), discarding tokens until one fits, and prints no new message until three tokens
have been shifted; with nowhere to shift ``error`` it gives up. Its stack is bounded like
bison's (YYMAXDEPTH 10000, "memory exhausted").

``_Context`` plays libxlu's ``CfgParseContext`` and ``xlu__cfg_yyerror``: it formats every
error as libxlu prints it and drops any error whose line is not after the line of the last
lexical error.
"""

from __future__ import annotations

from ._dialects import (
    A_ADD,
    A_APPEND,
    A_ATOM,
    A_EMPTY_LIST,
    A_FIRST,
    A_LIST,
    A_PASS,
    A_STORE,
    DIALECTS,
)
from ._grammar import tables_for
from ._lalr import END, ERROR
from ._lexer import Lexer

YYMAXDEPTH = 10000  # bison's default stack limit
#: Characters of string values that ``+=`` may build in all. libxlu keeps every earlier
#: string and concatenates into a new one (asprintf), so a file of N ``x += "a"`` lines
#: holds N²/2 bytes: 8 MiB of them would need ~10^12 bytes, and libxlu's allocation fails
#: ("Cannot allocate memory"). xenvmmu stops at this budget and reports that failure.
CONCAT_BUDGET = 64 << 20
ENOMEM_TEXT = "Cannot allocate memory"  # glibc strerror(ENOMEM)



class _Crash(Exception):
    """Real libxlu would abort (assertion failure) here."""


class _Enough(Exception):
    """The caller's ``max_errors`` were collected: the rest of the file is not parsed."""


class _Context:
    """libxlu's parse context: error reporting with its filter, and the stored settings."""

    __slots__ = ("concat_chars", "err", "errors", "failure", "last", "lexerrlineno",
                 "likely_python", "max_errors", "settings", "truncated")

    def __init__(self, max_errors: int | None = None) -> None:
        self.max_errors = max_errors
        self.truncated = False
        self.err = False
        self.likely_python = False
        self.lexerrlineno = -1
        self.errors: list[tuple[int, str]] = []
        # [key, value, line, op] in file order; values are mutable until the end (+=).
        self.settings: list[list[object]] = []
        self.last: dict[object, list[object]] = {}  # key -> its latest setting (find())
        self.concat_chars = 0  # characters built by string `+=` so far
        self.failure: str | None = None  # an error libxlu returns without printing it

    def yyerror(self, text: str, lineno: int, message: str) -> None:
        if lineno <= self.lexerrlineno:
            return
        n = len(text)
        newline = ""
        if n and text[n - 1] == "\n":
            n -= 1
            lineno -= 1
            if not n:
                newline = "<newline>"
        while n and text[n - 1] in " \t":
            n -= 1
        shown = text[:n]
        nul = shown.find("\0")  # printed with %.*s: stops at a NUL byte
        if nul >= 0:
            shown = shown[:nul]
        quoted = f"`{shown}'" if n else ""
        self.errors.append((lineno, f"config parsing error near {quoted}{newline}: {message}"))
        self.err = True
        if self.max_errors is not None and len(self.errors) >= self.max_errors:
            raise _Enough

    def lexical_error(self, text: str, lineno: int, message: str) -> None:
        self.yyerror(text, lineno, message)
        self.err = True
        self.lexerrlineno = lineno

    def crash(self, assertion: str) -> None:
        raise _Crash(assertion)


def parse_text(text: str, dialect: str,
               max_errors: int | None = None) -> tuple[_Context, str | None]:
    """Parse Latin-1-decoded file text; returns the context and the crash assertion if any.

    With ``max_errors``, parsing stops once that many errors are recorded (``ctx.truncated``):
    a file of garbage has an error per line, millions for a few MiB, and a caller that only
    needs the first ones need not pay for the rest.
    """
    ctx = _Context(max_errors)
    try:
        _run(text, dialect, ctx)
    except _Crash as crash:
        return ctx, str(crash)
    except _Enough:
        ctx.truncated = True
    return ctx, None


def _run(text: str, dialect: str, ctx: _Context) -> None:
    d = DIALECTS[dialect]
    tables = tables_for(dialect)
    rules = tables.rules
    explicit = tables.explicit
    default = tables.default
    goto = tables.goto
    final = tables.final
    lexer = Lexer(text, d, ctx)

    states = [0]
    values: list[object] = [None]
    lines = [1]
    yylloc = 1
    yytext = ""
    la: tuple[str, str, int, str | None] | None = None
    errstatus = 0
    state = 0
    while True:
        if len(states) >= YYMAXDEPTH:
            ctx.yyerror(yytext, yylloc, "memory exhausted")
            return
        if state == final:
            return
        row = explicit[state]
        act = 0
        if row:
            if la is None:
                la = lexer.next()
                yytext = la[1]
                if la[2] >= 0:
                    yylloc = la[2]
            act = row.get(la[0], 0)
        if act == 0:
            act = -default[state]
        if act > 0:  # shift
            assert la is not None
            states.append(act)
            values.append(la[3])
            lines.append(yylloc)
            la = None
            if errstatus:
                errstatus -= 1
            state = act
            continue
        if act < 0:  # reduce
            rule = rules[-act]
            n = len(rule.rhs)
            if n:
                args = values[-n:]
                arg_lines = lines[-n:]
                line = arg_lines[0]
                del states[-n:], values[-n:], lines[-n:]
            else:
                args, arg_lines = [], []
                line = lines[-1]
            value = None
            if rule.action:
                value = _reduce(rule.action, args, arg_lines, ctx, yytext, lexer.lineno)
            state = goto[states[-1]][rule.lhs]
            states.append(state)
            values.append(value)
            lines.append(line)
            continue
        # Syntax error (yyerrlab).
        assert la is not None
        if errstatus == 0:
            # Terminals are named as bison prints them ("+=" is the string alias of OP_ADD).
            unexpected = la[0]
            expected = tables.expected(state)
            if len(expected) > 4:
                expected = []
            msg = "syntax error, unexpected " + unexpected
            if expected:
                msg += ", expecting " + " or ".join(expected)
            ctx.yyerror(yytext, yylloc, msg)
        elif errstatus == 3:
            if la[0] == END:
                return
            la = None  # discard the token that could not follow the error
            if (
                not default[state]
                and ERROR not in row
                and len(states) > 1
                and explicit[states[-2]].get(ERROR, 0) == state
            ):
                # This state was reached by shifting `error` from the one below it, so
                # bison's pop-and-shift-error leaves the stack as it is: discard tokens
                # here until one fits (or the input ends, which aborts).
                while True:
                    la = lexer.next()
                    yytext = la[1]
                    if la[2] >= 0:
                        yylloc = la[2]
                    if la[0] in row:
                        break
                    if la[0] == END:
                        return
                continue
        errstatus = 3
        while explicit[states[-1]].get(ERROR, 0) <= 0:
            if len(states) == 1:
                return
            states.pop()
            values.pop()
            lines.pop()
        state = explicit[states[-1]][ERROR]
        states.append(state)
        values.append(None)
        lines.append(yylloc)


def _reduce(
    action: str,
    args: list[object],
    arg_lines: list[int],
    ctx: _Context,
    yytext: str,
    lineno: int,
) -> object:
    """libxlu's semantic actions. After the first error libxlu builds nothing more."""
    if action in (A_PASS, A_ATOM):
        return args[0]
    if action == A_LIST:
        return args[2]
    if action == A_EMPTY_LIST:
        return []
    if action == A_FIRST:
        return [args[0]]
    if action == A_APPEND:
        lst = args[0]
        if isinstance(lst, list):
            lst.append(args[3])
        return lst
    if ctx.err:
        return None
    key, value = args[0], args[2]
    op = "="
    if action == A_ADD:
        op = "+="
        prev = ctx.last.get(key)
        if prev is not None:
            old = prev[1]
            if isinstance(old, list) and isinstance(value, list):
                # libxlu moves the earlier elements into the new list: the earlier
                # setting is left empty. Appending to the earlier list and handing it
                # over keeps a file of N `+=` lines linear (a new list per line would
                # copy N²/2 elements).
                old.extend(value)
                value = old
                prev[1] = []
            elif isinstance(old, str) and isinstance(value, str):
                ctx.concat_chars += len(old) + len(value)
                if ctx.concat_chars > CONCAT_BUDGET:
                    ctx.failure = ENOMEM_TEXT  # libxlu: ctx->err = ENOMEM, nothing printed
                    ctx.err = True
                    return None
                value = old + value
            else:
                ctx.lexical_error(yytext, lineno, 'can\'t add [list] to "string" or vice versa')
                return None
    else:
        assert action == A_STORE
    # @3.first_line: where the value starts (for a list, the line of its '[').
    setting = [key, value, arg_lines[2], op]
    ctx.settings.append(setting)
    ctx.last[key] = setting
    return None
