"""``--format sarif``: SARIF 2.1.0 for code-scanning dashboards (e.g. GitHub code scanning).

One run; the driver ``xenvmmu`` (with ``informationUri``) has one rule per kind of finding,
each with a short and a full description, help text and a help URI. XSA-97 has its own
rules: ``XSA-97-HAP`` (CVE-2014-5146), ``XSA-97-SHADOW`` (CVE-2014-5149), ``XSA-97-UNKNOWN``
(a guest that could not be assessed), ``HAP-TYPE-SWEEP-RESIDUAL`` (the 4.4.x HAP type sweep
the xsa97-hap fix left in place) and ``RELATED-OPERATION`` (an operation of XSA-97's class
outside its verdict that no advisory of the registry covers, such as a pool resize). Every
other advisory of the registry (``xenvmmu advisories``) has one rule whose id is the
advisory's (``XSA-410``), its name and descriptions from its title, its ``helpUri`` the
advisory's page, and the tags ``security``, the id, its CVEs and its impact
(``availability`` or ``integrity``). The rules are those of the advisories the run reports:
``--advisory`` narrows them, and the XSA-97 rules are there only when XSA-97 is reported.

Results, per SARIF 2.1.0 §3.27.9-§3.27.10, when the run reports XSA-97: one per affected
guest, kind ``fail``, level ``error`` for critical/high severity, ``warning`` for medium
(``note`` otherwise); one per unknown guest, kind ``review`` and level ``none`` (the spec
requires ``none`` whenever kind is not ``fail``). For every other reported advisory, one per
guest whose finding for it (``Finding.advisories``) is affected (kind ``fail``, level by its
severity; an affected advisory without a figure - an unbounded loop, a use-after-free - is
high) or unknown (kind ``review``, level ``none``, the message naming what is missing); its
properties carry the advisory, its CVEs, verdict, severity, impact, figures (none when
``unbounded``), whether the release has the fix and the mitigations. (In a run without
XSA-97, a guest that could not be assessed at all is unknown for every reported advisory.)
And one per related
finding of a guest (an operation outside XSA-97's verdict that the release does not preempt
and that reaches the budget), kind ``fail``, level by its severity, under the rule of the
reported advisory that covers the operation (a teardown: ``XSA-410``), else
``RELATED-OPERATION`` (only when XSA-97 is reported) - but only when the guest has no finding
of that advisory, which is then the one result (the former ``XSA-410-TEARDOWN`` rule is the
``XSA-410`` rule now), and never for an advisory the run does not report.
Not-affected guests and advisories get no result of their own.

A finding the operator suppressed (``--suppress``: ``Finding.suppressed`` for the XSA-97
result, ``AdvisoryFinding.suppressed`` for an advisory's) stays a result, with
``suppressions`` (§3.27.23, §3.35): one of kind ``external`` (kept in a file apart from the
guest's configuration), status ``accepted``, whose ``justification`` is the reason and where
it was written (``FILE:line``).

A result's location is the decisive setting's file, with a region whose ``startLine`` is the
setting's line when it is known (``AdvisoryFinding.decisive``, else ``Finding.decisive``,
else ``Finding.source``); when that is another file than the guest's own (e.g. ``hap=0`` on
the hypervisor command line), the guest's file is a related location.
``partialFingerprints["xenvmmuGuest/v1"]`` is the SHA-256 of the rule, the guest's path as
given and its name (and, for a related finding, the operation): the same guest gets the same
fingerprint in every run; a second result that would share one (two unnamed domains of one
listing) gets its occurrence number added. Input errors are tool execution notifications of
the invocation.

The results are written one by one as the guests come; the invocation and the run's
properties follow them.
"""

from __future__ import annotations

import hashlib
import os
from typing import TextIO
from urllib.parse import quote

from xenvmmu.advisories import Advisory, registry
from xenvmmu.audit.findings import (
    AdvisoryFinding,
    AuditStream,
    Finding,
    InputError,
    OpStall,
    SourceRef,
)
from xenvmmu.audit.format.base import (
    ADVISORY,
    ADVISORY_URL,
    CVE_HAP,
    CVE_SHADOW,
    INFORMATION_URI,
    TOOL_NAME,
    Formatter,
    JsonListWriter,
    advisory_figure,
    advisory_impact,
    advisory_url,
    decisive_ref,
    display_name,
    encode_json,
    finding_cve,
    finite,
    first_mitigation,
    fixed_text,
    format_ms,
    format_number,
    host_facts,
    needs_look,
    one_line,
    register,
    related_severity,
    reported_ids,
    reported_related,
    reports,
    stated_advisories,
    tool_version,
)

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
RULE_HAP = "XSA-97-HAP"
RULE_SHADOW = "XSA-97-SHADOW"
RULE_UNKNOWN = "XSA-97-UNKNOWN"
RULE_RESIDUAL = "HAP-TYPE-SWEEP-RESIDUAL"
RULE_RELATED = "RELATED-OPERATION"
_RULE_BY_CVE = {CVE_HAP: RULE_HAP, CVE_SHADOW: RULE_SHADOW}
_LEVEL_BY_SEVERITY = {"critical": "error", "high": "error", "medium": "warning"}
FINGERPRINT = "xenvmmuGuest/v1"


