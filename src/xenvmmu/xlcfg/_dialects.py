"""The xl.cfg grammar dialects Xen has shipped, and their bison grammars.

A dialect is named after the first Xen release whose libxlu parser behaves that way (see
``shared/conformance/xlcfg/README.md``). The grammars below are written from the rules of
``tools/libxl/libxlu_cfg_y.y`` (``tools/libs/util/`` from 4.15) at each release; the lexer
differences are flags read by ``_lexer``. The grammars themselves, and their LALR tables,
are in ``_grammar`` (loaded only when a file needs the full parser).
"""

from __future__ import annotations

from typing import NamedTuple


class Dialect(NamedTuple):
    """What changed in libxlu's xl.cfg language at one release."""

    name: str
    statement_grammar: bool  # file: stmts | stmts assignment (last statement needs no newline)
    dot_in_keys: bool  # keys [a-z][._0-9a-z]* instead of [a-z][_0-9a-z]*
    nested_lists: bool  # list elements are values, not atoms
    strict_escapes: bool  # unknown \c escape is an error (was silently dropped)
    plus_equals: bool  # the += operator


DIALECTS: dict[str, Dialect] = {
    # xen-project/xen tools/libxl/libxlu_cfg_y.y @ RELEASE-4.2.0: every statement ends in
    # NEWLINE or ';' (so a missing final newline is a syntax error).
    "4.2": Dialect("4.2", False, False, False, False, False),
    # @ RELEASE-4.2.1: backport of "file: stmts | stmts assignment".
    "4.2.1": Dialect("4.2.1", True, False, False, False, False),
    # @ RELEASE-4.3.0: '.' allowed in keys.
    "4.3": Dialect("4.3", True, True, False, False, False),
    # @ RELEASE-4.6.0: nested lists ("values: value nlok").
    "4.6": Dialect("4.6", True, True, True, False, False),
    # @ RELEASE-4.7.0: xlu__cfgl_dequote rejects unknown escapes.
    "4.7": Dialect("4.7", True, True, True, True, False),
    # @ RELEASE-4.13.0: IDENT "+=" value.
    "4.13": Dialect("4.13", True, True, True, True, True),
}

DEFAULT_DIALECT = "4.13"

# Semantic action names used by the driver.
A_STORE = "store"
A_ADD = "add"
A_ATOM = "atom"
A_LIST = "list"
A_PASS = "pass"
A_EMPTY_LIST = "empty_list"
A_FIRST = "first"
A_APPEND = "append"

#: The escapes libxlu's dequote understands: escaped character -> the character it stands for.
SIMPLE_ESCAPES = {
    '"': '"',
    "'": "'",
    "\\": "\\",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
