"""``--format sarif``: SARIF 2.1.0 for code-scanning dashboards (e.g. GitHub code scanning).

One run; the driver ``xenvmmu`` (with ``informationUri``) has one rule per kind of finding,
each with a short and a full description, help text and a help URI: ``XSA-97-HAP``
(CVE-2014-5146), ``XSA-97-SHADOW`` (CVE-2014-5149), ``XSA-97-UNKNOWN`` (a guest that could
not be assessed), ``HAP-TYPE-SWEEP-RESIDUAL`` (the 4.4.x HAP type sweep the xsa97-hap fix left
in place), ``XSA-410-TEARDOWN`` (domain destruction that this release does not preempt) and
``RELATED-OPERATION`` (any other operation outside the verdict).

Results, per SARIF 2.1.0 §3.27.9-§3.27.10: one per affected guest, kind ``fail``, level
``error`` for critical/high severity, ``warning`` for medium (``note`` otherwise); one per
unknown guest, kind ``review`` and level ``none`` (the spec requires ``none`` whenever kind is
not ``fail``); and one per related finding of any guest (an operation outside the verdict
that the release does not preempt and that reaches the budget), kind ``fail``, level by its
severity. Not-affected guests get no result of their own. A result's location is the
decisive setting's file, with a region whose ``startLine`` is the setting's line when it is
known (``Finding.decisive``, else ``Finding.source``); when that is another file than the
guest's own (e.g. ``hap=0`` on the hypervisor command line), the guest's file is a related
location. ``partialFingerprints["xenvmmuGuest/v1"]`` is the SHA-256 of the rule, the guest's
path as given and its name (and, for a related finding, the operation): the same guest gets
the same fingerprint in every run; a second result that would share one (two unnamed domains
of one listing) gets its occurrence number added. Input errors are tool execution
notifications of the invocation.

The results are written one by one as the guests come; the invocation and the run's
properties follow them.
"""

from __future__ import annotations

import hashlib
import os
from typing import TextIO
from urllib.parse import quote

from xenvmmu.audit.findings import AuditStream, Finding, InputError, OpStall, SourceRef
from xenvmmu.audit.format.base import (
    ADVISORY_URL,
    CVE_HAP,
    CVE_SHADOW,
    INFORMATION_URI,
    TOOL_NAME,
    Formatter,
    JsonListWriter,
    decisive_ref,
    display_name,
    encode_json,
    finding_cve,
    finite,
    first_mitigation,
    format_ms,
    format_number,
    host_facts,
    one_line,
    register,
    related_findings,
    related_severity,
    tool_version,
)

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
RULE_HAP = "XSA-97-HAP"
RULE_SHADOW = "XSA-97-SHADOW"
RULE_UNKNOWN = "XSA-97-UNKNOWN"
RULE_RESIDUAL = "HAP-TYPE-SWEEP-RESIDUAL"
RULE_TEARDOWN = "XSA-410-TEARDOWN"
RULE_RELATED = "RELATED-OPERATION"
XSA410_URL = "https://xenbits.xen.org/xsa/advisory-410.html"
_RULE_BY_CVE = {CVE_HAP: RULE_HAP, CVE_SHADOW: RULE_SHADOW}
_RULE_BY_RELATED_OP = {"teardown_relinquish": RULE_TEARDOWN, "teardown_final": RULE_TEARDOWN}
_LEVEL_BY_SEVERITY = {"critical": "error", "high": "error", "medium": "warning"}
FINGERPRINT = "xenvmmuGuest/v1"


def _rule(rule_id: str, name: str, short: str, full: str, cve: str | None,
          level: str | None = None, *, advisory: str = "XSA-97", uri: str = ADVISORY_URL,
          ) -> dict[str, object]:
    tags = ["security", advisory] + ([cve] if cve else [])
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "helpUri": uri,
        "help": {"text": f"{full} See {uri}."},
        "defaultConfiguration": {"level": level or ("note" if cve is None else "error")},
        "properties": {"tags": tags},
    }


