"""``--format openvex``: an OpenVEX v0.2.0 document, two statements per guest.

Products. A statement's product is the guest, identified uniquely within the document: a
domain read from ``xl list -l`` by its uuid (``urn:uuid:<uuid>``), any other guest by the path
of its file as given (``urn:xenvmmu:guest:path:<path>``, percent-encoded); never by its name,
since two guests may share one. Should two guests still share an identity (two domains of
one listing without a uuid), the later ones get ``#2``, ``#3``... so a product has at most
one status per CVE. The Xen release it runs on is a subcomponent (NVD's CPE
``cpe:2.3:o:xen:xen:<version>``) when the version is known; the guest's name and file are in
``status_notes``.

Vulnerabilities. Every guest gets a statement for each of XSA-97's CVEs, CVE-2014-5146 (the
HAP code) and CVE-2014-5149 (the shadow-paging code), in that order.

Status and justification, per the OpenVEX specification's meanings (a justification only
where its meaning holds, else an ``impact_statement`` alone):

=================================================  ==========================================
guest / facts                                      statement for the CVE
=================================================  ==========================================
affected, the CVE of its paging mode               ``affected``, ``action_statement`` = the
                                                   cheapest mitigation
unknown, paging mode unknown                       ``under_investigation`` (either CVE)
unknown, the CVE of its paging mode                ``under_investigation``
no HVM paging (PV, PVHv1, a guest xl cannot        ``not_affected``,
create) on x86; the CVE of the other paging mode   ``vulnerable_code_not_in_execute_path``
Arm host                                           ``not_affected``,
                                                   ``vulnerable_code_not_present`` (the x86
                                                   paging code is not built)
HAP on a release with the xsa97-hap fix            ``not_affected``,
(CVE-2014-5146)                                    ``vulnerable_code_not_present`` (the walk
                                                   is preemptible); a residual HAP type sweep
                                                   is named in the impact statement
the CVE of its paging mode, worst case within      ``not_affected``, no justification: the
the budget                                         code is present, reachable and driven by
                                                   the adversary, only bounded below the
                                                   budget, which the ``impact_statement``
                                                   says with the numbers
=================================================  ==========================================

Every ``not_affected`` statement has an ``impact_statement``, every statement
``status_notes``. The statements are written to a temporary file as the guests come; the
document's ``@id`` is the SHA-256 of the issue time and the statements' text, so equal input
and timestamp give byte-identical output.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import quote

from xenvmmu.audit.findings import AuditStream, Finding
from xenvmmu.audit.format.base import (
    ADVISORY,
    CVE_HAP,
    CVE_SHADOW,
    TOOL_NAME,
    Formatter,
    JsonListWriter,
    encode_json,
    finding_cve,
    first_mitigation,
    format_ms,
    format_number,
    one_line,
    register,
    spool,
    tool_version,
)

CONTEXT = "https://openvex.dev/ns/v0.2.0"
CVES = (CVE_HAP, CVE_SHADOW)
_CPE_VERSION = re.compile(r"^[0-9A-Za-z._-]+$")
_MODE_OF_CVE = {CVE_HAP: "HAP", CVE_SHADOW: "shadow paging"}


def timestamp_text(ts: datetime) -> str:
    """RFC 3339 UTC, seconds: ``2024-05-01T12:00:00Z``; a naive datetime is taken as UTC."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def product_id(f: Finding) -> str:
    """The guest's identity: ``urn:uuid:<uuid>`` for a domain with a uuid, else its file's
    path as given, ``urn:xenvmmu:guest:path:<percent-encoded path>``."""
    if f.uuid:
        return f"urn:uuid:{quote(f.uuid, safe='-')}"
    path = f.source.path.encode("utf-8", "surrogateescape")
    return f"urn:xenvmmu:guest:path:{quote(path, safe='/')}"


def product(f: Finding, identity: str | None = None) -> dict[str, object]:
    """The guest as an OpenVEX component (``identity``: its ``@id``, by default
    :func:`product_id`)."""
    component: dict[str, object] = {"@id": identity or product_id(f)}
    if f.xen_version and _CPE_VERSION.match(f.xen_version):
        xen = {"cpe23": f"cpe:2.3:o:xen:xen:{f.xen_version}:*:*:*:*:*:*:*"}
        component["subcomponents"] = [{"identifiers": xen}]
    return component


