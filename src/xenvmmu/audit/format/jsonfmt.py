"""``--format json``: the audit as versioned, documented JSON (schema ``xenvmmu.audit/1``).

The JSON Schema ships beside this module as ``audit-1.schema.json`` (:func:`load_schema`); it
describes every field. Shape::

    {"schema": "xenvmmu.audit/1",
     "tool": {"name": "xenvmmu", "version": "0.1.0"},
     "budget_ms": 30.0,
     "host": {...facts as the audit recorded them, keys sorted...},
     "guests": [{"source", "line", "decisive", "name", "type", "paging", "memory_mib",
                 "maxmem_mib", "vcpus", "pool_kib", "xen_version", "xsa97_fixed", "cve",
                 "worst_case_ms", "worst_case_ms_low", "verdict", "severity", "reasons",
                 "mitigations",
                 "operations", "paging_reasons", "uuid", "advisories"}, ...],
     "errors": [{"source", "line", "message"}, ...],
     "summary": {"guests", "affected", "not_affected", "unknown", "errors"}}

Keys always come in this order, unknown values are ``null`` (never missing), the text is
ASCII-only (other characters as ``\\u`` escapes), indented by 2 and ends with a newline.
The guests are written one by one as the audit finds them (an operations list shared by
guests of the same shape is encoded once).
Versioning: fields may be added within version 1 and consumers should ignore keys they do not
know; renaming, removing or changing the meaning of a field makes it ``xenvmmu.audit/2``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, TextIO

from xenvmmu.audit.findings import (
    AdvisoryFinding,
    AuditReport,
    AuditStream,
    Finding,
    InputError,
    OpStall,
)
from xenvmmu.audit.format.base import (
    TOOL_NAME,
    Formatter,
    JsonListWriter,
    RawJson,
    decisive_line,
    encode_json,
    finite,
    guest_facts,
    host_facts,
    register,
    summarize,
    tool_version,
)

SCHEMA_ID = "xenvmmu.audit/1"
SCHEMA_FILE = "audit-1.schema.json"


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of this format, from the package data."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@register
class JsonFormatter(Formatter):
    """Machine-readable JSON for scripts and dashboards (``jq``-friendly)."""

    name = "json"
    description = f"JSON, schema {SCHEMA_ID}"

    def write(self, audit: AuditStream, out: TextIO) -> None:
        """The document described in the module docstring, guest by guest."""
        writer = JsonListWriter(out)
        writer.begin(self._document(audit, writer.placeholder))
        operations = _Operations(writer.newline + "  ")
        for f in audit:
            writer.item_text(encode_json(_guest(f, operations(f.ops)), writer.newline))
        writer.end(self._document(audit, writer.placeholder))

    def document(self, report: AuditReport) -> dict[str, object]:
        """The document as Python data, before serialising."""
        return self._document(report, [_guest(f) for f in report.findings])

    def _document(self, report: AuditReport | AuditStream, guests: list[object]
                  ) -> dict[str, object]:
        s = summarize(report)
        return {
            "schema": SCHEMA_ID,
            "tool": {"name": TOOL_NAME, "version": tool_version(report)},
            "budget_ms": finite(report.budget_ms),
            "host": host_facts(report),
            "guests": guests,
            "errors": [_error(e) for e in report.errors],
            "summary": {
                "guests": s.guests,
                "affected": s.affected,
                "not_affected": s.not_affected,
                "unknown": s.unknown,
                "errors": s.errors,
            },
        }


class _Operations:
    """The ``operations`` list of a guest, encoded once per operations tuple: guests of one
    shape share theirs (a bounded cache, keyed by identity while the tuple is alive)."""

    def __init__(self, newline: str) -> None:
        self.newline = newline
        self.cache: dict[int, tuple[tuple[OpStall, ...], RawJson]] = {}

    def __call__(self, ops: tuple[OpStall, ...]) -> RawJson:
        hit = self.cache.get(id(ops))
        if hit is not None and hit[0] is ops:
            return hit[1]
        text = RawJson(encode_json([_operation(op) for op in ops], self.newline))
        if len(self.cache) >= 4096:
            self.cache.clear()
        self.cache[id(ops)] = (ops, text)
        return text


def _guest(f: Finding, operations: object = None) -> dict[str, object]:
    d = f.decisive
    return {
        "source": f.source.path,
        "line": decisive_line(f),
        "decisive": None if d is None else {"path": d.path, "line": d.line, "key": d.key},
        **guest_facts(f),
        "worst_case_ms": finite(f.worst_case_ms),
        "worst_case_ms_low": finite(f.worst_case_ms_low),
        "verdict": f.verdict,
        "severity": f.severity,
        "reasons": list(f.reasons),
        "mitigations": [{"action": m.action, "text": m.text} for m in f.mitigations],
        "operations": [_operation(op) for op in f.ops] if operations is None else operations,
        "paging_reasons": list(f.paging_reasons),
        "uuid": f.uuid,
        "advisories": [_advisory(a) for a in f.advisories],
    }


def _advisory(a: AdvisoryFinding) -> dict[str, object]:
    return {
        "id": a.id,
        "cves": list(a.cves),
        "verdict": a.verdict,
        "worst_case_ms": finite(a.worst_case_ms),
        "worst_case_ms_low": finite(a.worst_case_ms_low),
        "operations": list(a.operations),
        "fixed": a.fixed,
        "reasons": list(a.reasons),
        "mitigations": list(a.mitigations),
    }


def _operation(op: OpStall) -> dict[str, object]:
    return {
        "op": op.op,
        "trigger": op.trigger,
        "started_by": list(op.started_by),
        "sized_by": list(op.sized_by),
        "preemptible": op.preemptible,
        "worst_case_ms": finite(op.worst_case_ms),
        "worst_case_ms_low": finite(op.worst_case_ms_low),
        "related": op.related,
        "residual": op.residual,
        "reference": op.reference,
    }


def _error(e: InputError) -> dict[str, object]:
    return {"source": e.path, "line": e.line, "message": e.message}
