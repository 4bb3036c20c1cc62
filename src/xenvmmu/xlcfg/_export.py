"""The JSON form of a parse result (the conformance suite's format, used by ``--json``).

See ``shared/conformance/xlcfg/README.md``: ``ok``; on success ``settings`` (file order,
``op`` only for ``+=``) and ``typed`` (xl's getters for the well-known keys, in the order
xl calls them); on failure ``errors`` and ``python_warning``, or ``crash``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._getters import get_defbool, get_long, get_string
from ._types import Lookup, ParseResult, Value, rebuild

Getter = Callable[[ParseResult, str], Lookup]

# The keys whose typed values are reported, with the getter xl uses for each.
TYPED_KEYS: tuple[tuple[str, Getter], ...] = (
    ("memory", get_long),
    ("maxmem", get_long),
    ("vcpus", get_long),
    ("maxvcpus", get_long),
    ("shadow_memory", get_long),
    ("hap", get_defbool),
    ("nestedhvm", get_defbool),
    ("oos", get_defbool),
    ("name", get_string),
    ("type", get_string),
    ("builder", get_string),
)


def typed_values(result: ParseResult) -> list[Lookup]:
    """xl's reading of the well-known keys (only meaningful when ``result.ok``)."""
    return [getter(result, key) for key, getter in TYPED_KEYS]


def _value_json(value: Value) -> Any:
    if isinstance(value, str):
        return value
    return rebuild(value, str, list)


def lookup_json(lookup: Lookup) -> dict[str, Any]:
    if lookup.status == "absent":
        return {"absent": True}
    if lookup.status == "ok":
        value = lookup.value
        return {"value": _value_json(value) if isinstance(value, tuple) else value}
    return {"error": lookup.errno, "line": lookup.line, "message": lookup.message}


def to_json(result: ParseResult) -> dict[str, Any]:
    """The conformance-suite object for one parse."""
    if result.crash is not None:
        return {"ok": False, "crash": "SIGABRT", "assertion": result.crash}
    if not result.ok:
        failed: dict[str, Any] = {
            "ok": False,
            "errors": [{"line": e.line, "message": e.message} for e in result.errors],
            "python_warning": result.python_warning,
        }
        if result.failure is not None:
            failed["failure"] = result.failure
        return failed
    settings: list[dict[str, Any]] = []
    for s in result.settings:
        entry: dict[str, Any] = {"key": s.key, "line": s.line, "value": _value_json(s.value)}
        if s.op == "+=":
            entry["op"] = "+="
        settings.append(entry)
    typed = {lk.key: lookup_json(lk) for lk in typed_values(result)}
    return {"ok": True, "settings": settings, "typed": typed}