def _rule(rule_id: str, name: str, short: str, full: str, cve: str | None,
          level: str | None = None, *, advisory: str = ADVISORY, uri: str = ADVISORY_URL,
          tags: tuple[str, ...] = ()) -> dict[str, object]:
    tags = tags or (advisory, *([cve] if cve else []))
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "helpUri": uri,
        "help": {"text": f"{full} See {uri}."},
        "defaultConfiguration": {"level": level or ("note" if cve is None else "error")},
        "properties": {"tags": ["security", *tags]},
    }


#: The rules of XSA-97 (the guest's own verdict and its related operations).
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
        RULE_RELATED, "NonPreemptibleRelatedOperation",
        "Another non-preemptible virtual-MMU operation reaches the latency budget",
        "An operation of XSA-97's class outside its verdict (such as a paging-pool resize) "
        "that this release does not preempt can hold a physical CPU for at least the latency "
        "budget; the result names the operation, who can start it and its worst case.",
        None, level="warning",
    ),
)


def advisory_rule(adv: Advisory) -> dict[str, object]:
    """The rule of one advisory of the registry: its id, a name and descriptions from its
    title, its page, and the tags security, id, CVEs and impact."""
    cves = ", ".join(adv.cves) or "no CVE"
    what = ("a denial of service: a physical CPU held without preemption, or a livelock"
            if adv.impact == "availability" else "memory corruption (integrity)")
    full = (f"{adv.id} ({cves}): {_sentence(adv.title)} Impact: {what}. Concerns "
            f"{'/'.join(adv.guest_types)} guests on {', '.join(adv.arch)}; operations: "
            f"{', '.join(adv.operations)}.")
    if adv.mitigations:
        full += f" Mitigations: {'; '.join(adv.mitigations)}."
    return _rule(adv.id, _camel(adv.title) or adv.id.replace("-", ""),
                 f"{adv.id}: {adv.title}", full, None, "error", advisory=adv.id,
                 uri=advisory_url(adv.id), tags=(adv.id, *adv.cves, adv.impact))


