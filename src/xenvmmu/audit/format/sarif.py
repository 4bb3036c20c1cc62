"""``--format sarif``: SARIF 2.1.0 for code-scanning dashboards (e.g. GitHub code scanning).

One run; the driver ``xenvmmu`` has three rules: ``XSA-97-HAP`` (CVE-2014-5146),
``XSA-97-SHADOW`` (CVE-2014-5149) and ``XSA-97-UNKNOWN`` (a guest that could not be assessed).
One result per affected guest (kind ``fail``; level ``error`` for critical/high severity,
``warning`` for medium, ``note`` otherwise) and per unknown guest (kind ``review``, level
``note``). Not-affected guests get no result. A result's location is the decisive setting's
file and line (``Finding.decisive``, else ``Finding.source``); when that is another file than
the guest's own (e.g. ``hap=0`` on the hypervisor command line), the guest's file is a related
location. Input errors are tool execution notifications of the invocation.
"""

from __future__ import annotations

import hashlib
import os
from urllib.parse import quote

from xenvmmu.audit.findings import AuditReport, Finding, InputError, SourceRef
from xenvmmu.audit.format.base import (
    ADVISORY_URL,
    CVE_HAP,
    CVE_SHADOW,
    TOOL_NAME,
    Formatter,
    decisive_ref,
    display_name,
    dump_json,
    finding_cve,
    finite,
    first_mitigation,
    format_ms,
    format_number,
    host_facts,
    one_line,
    register,
    tool_version,
)

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
RULE_HAP = "XSA-97-HAP"
RULE_SHADOW = "XSA-97-SHADOW"
RULE_UNKNOWN = "XSA-97-UNKNOWN"
RULE_RESIDUAL = "HAP-TYPE-SWEEP-RESIDUAL"
_RULE_BY_CVE = {CVE_HAP: RULE_HAP, CVE_SHADOW: RULE_SHADOW}
_LEVEL_BY_SEVERITY = {"critical": "error", "high": "error", "medium": "warning"}


def _rule(rule_id: str, name: str, short: str, full: str, cve: str | None,
          level: str | None = None) -> dict[str, object]:
    tags = ["security", "XSA-97"] + ([cve] if cve else [])
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "helpUri": ADVISORY_URL,
        "help": {"text": f"{full} See {ADVISORY_URL}."},
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
    """SARIF 2.1.0 log with one result per guest that needs attention."""

    name = "sarif"
    description = "SARIF 2.1.0 for code-scanning tools"

    def render(self, report: AuditReport) -> str:
        """The SARIF log."""
        version = tool_version(report)
        run: dict[str, object] = {
            "tool": {
                "driver": {
                    "name": TOOL_NAME,
                    "version": version,
                    "semanticVersion": version,
                    "rules": list(RULES),
                }
            },
            "invocations": [
                {
                    "executionSuccessful": True,
                    "toolExecutionNotifications": [
                        {
                            "level": "error",
                            "message": {"text": e.message},
                            "locations": [physical_location(e)],
                        }
                        for e in report.errors
                    ],
                }
            ],
            "results": [
                _result(f, report.budget_ms) for f in report.findings if f.verdict != "not_affected"
            ],
            "properties": {"budgetMs": finite(report.budget_ms), "host": host_facts(report)},
        }
        return dump_json({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]})


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
    else:
        rule_id, level, kind = RULE_UNKNOWN, "note", "review"
        why = f.reasons[0] if f.reasons else "no reason recorded"
        text = f"Guest '{name}' could not be assessed for XSA-97: {_sentence(why)}"
        if mitigation is not None:
            text += f" Suggested: {_sentence(mitigation.text)}"
    ref = decisive_ref(f)
    result: dict[str, object] = {
        "ruleId": rule_id,
        "ruleIndex": _RULE_INDEX[rule_id],
        "kind": kind,
        "level": level,
        "message": {"text": text},
        "locations": [physical_location(ref)],
    }
    if ref.path != f.source.path:
        related = physical_location(f.source)
        related["id"] = 1
        related["message"] = {"text": "guest configuration"}
        result["relatedLocations"] = [related]
    key = f"{rule_id}\0{f.source.path}\0{f.name or ''}".encode("utf-8", "surrogatepass")
    fingerprint = hashlib.sha256(key).hexdigest()
    result["partialFingerprints"] = {"xenvmmuGuest/v1": fingerprint}
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
