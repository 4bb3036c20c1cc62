"""``--format openvex``: an OpenVEX v0.2.0 document, a statement per guest and CVE.

Products. A statement's product is the guest, identified uniquely within the document: a
domain read from ``xl list -l`` by its uuid (``urn:uuid:<uuid>``), any other guest by the path
of its file as given (``urn:xenvmmu:guest:path:<path>``, percent-encoded); never by its name,
since two guests may share one. Should two guests still share an identity (two domains of
one listing without a uuid), the later ones get ``#2``, ``#3``... so a product has at most
one status per CVE. The Xen release it runs on is a subcomponent (NVD's CPE
``cpe:2.3:o:xen:xen:<version>``) when the version is known; the guest's name and file are in
``status_notes``.

Vulnerabilities. When the run reports XSA-97, every guest gets a statement for each of its
CVEs, CVE-2014-5146 (the HAP code) and CVE-2014-5149 (the shadow-paging code), in that order
(``name`` the CVE, ``aliases`` ``XSA-97``). Then, for every other advisory the run reports
that concerns the guest (``Finding.advisories``), a statement per CVE of the advisory, whose
vulnerability names the CVE (``name``, ``@id`` its NVD page), the advisory (``aliases``) and
its title (``description``). ``--advisory`` narrows the statements to those advisories
(without XSA-97: no statement for CVE-2014-5146/5149). A CVE is stated once per guest.

Status and justification, per the OpenVEX specification's meanings (a justification only
where its meaning holds, else an ``impact_statement`` alone):

=================================================  ==========================================
guest / facts                                      statement for the CVE
=================================================  ==========================================
XSA-97: affected, the CVE of its paging mode       ``affected``, ``action_statement`` = the
                                                   cheapest mitigation
XSA-97: unknown, paging mode unknown               ``under_investigation`` (either CVE)
XSA-97: unknown, the CVE of its paging mode        ``under_investigation``
XSA-97: no HVM paging (PV, PVHv1, a guest xl       ``not_affected``,
cannot create) on x86; the CVE of the other        ``vulnerable_code_not_in_execute_path``
paging mode
XSA-97: Arm host                                   ``not_affected``,
                                                   ``vulnerable_code_not_present`` (the x86
                                                   paging code is not built)
XSA-97: HAP on a release with the xsa97-hap fix    ``not_affected``,
(CVE-2014-5146)                                    ``vulnerable_code_not_present`` (the walk
                                                   is preemptible); a residual HAP type sweep
                                                   is named in the impact statement
XSA-97: the CVE of its paging mode, worst case     ``not_affected``, no justification: the
within the budget                                  code is present, reachable and driven by
                                                   the adversary, only bounded below the
                                                   budget, which the ``impact_statement``
                                                   says with the numbers
another advisory: affected                         ``affected``, ``action_statement`` = its
                                                   first mitigation (else "no mitigation
                                                   known")
another advisory: unknown (also: every reported    ``under_investigation``, the missing input
advisory of a guest that could not be assessed     in ``status_notes``
at all, in a run without XSA-97)
another advisory: not affected, the release has    ``not_affected``,
its fix                                            ``vulnerable_code_not_present``
another advisory: not affected, its worst case     ``not_affected``, no justification, the
within the budget (no fix)                         ``impact_statement`` with the numbers
=================================================  ==========================================

Every ``not_affected`` statement has an ``impact_statement``, every statement
``status_notes``. A finding the operator suppressed (``--suppress``) keeps its status (a VEX
statement is a fact about exposure): the ``status_notes`` of its statements (an advisory's
CVEs; for XSA-97, the CVE of the guest's paging mode, or both without one) end with
``suppressed by the operator: <reason> (FILE:line)``.

The statements are written to a temporary file as the guests come; the document's ``@id``
is the SHA-256 of the issue time and the statements' text, so equal input and timestamp give
byte-identical output.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import quote

from xenvmmu.audit.findings import AdvisoryFinding, AuditStream, Finding
from xenvmmu.audit.format.base import (
    ADVISORY,
    CVE_HAP,
    CVE_SHADOW,
    TOOL_NAME,
    Formatter,
    JsonListWriter,
    RawJson,
    advisory_impact,
    encode_json,
    finding_cve,
    first_mitigation,
    format_ms,
    format_number,
    json_string,
    one_line,
    register,
    reports,
    spool,
    stated_advisories,
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
        xsa97 = reports(audit, ADVISORY)
        count = 0
        texts = _StatementTexts(newline, audit, xsa97, arm)
        with spool() as statements:
            for f in audit:
                for text in texts(f, identity(f)):
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


#: Stand-ins in a statement encoded once for the guests of one shape (:class:`_StatementTexts`):
#: the guest's products list and the start of its status notes. No input holds them (NUL).
_PRODUCTS = RawJson("\x00xenvmmu-products\x00")
_NOTES = "\x00xenvmmu-notes\x00"
_NOTES_JSON = json_string(_NOTES)[1:-1]


class _StatementTexts:
    """Each guest's statements as JSON text: XSA-97's two CVEs (when reported), then each
    CVE of its other reported advisories, each CVE once. A statement of another advisory
    depends on the guest only through its products and the start of its status notes, so
    it is encoded once per advisory finding (guests of one shape share theirs) with
    stand-ins for those two, which each guest's own then replace."""

    def __init__(self, newline: str, audit: AuditStream, xsa97: bool, arm: bool) -> None:
        self.newline, self.inner = newline, newline + "  "
        self.audit, self.xsa97, self.arm = audit, xsa97, arm
        self.vulnerabilities: dict[str, RawJson] = {}
        self.templates: dict[tuple[int, str], tuple[AdvisoryFinding, str]] = {}

    def __call__(self, f: Finding, identity: str) -> list[str]:
        budget = self.audit.budget_ms
        products = RawJson(encode_json([product(f, identity)], self.inner))
        notes = _notes(f)
        out: list[str] = []
        stated: set[str] = set()
        if self.xsa97:
            for cve in CVES:
                stated.add(cve)
                out.append(self._encode(_statement(f, cve, notes, budget, self.arm), products))
        for a in stated_advisories(f, self.audit):
            for cve in a.cves:
                if cve in stated:
                    continue
                stated.add(cve)
                hit = self.templates.get((id(a), cve))
                if hit is None or hit[0] is not a:
                    text = self._encode(_advisory_statement(a, cve, _NOTES, budget), _PRODUCTS)
                    if len(self.templates) >= 16384:
                        self.templates.clear()
                    hit = self.templates[(id(a), cve)] = (a, text)
                # notes first: the products (percent-encoded ids) hold no backslash, and
                # the encoded notes no NUL, so neither can hold the other's stand-in
                out.append(hit[1].replace(_NOTES_JSON, json_string(notes)[1:-1], 1)
                           .replace(_PRODUCTS, products, 1))
        return out

    def _encode(self, statement: dict[str, object], products: RawJson) -> str:
        vulnerability = statement["vulnerability"]
        key = repr(vulnerability)
        if key not in self.vulnerabilities:
            self.vulnerabilities[key] = RawJson(encode_json(vulnerability, self.inner))
        ordered: dict[str, object] = {"vulnerability": self.vulnerabilities[key],
                                      "products": products}
        ordered.update((k, v) for k, v in statement.items() if k not in ordered)
        return encode_json(ordered, self.newline)


