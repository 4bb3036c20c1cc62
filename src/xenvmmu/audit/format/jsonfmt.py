"""``--format json``: the audit as versioned, documented JSON (schema ``xenvmmu.audit/1``).

The JSON Schema ships beside this module as ``audit-1.schema.json`` (:func:`load_schema`); it
describes every field. Shape::

    {"schema": "xenvmmu.audit/1",
     "tool": {"name": "xenvmmu", "version": "0.1.0"},
     "budget_ms": 30.0,
     "advisories_reported": ["XSA-97", "XSA-344", ...],
     "host": {...facts as the audit recorded them, keys sorted...},
     "guests": [{"source", "line", "decisive", "name", "type", "paging", "memory_mib",
                 "maxmem_mib", "vcpus", "pool_kib", "xen_version", "xsa97_fixed", "cve",
                 "worst_case_ms", "worst_case_ms_low", "verdict", "severity", "reasons",
                 "mitigations",
                 "operations", "paging_reasons", "uuid",
                 "advisories": [{"id", "cves", "verdict", "worst_case_ms",
                                 "worst_case_ms_low", "operations", "fixed", "reasons",
                                 "mitigations", "title", "impact", "severity", "unbounded",
                                 "decisive", "url", "suppressed"}, ...],
                 "suppressed"}, ...],
     "errors": [{"source", "line", "message"}, ...],
     "summary": {"guests", "affected", "not_affected", "unknown", "errors",
                 "advisories": {"XSA-344": {"affected", "not_affected", "unknown"}, ...},
                 "suppressed": {"guests", "advisories": {"XSA-344": n, ...}}}}

Keys always come in this order, unknown values are ``null`` (never missing), the text is
ASCII-only (other characters as ``\\u`` escapes), indented by 2 and ends with a newline.
The guests are written one by one as the audit finds them (an operations list shared by
guests of the same shape is encoded once).

``advisories_reported`` are the advisories the run reports (``--advisory``, else the whole
registry). A run that does not report XSA-97 writes no XSA-97 result: each guest's
``verdict``, ``severity``, ``worst_case_ms(_low)``, ``reasons``, ``line`` and ``decisive`` are
those of its worst reported advisory (:func:`~xenvmmu.audit.format.base.headline`), its
``xsa97_fixed`` and ``cve`` are null, ``mitigations`` is empty and ``operations`` holds only
the reported advisories' operations; the summary counts those verdicts.

``suppressed`` (``--suppress``) is the operator's reason and where it was written (``FILE:line``)
for a suppressed verdict, else null: on an advisory entry, that advisory's; on a guest, its
verdict's (XSA-97's, or that of the advisory its verdict is). A suppressed finding keeps its
verdict and the summary's verdict counts count it; ``summary.suppressed`` has the guests
with a suppressed reported finding and, per advisory, the guests whose finding of it is.
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
    SourceRef,
    Verdict,
)
from xenvmmu.audit.format.base import (
    TOOL_NAME,
    Formatter,
    Headline,
    Headlines,
    JsonListWriter,
    RawJson,
    advisory_counts,
    decisive_line,
    encode_json,
    finite,
    guest_advisories,
    guest_facts,
    host_facts,
    json_string,
    register,
    reported_ids,
    reported_ops,
    summarize,
    suppressed_counts,
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
        heads = Headlines(audit)
        writer.begin(self._document(audit, writer.placeholder, heads.counts))
        operations = _Operations(writer.newline + "  ", audit)
        advisories = _Advisories(writer.newline + "  ", audit)
        for f in audit:
            guest = _guest(f, heads(f), audit, operations(f.ops), advisories(f))
            writer.item_text(encode_json(guest, writer.newline))
        writer.end(self._document(audit, writer.placeholder, heads.counts))

    def document(self, report: AuditReport) -> dict[str, object]:
        """The document as Python data, before serialising."""
        heads = Headlines(report)
        guests: list[object] = [_guest(f, heads(f), report) for f in report.findings]
        return self._document(report, guests, heads.counts)

    def _document(self, report: AuditReport | AuditStream, guests: list[object],
                  counts: dict[Verdict, int]) -> dict[str, object]:
        s = summarize(report, counts)
        suppressed, per_advisory = suppressed_counts(report)
        return {
            "schema": SCHEMA_ID,
            "tool": {"name": TOOL_NAME, "version": tool_version(report)},
            "budget_ms": finite(report.budget_ms),
            "advisories_reported": list(reported_ids(report)),
            "host": host_facts(report),
            "guests": guests,
            "errors": [_error(e) for e in report.errors],
            "summary": {
                "guests": s.guests,
                "affected": s.affected,
                "not_affected": s.not_affected,
                "unknown": s.unknown,
                "errors": s.errors,
                "advisories": dict(advisory_counts(report)),
                "suppressed": {"guests": suppressed, "advisories": per_advisory},
            },
        }


class _Operations:
    """The ``operations`` list of a guest (those the run reports), encoded once per
    operations tuple: guests of one shape share theirs (a bounded cache, keyed by identity
    while the tuple is alive)."""

    def __init__(self, newline: str, audit: AuditStream) -> None:
        self.newline = newline
        self.audit = audit
        self.cache: dict[int, tuple[tuple[OpStall, ...], RawJson]] = {}

    def __call__(self, ops: tuple[OpStall, ...]) -> RawJson:
        hit = self.cache.get(id(ops))
        if hit is not None and hit[0] is ops:
            return hit[1]
        shown = reported_ops(ops, self.audit)
        text = RawJson(encode_json([_operation(op) for op in shown], self.newline))
        if len(self.cache) >= 4096:
            self.cache.clear()
        self.cache[id(ops)] = (ops, text)
        return text


#: Stands for the guest's own file in an advisories list encoded once for every guest of a
#: shape (:class:`_Advisories`); no path holds it (a NUL byte).
_OWN_FILE = "\x00xenvmmu-guest-file\x00"
_OWN_FILE_JSON = json_string(_OWN_FILE)[1:-1]


class _Advisories:
    """The ``advisories`` list of a guest, encoded once per advisory-findings tuple (guests
    of one shape share it: their advisories name their own file as ``""``) with a stand-in
    for the guest's file that each guest's path then replaces."""

    def __init__(self, newline: str, audit: AuditStream) -> None:
        self.newline = newline
        self.audit = audit
        self.cache: dict[int, tuple[tuple[AdvisoryFinding, ...], str]] = {}

    def __call__(self, f: Finding) -> RawJson:
        advs = f.advisories
        hit = self.cache.get(id(advs))
        if hit is None or hit[0] is not advs:
            stand_in = SourceRef(_OWN_FILE)
            text = encode_json([_advisory(a, stand_in) for a in
                                guest_advisories(f, self.audit, xsa97=True)], self.newline)
            if len(self.cache) >= 4096:
                self.cache.clear()
            hit = self.cache[id(advs)] = (advs, text)
        text = hit[1]
        if _OWN_FILE_JSON in text:
            text = text.replace(_OWN_FILE_JSON, json_string(f.source.path)[1:-1])
        return RawJson(text)


def _guest(f: Finding, head: Headline, audit: AuditReport | AuditStream,
           operations: object = None, advisories: object = None) -> dict[str, object]:
    own = head.xsa97
    d = head.finding.location(f.source) if head.finding is not None else f.decisive
    return {
        "source": f.source.path,
        "line": decisive_line(f, head.decisive),
        "decisive": None if d is None else {"path": d.path, "line": d.line, "key": d.key},
        **guest_facts(f, own),
        "worst_case_ms": None if head.unbounded else finite(head.worst_case_ms),
        "worst_case_ms_low": None if head.unbounded else finite(head.worst_case_ms_low),
        "verdict": head.verdict,
        "severity": head.severity,
        "reasons": list(head.reasons),
        "mitigations": [{"action": m.action, "text": m.text} for m in f.mitigations]
        if own else [],
        "operations": [_operation(op) for op in reported_ops(f.ops, audit)]
        if operations is None else operations,
        "paging_reasons": list(f.paging_reasons),
        "uuid": f.uuid,
        "advisories": [_advisory(a, f.source) for a in guest_advisories(f, audit, xsa97=True)]
        if advisories is None else advisories,
        "suppressed": head.suppressed,
    }


def _advisory(a: AdvisoryFinding, guest_file: SourceRef) -> dict[str, object]:
    d = a.location(guest_file)
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
        "title": a.title,
        "impact": a.impact,
        "severity": a.severity,
        "unbounded": a.unbounded,
        "decisive": None if d is None else {"path": d.path, "line": d.line, "key": d.key},
        "url": a.url,
        "suppressed": a.suppressed,
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