RULES = (
    _rule(
        RULE_HAP, "NonPreemptibleHapOperation",
        f"{CVE_HAP}: non-preemptible HAP virtual-MMU operation",
        "An x86 HVM guest using Hardware Assisted Paging on a Xen release without the "
        "xsa97-hap fix can be made to hold a physical CPU, without preemption, for longer "
        "than the latency budget (log-dirty and p2m type-change walks over every page).",
        CVE_HAP,
    ),
    _rule(
        RULE_SHADOW, "NonPreemptibleShadowOperation",
        f"{CVE_SHADOW}: non-preemptible shadow-paging virtual-MMU operation",
        "An x86 HVM guest using shadow page tables can be made to hold a physical CPU, "
        "without preemption, for longer than the latency budget; XSA-97 has no fix for "
        "shadow paging, so the remedies are HAP, a smaller guest or a smaller shadow pool.",
        CVE_SHADOW,
    ),
    _rule(
        RULE_UNKNOWN, "GuestNotAssessed",
        "Guest could not be assessed for XSA-97",
        "xenvmmu could not tell whether this guest is exposed to XSA-97 (for example an xm "
        "configuration written in Python, or a missing fact); the reasons say what is missing.",
        None,
    ),
    _rule(
        RULE_RESIDUAL, "ResidualHapTypeSweep",
        "Non-preemptible HAP p2m type sweep left in place by the xsa97-hap fix",
        "On Xen 4.4.2-4.4.x (or an older 4.4 with the xsa97-hap patch) the log-dirty walk is "
        "preemptible, but every log-dirty ENABLE, CLEAN and OFF of an HVM guest using HAP "
        "still ends with a sweep of its whole p2m that cannot be preempted. Not CVE-2014-5146 "
        "(the host has that fix); Xen 4.5.0 replaced the sweep by root marking (90ac32559b, "
        "9e52ad4f4d).",
        None, level="error",
    ),
    _rule(
        RULE_TEARDOWN, "NonPreemptibleTeardown",
        "Non-preemptible domain destruction (paging pool, log-dirty bitmap, p2m)",
        "Destroying the guest frees its paging pool, its log-dirty bitmap and (since "
        "XSA-410) its p2m; on releases without the 2015 paging-pool teardown fix "
        "(0174da5b79) or without XSA-410's (CVE-2022-33746) that work has no preemption point "
        "and grows with the guest's memory and pool. Whoever can destroy or reboot the guest "
        "(the toolstack; the guest itself with on_reboot=restart) holds a physical CPU that "
        "long. Outside XSA-97's verdict: upgrade to a release with both fixes, or keep the "
        "guest and its pool smaller.",
        "CVE-2022-33746", level="warning", advisory="XSA-410", uri=XSA410_URL,
    ),
    _rule(
        RULE_RELATED, "NonPreemptibleRelatedOperation",
        "Another non-preemptible virtual-MMU operation reaches the latency budget",
        "An operation of XSA-97's class outside its verdict (such as a paging-pool resize) "
        "that this release does not preempt can hold a physical CPU for at least the latency "
        "budget; the result names the operation, who can start it and its worst case.",
        None, level="warning",
    ),
)


_RULE_INDEX = {str(rule["id"]): i for i, rule in enumerate(RULES)}


def artifact_uri(path: str) -> str:
    """A path as a SARIF URI reference: relative paths stay relative (percent-encoded),
    absolute ones become ``file://`` URIs."""
    posix = path.replace(os.sep, "/")
    if posix.startswith("/"):
        return "file://" + quote(posix)
    return quote(posix)


def physical_location(ref: SourceRef | InputError) -> dict[str, object]:
    """``physicalLocation`` for a file and, when known, a line."""
    line = ref.line
    location: dict[str, object] = {"artifactLocation": {"uri": artifact_uri(ref.path)}}
    if line is not None and line >= 1:
        location["region"] = {"startLine": line}
    return {"physicalLocation": location}


@register
class SarifFormatter(Formatter):
    """SARIF 2.1.0 log with one result per guest that needs attention and per related
    finding."""

    name = "sarif"
    description = "SARIF 2.1.0 for code-scanning tools"

    def write(self, audit: AuditStream, out: TextIO) -> None:
        """The SARIF log, result by result."""
        writer = JsonListWriter(out)
        writer.begin(self._log(audit, writer.placeholder))
        fingerprints = _Fingerprints()
        for f in audit:
            results = [] if f.verdict == "not_affected" else [_result(f, audit.budget_ms)]
            for op in related_findings(f, audit.budget_ms):
                results.append(_related_result(f, op, audit))
            for result in results:
                fingerprints.stamp(result)
                writer.item_text(encode_json(result, writer.newline))
        writer.end(self._log(audit, writer.placeholder))

    def _log(self, audit: AuditStream, results: list[object]) -> dict[str, object]:
        version = tool_version(audit)
        run: dict[str, object] = {
            "tool": {
                "driver": {
                    "name": TOOL_NAME,
                    "version": version,
                    "semanticVersion": version,
                    "informationUri": INFORMATION_URI,
                    "rules": list(RULES),
                }
            },
            "results": results,
            "invocations": [
                {
                    "executionSuccessful": True,
                    "toolExecutionNotifications": [
                        {
                            "level": "error",
                            "message": {"text": e.message},
                            "locations": [physical_location(e)],
                        }
                        for e in audit.errors
                    ],
                }
            ],
            "properties": {"budgetMs": finite(audit.budget_ms), "host": host_facts(audit)},
        }
        return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


class _Fingerprints:
    """``partialFingerprints`` unique within the log: a result whose fingerprint an earlier
    result has (the same rule, path and name) gets its occurrence number hashed in."""

    def __init__(self) -> None:
        self.seen: dict[bytes, int] = {}

    def stamp(self, result: dict[str, object]) -> None:
        key = result.pop("_fingerprint_key")
        assert isinstance(key, bytes)
        digest = hashlib.sha256(key).digest()
        n = self.seen.get(digest[:16], 0) + 1
        self.seen[digest[:16]] = n
        if n > 1:
            digest = hashlib.sha256(key + f"\0{n}".encode()).digest()
        result["partialFingerprints"] = {FINGERPRINT: digest.hex()}
        result["properties"] = result.pop("properties")  # keep properties last