def _camel(title: str) -> str:
    """``P2M pool freeing may take excessively long`` -> ``P2mPoolFreeingMayTake...``."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in title).split()
    return "".join(w[:1].upper() + w[1:] for w in words)


def rules_for(audit: AuditStream) -> list[dict[str, object]]:
    """The rules of the advisories the run reports: XSA-97's (when reported) first, then
    one per other advisory of the registry, in its order."""
    rules = list(RULES) if reports(audit, ADVISORY) else []
    return rules + [advisory_rule(a) for a in registry()
                    if a.id != ADVISORY and reports(audit, a.id)]


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
        rules = rules_for(audit)
        index = {str(rule["id"]): i for i, rule in enumerate(rules)}
        writer = JsonListWriter(out)
        writer.begin(self._log(audit, rules, writer.placeholder))
        fingerprints = _Fingerprints()
        xsa97 = reports(audit, ADVISORY)
        for f in audit:
            results = [_result(f, audit.budget_ms)] if xsa97 and f.verdict != "not_affected" \
                else []
            results += [_advisory_result(f, a, audit.budget_ms)
                        for a in stated_advisories(f, audit) if needs_look(a)]
            results += [_related_result(f, op, owner, audit)
                        for op, owner in reported_related(f, audit)]
            for result in results:
                rule = index.get(str(result["ruleId"]))
                if rule is not None:  # §3.27.6: the rule's place in the driver's rules
                    result = {"ruleId": result.pop("ruleId"), "ruleIndex": rule, **result}
                fingerprints.stamp(result)
                writer.item_text(encode_json(result, writer.newline))
        writer.end(self._log(audit, rules, writer.placeholder))

    def _log(self, audit: AuditStream, rules: list[dict[str, object]], results: list[object]
             ) -> dict[str, object]:
        version = tool_version(audit)
        run: dict[str, object] = {
            "tool": {
                "driver": {
                    "name": TOOL_NAME,
                    "version": version,
                    "semanticVersion": version,
                    "informationUri": INFORMATION_URI,
                    "rules": rules,
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
            "properties": {"budgetMs": finite(audit.budget_ms), "host": host_facts(audit),
                           "advisories": list(reported_ids(audit))},
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


def _locations(f: Finding, result: dict[str, object], ref: SourceRef | None = None) -> None:
    """``ref`` (by default the guest's decisive setting) as the location; the guest's own
    file as a related location when ``ref`` is in another file."""
    ref = ref if ref is not None else decisive_ref(f)
    result["locations"] = [physical_location(ref)]
    if ref.path != f.source.path:
        related = physical_location(f.source)
        related["id"] = 1
        related["message"] = {"text": "guest configuration"}
        result["relatedLocations"] = [related]


def _skeleton(rule_id: str, kind: str, level: str, text: str, f: Finding,
              ref: SourceRef | None = None, op: str | None = None,
              suppressed: str | None = None) -> dict[str, object]:
    """A result's fields before its properties (``ruleIndex`` and the fingerprint are added
    as it is written); ``suppressed``: the operator's suppression of it (reason and
    ``FILE:line``)."""
    result: dict[str, object] = {
        "ruleId": rule_id,
        "kind": kind,
        "level": level,
        "message": {"text": text},
    }
    _locations(f, result, ref)
    if suppressed is not None:
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": suppressed}]
    result["_fingerprint_key"] = _fingerprint_key(rule_id, f, op)
    return result


def _guest_text(f: Finding) -> str:
    """``Guest 'web' (hap paging, Xen 4.4.0)``; ``(pv guest, ...)`` without a paging mode."""
    kind = f"{f.paging} paging" if f.paging else f"{f.guest_type or 'unknown'} guest"
    return f"Guest '{one_line(display_name(f))}' ({kind}, Xen {f.xen_version or '?'})"


def _related_result(f: Finding, op: OpStall, owner: str | None,
                    audit: AuditStream) -> dict[str, object]:
    """A related finding, under the rule of ``owner`` (the reported advisory that covers the
    operation), else ``RELATED-OPERATION``."""
    rule_id = owner or RULE_RELATED
    severity = related_severity(op, audit)
    who = " or ".join(p.replace("_", " ") for p in op.started_by) or "?"
    text = (
        f"{_guest_text(f)}: {op.op} can hold a physical CPU for up to "
        f"{format_ms(op.worst_case_ms)} ms without preemption (budget "
        f"{format_number(audit.budget_ms)} ms); started by the {who}. Outside the XSA-97 "
        "verdict."
    )
    if op.reference:
        text += f" Reference: {op.reference}."
    result = _skeleton(rule_id, "fail", _LEVEL_BY_SEVERITY.get(severity, "note"), text, f,
                       op=op.op)
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
        "tags": ["security", owner or ADVISORY],
    }
    return result


def _advisory_result(f: Finding, a: AdvisoryFinding, budget_ms: float) -> dict[str, object]:
    """An affected or unknown finding of an advisory other than XSA-97, under its rule."""
    cves = ", ".join(a.cves) or "no CVE"
    head = f"{_guest_text(f)}, {a.id} ({cves}, {a.title or 'see the advisory'})"
    if a.verdict == "affected":
        kind, level = "fail", _LEVEL_BY_SEVERITY.get(a.severity, "note")
        what = advisory_impact(a, budget_ms)
        text = f"{head}: affected{', ' + what if what else ''}; {fixed_text(a.fixed)}."
        if a.mitigations:
            text += f" Fix: {_sentence(a.mitigations[0])}"
    else:  # §3.27.10: level "none" whenever kind is not "fail"
        kind, level = "review", "none"
        why = a.reasons[0] if a.reasons else "no reason recorded"
        text = f"{head}: could not be assessed: {_sentence(why)}"
    result = _skeleton(a.id, kind, level, text, f, a.location(f.source),
                       suppressed=a.suppressed)
    result["properties"] = {
        "guest": f.name,
        "advisory": a.id,
        "cves": list(a.cves),
        "verdict": a.verdict,
        "severity": a.severity,
        "impact": a.impact,
        "worstCaseMs": None if a.unbounded else finite(a.worst_case_ms),
        "worstCaseMsLow": None if a.unbounded else finite(a.worst_case_ms_low),
        "unbounded": a.unbounded,
        "figure": advisory_figure(a),
        "fixed": a.fixed,
        "budgetMs": finite(budget_ms),
        "operations": list(a.operations),
        "mitigations": list(a.mitigations),
        "reasons": list(a.reasons),
        "xenVersion": f.xen_version,
        "tags": ["security", a.id, *a.cves, a.impact],
    }
    return result


def _result(f: Finding, budget_ms: float) -> dict[str, object]:
    """The guest's XSA-97 result (affected or unknown)."""
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
            f"{_guest_text(f)} can hold a physical CPU for up to "
            f"{format_ms(f.worst_case_ms)} ms without preemption (budget "
            f"{format_number(budget_ms)} ms)."
        )
        if mitigation is not None:
            text += f" Fix: {_sentence(mitigation.text)}"
    else:  # §3.27.10: level "none" whenever kind is not "fail"
        rule_id, level, kind = RULE_UNKNOWN, "none", "review"
        why = f.reasons[0] if f.reasons else "no reason recorded"
        text = f"Guest '{name}' could not be assessed for XSA-97: {_sentence(why)}"
        if mitigation is not None:
            text += f" Suggested: {_sentence(mitigation.text)}"
    result = _skeleton(rule_id, kind, level, text, f, suppressed=f.suppressed)
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
        "tags": ["security", ADVISORY] + ([cve] if cve else []),
    }
    return result


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."