class _Identities:
    """Product identities unique within the document (``#2``, ``#3``... for repeats)."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, f: Finding) -> str:
        base = product_id(f)
        n = self.seen.get(base, 0) + 1
        self.seen[base] = n
        if n == 1:
            return base
        return f"{base}-{n}" if "#" in base else f"{base}#{n}"


@register
class OpenVexFormatter(Formatter):
    """OpenVEX v0.2.0: what the audit says about each guest, as VEX statements."""

    name = "openvex"
    description = "OpenVEX v0.2.0 VEX document, a statement per guest and CVE"

    def write(self, audit: AuditStream, out: TextIO) -> None:
        """The document; its ``@id`` is derived from its content, so equal input and
        timestamp give byte-identical output."""
        issued = timestamp_text(self.timestamp or datetime.now(UTC))
        probe = JsonListWriter(io.StringIO())
        probe.begin(self._document(audit, issued, "", probe.placeholder))
        newline, digest = probe.newline, hashlib.sha256(issued.encode())
        identity = _Identities()
        arm = str(audit.host.get("arch") or "x86") == "arm"
        count = 0
        with spool() as statements:
            for f in audit:
                ident = identity(f)
                for cve in CVES:
                    text = encode_json(_statement(f, cve, ident, audit.budget_ms, arm), newline)
                    text = ("," + newline if count else newline) + text
                    digest.update(text.encode("utf-8", "surrogatepass"))
                    statements.write(text)
                    count += 1
            del identity
            writer = JsonListWriter(out)
            document = self._document(audit, issued, digest.hexdigest(), writer.placeholder)
            writer.begin(document)
            writer.items_from(statements, count)
            writer.end(document)

    def _document(self, audit: AuditStream, issued: str, digest: str,
                  statements: list[object]) -> dict[str, object]:
        return {
            "@context": CONTEXT,
            "@id": f"urn:xenvmmu:vex:{digest}",
            "author": TOOL_NAME,
            "role": "automated audit",
            "timestamp": issued,
            "version": 1,
            "tooling": f"{TOOL_NAME} {tool_version(audit)}",
            "statements": statements,
        }


def _statement(f: Finding, cve: str, identity: str, budget_ms: float,
               arm: bool) -> dict[str, object]:
    statement: dict[str, object] = {
        "vulnerability": {
            "@id": f"https://nvd.nist.gov/vuln/detail/{cve}",
            "name": cve,
            "aliases": [ADVISORY],
        },
        "products": [product(f, identity)],
    }
    where = f.source.path if f.source.line is None else f"{f.source.path}:{f.source.line}"
    notes = (f'guest "{one_line(f.name)}" read from {where}' if f.name is not None
             else f"guest read from {where}")
    stall = (
        f"worst-case non-preemptible section {format_ms(f.worst_case_ms)} ms, "
        f"budget {format_number(budget_ms)} ms"
    )
    mine = finding_cve(f)  # the CVE of the guest's paging mode (None: no HVM paging)
    impact: list[str] = []
    if f.verdict == "unknown" and (mine is None or mine == cve):
        statement["status"] = "under_investigation"
        if f.reasons:
            notes += "; could not assess: " + "; ".join(f.reasons)
    elif f.verdict == "affected" and (f.cve == cve or (
            f.cve is None and mine == cve and not (f.paging == "hap" and f.xsa97_fixed))):
        mitigation = first_mitigation(f)
        statement["status"] = "affected"
        statement["action_statement"] = (
            mitigation.text if mitigation is not None else "No mitigation known; see XSA-97."
        )
        notes += f"; {stall}"
    else:
        statement["status"] = "not_affected"
        if arm:
            statement["justification"] = "vulnerable_code_not_present"
            impact.append(f"Arm host: the x86 {_MODE_OF_CVE[cve]} code of {cve} is not built")
        elif mine is None:
            statement["justification"] = "vulnerable_code_not_in_execute_path"
            impact += f.reasons
        elif mine != cve:
            statement["justification"] = "vulnerable_code_not_in_execute_path"
            impact.append(f"the guest uses {_MODE_OF_CVE.get(mine, '?')}; {cve} is in "
                          f"{_MODE_OF_CVE[cve]}'s code, which it never runs")
        elif f.paging == "hap" and f.xsa97_fixed:
            statement["justification"] = "vulnerable_code_not_present"
            impact.append("this release has the xsa97-hap fix: the HAP log-dirty walk is "
                          "preemptible")
            if f.verdict == "affected":  # a residual finding, not this CVE's code
                impact += f.reasons
            impact.append(stall)
        else:  # present, reachable, driven by the adversary: only bounded by the guest's size
            impact += f.reasons
            impact.append(stall)
    if statement["status"] == "not_affected":
        statement["impact_statement"] = "; ".join(impact) or "not affected"
    statement["status_notes"] = notes
    return statement
