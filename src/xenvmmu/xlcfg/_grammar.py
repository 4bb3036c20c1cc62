"""The bison grammar of each xl.cfg dialect and its (cached) LALR(1) parse tables.

Written from the rules of ``tools/libxl/libxlu_cfg_y.y`` (``tools/libs/util/`` from 4.15) at
each release; the dialects themselves are in ``_dialects``. Only the full parser
(``_parser``) needs this: files the fast path reads never load it.
"""

from __future__ import annotations

import functools

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
    Dialect,
)
from ._lalr import END, ERROR, Rule, Tables, build_tables


def _grammar(d: Dialect) -> list[Rule]:
    element = "value" if d.nested_lists else "atom"
    if d.statement_grammar:
        rules = [
            Rule("file", ("stmts",)),
            Rule("file", ("stmts", "assignment")),
            Rule("stmts", ()),
            Rule("stmts", ("stmts", "stmt")),
            Rule("stmt", ("assignment", "endstmt")),
            Rule("stmt", ("endstmt",)),
            Rule("stmt", (ERROR, "NEWLINE")),
            Rule("assignment", ("IDENT", "'='", "value"), A_STORE),
        ]
        if d.plus_equals:
            rules.append(Rule("assignment", ("IDENT", "+=", "value"), A_ADD))
    else:
        rules = [
            Rule("file", ()),
            Rule("file", ("file", "assignment")),
            Rule("assignment", ("IDENT", "'='", "value", "endstmt"), A_STORE),
            Rule("assignment", ("endstmt",)),
            Rule("assignment", (ERROR, "NEWLINE")),
        ]
    rules += [
        Rule("endstmt", ("NEWLINE",)),
        Rule("endstmt", ("';'",)),
        Rule("value", ("atom",), A_ATOM),
        Rule("value", ("'['", "nlok", "valuelist", "']'"), A_LIST),
        Rule("atom", ("STRING",), A_PASS),
        Rule("atom", ("NUMBER",), A_PASS),
        Rule("valuelist", (), A_EMPTY_LIST),
        Rule("valuelist", ("values",), A_PASS),
        Rule("valuelist", ("values", "','", "nlok"), A_PASS),
        Rule("values", (element, "nlok"), A_FIRST),
        Rule("values", ("values", "','", "nlok", element, "nlok"), A_APPEND),
        Rule("nlok", ()),
        Rule("nlok", ("nlok", "NEWLINE")),
    ]
    return rules


def _terminals(d: Dialect) -> tuple[str, ...]:
    # bison numbers tokens: $end, error, $undefined, the %token list, then character
    # literals in order of first use in the grammar.
    named = ("IDENT", "STRING", "NUMBER", "NEWLINE") + (("+=",) if d.plus_equals else ())
    return (END, ERROR, *named, "'='", "';'", "'['", "']'", "','")


@functools.cache
def tables_for(name: str) -> Tables:
    """The (cached) parse tables of a dialect."""
    d = DIALECTS[name]
    return build_tables(_grammar(d), "file", _terminals(d))