def _vulnerability(cve: str, advisory: str, title: str = "") -> dict[str, object]:
    vulnerability: dict[str, object] = {
        "@id": f"https://nvd.nist.gov/vuln/detail/{cve}",
        "name": cve,
        "aliases": [advisory],
    }
    if title:
        vulnerability["description"] = f"{advisory}: {title}"
    return vulnerability


def _notes(f: Finding) -> str:
    where = f.source.path if f.source.line is None else f"{f.source.path}:{f.source.line}"
    return (f'guest "{one_line(f.name)}" read from {where}' if f.name is not None
            else f"guest read from {where}")


def _advisory_statement(a: AdvisoryFinding, cve: str, notes: str,
                        budget_ms: float) -> dict[str, object]:
    """The statement for one CVE of an advisory other than XSA-97 (``notes``: the guest's
    part of the status notes; the products are the caller's)."""
    statement: dict[str, object] = {"vulnerability": _vulnerability(cve, a.id, a.title)}
    figure = advisory_impact(a, budget_ms)
    if a.verdict == "unknown":
        statement["status"] = "under_investigation"
        notes += f"; {a.id} could not be assessed: " + (
            "; ".join(a.reasons) or "no reason recorded")
    elif a.verdict == "affected":
        statement["status"] = "affected"
        statement["action_statement"] = (
            a.mitigations[0] if a.mitigations else f"No mitigation known; see {a.id}.")
        notes += f"; {figure}" if figure else ""
    else:
        statement["status"] = "not_affected"
        impact = list(a.reasons)
        if a.fixed:
            statement["justification"] = "vulnerable_code_not_present"
            impact.insert(0, f"this release has the {a.id} fix")
        if figure:
            impact.append(figure)
        statement["impact_statement"] = "; ".join(impact) or "not affected"
    statement["status_notes"] = _suppressed(notes, a.suppressed)
    return statement


def _suppressed(notes: str, suppressed: str | None) -> str:
    """``status_notes`` with the operator's suppression, if any, said at the end."""
    return notes if suppressed is None else f"{notes}; suppressed by the operator: {suppressed}"


def _statement(f: Finding, cve: str, notes: str, budget_ms: float,
               arm: bool) -> dict[str, object]:
    """The statement for one of XSA-97's CVEs (``notes``: the guest's part of the status
    notes; the products are the caller's)."""
    statement: dict[str, object] = {"vulnerability": _vulnerability(cve, ADVISORY)}
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
    statement["status_notes"] = _suppressed(notes, f.suppressed if mine in (None, cve)
                                            else None)
    return statement
