"""``--format openvex``: an OpenVEX v0.2.0 document, one statement per guest.

The product of a statement is the guest, ``xenvmmu:guest/<name, else path>``
(percent-encoded), with the Xen release it runs on as a subcomponent (NVD's CPE
``cpe:2.3:o:xen:xen:<version>``) when the version is known. The vulnerability is the guest's
CVE: CVE-2014-5146 for HAP, CVE-2014-5149 for shadow paging; a guest with no paging (PV, Arm)
gets CVE-2014-5146, ``not_affected``. A guest whose paging mode could not be determined gets
one ``under_investigation`` statement for *each* CVE, since either may apply.

Status and justification:

==============================================  ===========================================
verdict / facts                                 statement
==============================================  ===========================================
affected                                        ``affected``, ``action_statement`` = the
                                                cheapest mitigation
unknown                                         ``under_investigation``
not affected, no paging (PV, Arm)               ``vulnerable_code_not_in_execute_path``
not affected, HAP on a fixed release            ``vulnerable_code_not_present`` (xsa97-hap
                                                made the operations preemptible)
not affected otherwise (stall within budget)    ``inline_mitigations_already_exist``: the
                                                code is there and reachable, but the
                                                guest's size and paging pool bound the
                                                non-preemptible work below the budget
==============================================  ===========================================

Every ``not_affected`` statement also has an ``impact_statement`` (the reasons and the
numbers), every statement ``status_notes`` naming the guest's file.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from urllib.parse import quote

from xenvmmu.audit.findings import AuditReport, Finding
from xenvmmu.audit.format.base import (
    ADVISORY,
    CVE_HAP,
    CVE_SHADOW,
    TOOL_NAME,
    Formatter,
    dump_json,
    finding_cve,
    first_mitigation,
    format_ms,
    format_number,
    guest_id,
    register,
    tool_version,
)

CONTEXT = "https://openvex.dev/ns/v0.2.0"
_CPE_VERSION = re.compile(r"^[0-9A-Za-z._-]+$")


def timestamp_text(ts: datetime) -> str:
    """RFC 3339 UTC, seconds: ``2024-05-01T12:00:00Z``; a naive datetime is taken as UTC."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def product(f: Finding) -> dict[str, object]:
    """The guest as an OpenVEX component."""
    component: dict[str, object] = {"@id": f"xenvmmu:guest/{quote(guest_id(f), safe='')}"}
    if f.xen_version and _CPE_VERSION.match(f.xen_version):
        xen = {"cpe23": f"cpe:2.3:o:xen:xen:{f.xen_version}:*:*:*:*:*:*:*"}
        component["subcomponents"] = [{"identifiers": xen}]
    return component


@register
class OpenVexFormatter(Formatter):
    """OpenVEX v0.2.0: what the audit says about each guest, as VEX statements."""

    name = "openvex"
    description = "OpenVEX v0.2.0 VEX document, one statement per guest"

    def render(self, report: AuditReport) -> str:
        """The document; its ``@id`` is derived from its content, so equal input and
        timestamp give byte-identical output."""
        issued = timestamp_text(self.timestamp or datetime.now(UTC))
        statements = [
            _statement(f, cve, report.budget_ms)
            for f in report.findings
            for cve in _cves(f)
        ]
        digest = hashlib.sha256(
            json.dumps([issued, statements], sort_keys=True).encode("utf-8", "surrogatepass")
        ).hexdigest()
        document: dict[str, object] = {
            "@context": CONTEXT,
            "@id": f"urn:xenvmmu:vex:{digest}",
            "author": TOOL_NAME,
            "role": "automated audit",
            "timestamp": issued,
            "version": 1,
            "tooling": f"{TOOL_NAME} {tool_version(report)}",
            "statements": statements,
        }
        return dump_json(document)


def _cves(f: Finding) -> tuple[str, ...]:
    cve = finding_cve(f)
    if cve is not None:
        return (cve,)
    if f.verdict == "unknown":
        return (CVE_HAP, CVE_SHADOW)
    return (CVE_HAP,)


def _statement(f: Finding, cve: str, budget_ms: float) -> dict[str, object]:
    statement: dict[str, object] = {
        "vulnerability": {
            "@id": f"https://nvd.nist.gov/vuln/detail/{cve}",
            "name": cve,
            "aliases": [ADVISORY],
        },
        "products": [product(f)],
    }
    where = f.source.path if f.source.line is None else f"{f.source.path}:{f.source.line}"
    notes = f"guest read from {where}"
    stall = (
        f"worst-case non-preemptible section {format_ms(f.worst_case_ms)} ms, "
        f"budget {format_number(budget_ms)} ms"
    )
    if f.verdict == "affected" and f.cve == cve:
        mitigation = first_mitigation(f)
        statement["status"] = "affected"
        statement["action_statement"] = (
            mitigation.text if mitigation is not None else "No mitigation known; see XSA-97."
        )
        notes += f"; {stall}"
    elif f.verdict == "unknown":
        statement["status"] = "under_investigation"
        if f.reasons:
            notes += "; could not assess: " + "; ".join(f.reasons)
    else:
        statement["status"] = "not_affected"
        if f.paging is None:
            statement["justification"] = "vulnerable_code_not_in_execute_path"
        elif f.paging == "hap" and f.xsa97_fixed:
            statement["justification"] = "vulnerable_code_not_present"
        else:
            statement["justification"] = "inline_mitigations_already_exist"
        impact = list(f.reasons)
        if f.paging is not None:
            impact.append(stall)
        statement["impact_statement"] = "; ".join(impact) or "not affected"
    statement["status_notes"] = notes
    return statement