def _fingerprint_key(rule_id: str, f: Finding, op: str | None = None) -> bytes:
    key = f"{rule_id}\0{f.source.path}\0{f.name or ''}" + (f"\0{op}" if op else "")
    return key.encode("utf-8", "surrogatepass")


def _locations(f: Finding, result: dict[str, object]) -> None:
    ref = decisive_ref(f)
    result["locations"] = [physical_location(ref)]
    if ref.path != f.source.path:
        related = physical_location(f.source)
        related["id"] = 1
        related["message"] = {"text": "guest configuration"}
        result["relatedLocations"] = [related]


def _related_result(f: Finding, op: OpStall, audit: AuditStream) -> dict[str, object]:
    rule_id = _RULE_BY_RELATED_OP.get(op.op, RULE_RELATED)
    severity = related_severity(op, audit)
    who = " or ".join(p.replace("_", " ") for p in op.started_by) or "?"
    text = (
        f"Guest '{one_line(display_name(f))}' ({f.paging or 'unknown'} paging, Xen "
        f"{f.xen_version or '?'}): {op.op} can hold a physical CPU for up to "
        f"{format_ms(op.worst_case_ms)} ms without preemption (budget "
        f"{format_number(audit.budget_ms)} ms); started by the {who}. Outside the XSA-97 "
        "verdict."
    )
    if op.reference:
        text += f" Reference: {op.reference}."
    result: dict[str, object] = {
        "ruleId": rule_id,
        "ruleIndex": _RULE_INDEX[rule_id],
        "kind": "fail",
        "level": _LEVEL_BY_SEVERITY.get(severity, "note"),
        "message": {"text": text},
    }
    _locations(f, result)
    result["_fingerprint_key"] = _fingerprint_key(rule_id, f, op.op)
    result["properties"] = {
        "guest": f.name,
        "operation": op.op,
        "severity": severity,
        "preemptible": op.preemptible,
        "worstCaseMs": finite(op.worst_case_ms),
        "worstCaseMsLow": finite(op.worst_case_ms_low),
        "budgetMs": finite(audit.budget_ms),
        "startedBy": list(op.started_by),
        "reference": op.reference,
        "xenVersion": f.xen_version,
        "tags": ["security", "XSA-410" if rule_id == RULE_TEARDOWN else "XSA-97"],
    }
    return result


def _result(f: Finding, budget_ms: float) -> dict[str, object]:
    cve = finding_cve(f)
    name = one_line(display_name(f))
    mitigation = first_mitigation(f)
    if f.verdict == "affected":
        residual = f.cve is None and any(o.residual for o in f.ops)
        rule_id = RULE_RESIDUAL if residual else _RULE_BY_CVE.get(f.cve or cve or "",
                                                                   RULE_UNKNOWN)
        cve = None if residual else cve
        level = _LEVEL_BY_SEVERITY.get(f.severity, "note")
        kind = "fail"
        text = (
            f"Guest '{name}' ({f.paging or 'unknown'} paging, Xen {f.xen_version or '?'}) can "
            f"hold a physical CPU for up to {format_ms(f.worst_case_ms)} ms without preemption "
            f"(budget {format_number(budget_ms)} ms)."
        )
        if mitigation is not None:
            text += f" Fix: {_sentence(mitigation.text)}"
    else:  # §3.27.10: level "none" whenever kind is not "fail"
        rule_id, level, kind = RULE_UNKNOWN, "none", "review"
        why = f.reasons[0] if f.reasons else "no reason recorded"
        text = f"Guest '{name}' could not be assessed for XSA-97: {_sentence(why)}"
        if mitigation is not None:
            text += f" Suggested: {_sentence(mitigation.text)}"
    result: dict[str, object] = {
        "ruleId": rule_id,
        "ruleIndex": _RULE_INDEX[rule_id],
        "kind": kind,
        "level": level,
        "message": {"text": text},
    }
    _locations(f, result)
    result["_fingerprint_key"] = _fingerprint_key(rule_id, f)
    result["properties"] = {
        "guest": f.name,
        "verdict": f.verdict,
        "severity": f.severity,
        "cve": cve,
        "paging": f.paging,
        "xenVersion": f.xen_version,
        "xsa97Fixed": f.xsa97_fixed,
        "worstCaseMs": finite(f.worst_case_ms),
        "budgetMs": finite(budget_ms),
        "memoryMib": f.memory_mib,
        "maxmemMib": f.maxmem_mib,
        "poolKib": f.pool_kib,
        "vcpus": f.vcpus,
        "mitigation": None if mitigation is None else mitigation.action,
        "tags": ["security", "XSA-97"] + ([cve] if cve else []),
    }
    return result


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."
