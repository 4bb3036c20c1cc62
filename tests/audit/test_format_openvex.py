"""``--format openvex``: validates against the OpenVEX v0.2.0 schema in ../shared/schemas."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from xenvmmu.audit.findings import AuditReport, SourceRef
from xenvmmu.audit.format import OpenVexFormatter, write_atomic
from xenvmmu.audit.format.openvex import timestamp_text

from .test_format_base import (
    BIG_HAP,
    BUDGET_344,
    NARROWED,
    NOTE_97,
    NOTE_410,
    PV,
    QUIET,
    SHADOW,
    SMALL,
    UNBOUNDED,
    WEIRD,
    XM,
    advisory_report,
    sample_report,
    suppressed_report,
)

TS = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def validator(shared_dir: Path) -> jsonschema.Draft202012Validator:
    schema = json.loads((shared_dir / "schemas" / "openvex-schema-0.2.0.json").read_text())
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def render(report: AuditReport, ts: datetime | None = TS) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(OpenVexFormatter(timestamp=ts).render(report))
    return data


def test_validates(validator: jsonschema.Draft202012Validator) -> None:
    validator.validate(render(sample_report()))


def test_validator_enforces_the_affected_rule(
    validator: jsonschema.Draft202012Validator,
) -> None:
    doc = render(sample_report())
    del doc["statements"][0]["action_statement"]
    assert not validator.is_valid(doc)


def test_document_header() -> None:
    doc = render(sample_report())
    assert {k: v for k, v in doc.items() if k not in ("@id", "statements")} == {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "author": "xenvmmu",
        "role": "automated audit",
        "timestamp": "2024-05-01T12:00:00Z",
        "version": 1,
        "tooling": "xenvmmu 0.1.0",
    }
    assert doc["@id"].startswith("urn:xenvmmu:vex:") and len(doc["@id"]) == 16 + 64


def test_statuses_and_justifications() -> None:
    rows = [
        (
            s["products"][0]["@id"],
            s["vulnerability"]["name"],
            s["status"],
            s.get("justification"),
        )
        for s in render(sample_report())["statements"]
    ]
    path = "urn:xenvmmu:guest:path:"
    not_run = "vulnerable_code_not_in_execute_path"
    assert rows == [
        (f"{path}guests/big-hap.cfg", "CVE-2014-5146", "affected", None),
        (f"{path}guests/big-hap.cfg", "CVE-2014-5149", "not_affected", not_run),
        (f"{path}guests/shadow-db.cfg", "CVE-2014-5146", "not_affected", not_run),
        (f"{path}guests/shadow-db.cfg", "CVE-2014-5149", "affected", None),
        # PV: neither paging mode's code runs
        (f"{path}guests/pv-web.cfg", "CVE-2014-5146", "not_affected", not_run),
        (f"{path}guests/pv-web.cfg", "CVE-2014-5149", "not_affected", not_run),
        # paging unknown: either CVE may apply
        (f"{path}legacy/xm-guest.cfg", "CVE-2014-5146", "under_investigation", None),
        (f"{path}legacy/xm-guest.cfg", "CVE-2014-5149", "under_investigation", None),
        # HAP on a fixed release: the non-preemptible walk is gone
        (f"{path}guests/odd%20name.cfg", "CVE-2014-5146", "not_affected",
         "vulnerable_code_not_present"),
        (f"{path}guests/odd%20name.cfg", "CVE-2014-5149", "not_affected", not_run),
        # within the budget: present, reachable, adversary-driven: no justification applies
        (f"{path}guests/small.cfg", "CVE-2014-5146", "not_affected", None),
        (f"{path}guests/small.cfg", "CVE-2014-5149", "not_affected", not_run),
    ]


def test_affected_statement_whole() -> None:
    assert render(sample_report())["statements"][0] == {
        "vulnerability": {
            "@id": "https://nvd.nist.gov/vuln/detail/CVE-2014-5146",
            "name": "CVE-2014-5146",
            "aliases": ["XSA-97"],
        },
        "products": [
            {
                "@id": "urn:xenvmmu:guest:path:guests/big-hap.cfg",
                "subcomponents": [
                    {"identifiers": {"cpe23": "cpe:2.3:o:xen:xen:4.4.0:*:*:*:*:*:*:*"}}
                ],
            }
        ],
        "status": "affected",
        "action_statement": "Upgrade Xen to 4.4.1 or later.",
        "status_notes": (
            'guest "big-hap" read from guests/big-hap.cfg; worst-case non-preemptible section '
            "1234 ms, budget 30 ms"
        ),
    }


def test_not_affected_statements_explain() -> None:
    statements = render(sample_report())["statements"]
    assert statements[4]["impact_statement"] == "PV guests have no HAP or shadow paging"
    assert statements[10]["impact_statement"] == (
        "the longest non-preemptible section, 9.5 ms, is within the budget; "
        "worst-case non-preemptible section 9.50 ms, budget 30 ms"
    )
    assert statements[11]["impact_statement"] == (
        "the guest uses HAP; CVE-2014-5149 is in shadow paging's code, which it never runs"
    )
    assert statements[6]["status_notes"] == (
        "guest read from legacy/xm-guest.cfg:3; could not assess: xm configuration written "
        "in Python (line 3); not executed"
    )


def test_affected_without_mitigation_still_has_an_action() -> None:
    doc = render(AuditReport(findings=(replace(BIG_HAP, mitigations=()),)))
    assert doc["statements"][0]["action_statement"] == "No mitigation known; see XSA-97."


def test_unparseable_version_gets_no_cpe(validator: jsonschema.Draft202012Validator) -> None:
    doc = render(AuditReport(findings=(replace(SMALL, xen_version="4.4 (vendor)"),
                                       replace(WEIRD, xen_version=None))))
    validator.validate(doc)
    assert [s["products"] for s in doc["statements"]] == [
        [{"@id": "urn:xenvmmu:guest:path:guests/small.cfg"}],
        [{"@id": "urn:xenvmmu:guest:path:guests/small.cfg"}],
        [{"@id": "urn:xenvmmu:guest:path:guests/odd%20name.cfg"}],
        [{"@id": "urn:xenvmmu:guest:path:guests/odd%20name.cfg"}],
    ]


def test_deterministic_for_a_given_timestamp() -> None:
    one = OpenVexFormatter(timestamp=TS).render(sample_report())
    assert OpenVexFormatter(timestamp=TS).render(sample_report()) == one
    other = OpenVexFormatter(timestamp=TS + timedelta(seconds=1)).render(sample_report())
    assert json.loads(other)["@id"] != json.loads(one)["@id"]
    assert one.isascii() and one.endswith("]\n}\n")


def test_timestamps() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert timestamp_text(datetime(2024, 5, 1, 14, 30, 5, 999, tzinfo=plus_two)) == (
        "2024-05-01T12:30:05Z"
    )
    assert timestamp_text(datetime(2024, 5, 1, 12, 0)) == "2024-05-01T12:00:00Z"  # naive = UTC
    before = datetime.now(UTC).replace(microsecond=0)
    issued = datetime.fromisoformat(render(sample_report(), ts=None)["timestamp"])
    assert before <= issued <= datetime.now(UTC)


def test_empty_report_is_not_valid_openvex(validator: jsonschema.Draft202012Validator) -> None:
    """OpenVEX needs at least one statement; with no guests there is nothing to state."""
    assert not validator.is_valid(render(AuditReport(findings=())))


def test_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "xenvmmu.openvex.json"
    text = OpenVexFormatter(timestamp=TS).render(sample_report())
    write_atomic(out, text)
    assert out.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["xenvmmu.openvex.json"]


# --- the spec's rules, checked on whole documents -----------------------------------------------

JUSTIFICATIONS = {
    "component_not_present", "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path", "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
}


def check_openvex_rules(doc: dict[str, Any], guests: int, *, xsa97_only: bool = False) -> None:
    """OpenVEX v0.2.0 rules the schema does not express, as xenvmmu promises them: when the
    document states XSA-97, every guest has its two CVEs (``xsa97_only``: and no other)."""
    seen: dict[tuple[str, str], str] = {}
    products: dict[str, set[str]] = {}
    for s in doc["statements"]:
        cve = s["vulnerability"]["name"]
        assert cve in ("CVE-2014-5146", "CVE-2014-5149") or not xsa97_only
        assert cve.startswith("CVE-") and s["vulnerability"]["aliases"][0].startswith("XSA-")
        assert s["vulnerability"]["@id"].endswith(cve)
        for product in s["products"]:
            key = (product["@id"], cve)
            assert key not in seen, f"two statuses for {key}: {seen[key]}, {s['status']}"
            seen[key] = s["status"]
            products.setdefault(product["@id"], set()).add(cve)
        if s["status"] == "not_affected":
            # the spec: a justification or an impact statement; xenvmmu gives the impact always
            assert s.get("impact_statement")
            assert s.get("justification") in JUSTIFICATIONS | {None}
            # a budget is not a mitigation that exists in the product
            assert s.get("justification") != "inline_mitigations_already_exist"
        else:
            assert "justification" not in s and "impact_statement" not in s
        if s["status"] == "affected":
            assert s["action_statement"]
        assert s["status_notes"]
    # every guest: one identity, both CVEs
    assert len(products) == guests
    xsa97 = {"CVE-2014-5146", "CVE-2014-5149"}
    if any(s["vulnerability"]["aliases"] == ["XSA-97"] for s in doc["statements"]):
        assert all(xsa97 <= cves for cves in products.values())
    if xsa97_only:
        assert all(cves == xsa97 for cves in products.values())


def test_spec_rules_hold(validator: jsonschema.Draft202012Validator) -> None:
    doc = render(sample_report())
    validator.validate(doc)
    check_openvex_rules(doc, guests=6, xsa97_only=True)


def test_duplicate_guest_names_never_contradict(
    validator: jsonschema.Draft202012Validator,
) -> None:
    """Two guests called "web" (one affected, one not) are two products, not one with both
    statuses; two unnamed domains of one listing without a uuid too."""
    web_a = replace(BIG_HAP, name="web", source=SourceRef("/etc/xen/a/web.cfg"))
    web_b = replace(SMALL, name="web", source=SourceRef("/etc/xen/b/web.cfg"))
    web_c = replace(SHADOW, name="web", source=SourceRef("/srv/web.cfg"))
    twin = replace(XM, source=SourceRef("list.json"))
    doc = render(AuditReport(findings=(web_a, web_b, web_c, twin, twin)))
    validator.validate(doc)
    check_openvex_rules(doc, guests=5, xsa97_only=True)
    ids = [s["products"][0]["@id"] for s in doc["statements"][::2]]
    assert ids == [
        "urn:xenvmmu:guest:path:/etc/xen/a/web.cfg",
        "urn:xenvmmu:guest:path:/etc/xen/b/web.cfg",
        "urn:xenvmmu:guest:path:/srv/web.cfg",
        "urn:xenvmmu:guest:path:list.json",
        "urn:xenvmmu:guest:path:list.json#2",
    ]
    statuses = [(s["products"][0]["@id"][-10:], s["status"]) for s in doc["statements"]
                if s["vulnerability"]["name"] == "CVE-2014-5146"]
    assert statuses[:2] == [("/a/web.cfg", "affected"), ("/b/web.cfg", "not_affected")]


def test_listed_domains_are_identified_by_uuid(
    validator: jsonschema.Draft202012Validator,
) -> None:
    uuid = "5a2b2a3c-9f44-4c7b-a7c1-1f3c6a2e0d11"
    one = replace(BIG_HAP, name="web", source=SourceRef("xl list -l"), uuid=uuid)
    two = replace(SMALL, name="web", source=SourceRef("xl list -l"),
                  uuid="0e9ab9c3-7a5f-4c61-9c0b-5d1a3f0e4b22")
    doc = render(AuditReport(findings=(one, two)))
    validator.validate(doc)
    check_openvex_rules(doc, guests=2, xsa97_only=True)
    assert doc["statements"][0]["products"][0]["@id"] == f"urn:uuid:{uuid}"


def test_pv_guest_not_affected_by_both_cves() -> None:
    statements = render(AuditReport(findings=(PV,)))["statements"]
    assert [(s["vulnerability"]["name"], s["status"], s["justification"]) for s in statements] == [
        ("CVE-2014-5146", "not_affected", "vulnerable_code_not_in_execute_path"),
        ("CVE-2014-5149", "not_affected", "vulnerable_code_not_in_execute_path"),
    ]


def test_budget_based_not_affected_has_an_impact_statement_only() -> None:
    shadow_small = replace(SHADOW, verdict="not_affected", severity="none", worst_case_ms=12.0,
                           reasons=("longest non-preemptible section about 12 ms, within the "
                                    "30 ms budget",))
    statements = render(AuditReport(findings=(SMALL, shadow_small)))["statements"]
    budget = [statements[0], statements[3]]  # SMALL's CVE-2014-5146, the shadow guest's 5149
    for s in budget:
        assert s["status"] == "not_affected" and "justification" not in s
        assert "budget 30 ms" in s["impact_statement"]


def test_arm_host_has_no_x86_paging_code(validator: jsonschema.Draft202012Validator) -> None:
    arm = replace(PV, guest_type="hvm", reasons=("Arm guests have no x86 paging",))
    doc = render(AuditReport(findings=(arm,), host={"arch": "arm"}))
    validator.validate(doc)
    assert {s["justification"] for s in doc["statements"]} == {"vulnerable_code_not_present"}


def test_residual_exposure_is_not_the_cve() -> None:
    """4.4.2: the log-dirty walk is fixed, the HAP type sweep is not: affected, no CVE."""
    residual = replace(BIG_HAP, cve=None, xsa97_fixed=True, xen_version="4.4.2",
                       reasons=("residual exposure, not CVE-2014-5146: the type sweep",))
    hap, shadow = render(AuditReport(findings=(residual,)))["statements"]
    assert (hap["status"], hap["justification"]) == ("not_affected",
                                                      "vulnerable_code_not_present")
    assert "residual exposure" in hap["impact_statement"]
    assert shadow["justification"] == "vulnerable_code_not_in_execute_path"


def test_streamed_document_id_is_its_digest() -> None:
    import hashlib

    one = OpenVexFormatter(timestamp=TS).render(sample_report())
    doc = json.loads(one)
    start = one.index('"statements": [') + len('"statements": [')
    body = one[start:one.rindex("\n  ]")]
    digest = hashlib.sha256(("2024-05-01T12:00:00Z" + body).encode()).hexdigest()
    assert doc["@id"] == f"urn:xenvmmu:vex:{digest}"


# --- the advisories of the registry -----------------------------------------------------------


def _rows(doc: dict[str, Any]) -> list[tuple[str, str, list[str], str, str | None]]:
    return [(s["products"][0]["@id"].rsplit("/", 1)[-1], s["vulnerability"]["name"],
             s["vulnerability"]["aliases"], s["status"], s.get("justification"))
            for s in doc["statements"]]


def test_a_statement_per_cve_of_every_advisory(
    validator: jsonschema.Draft202012Validator,
) -> None:
    doc = render(advisory_report())
    validator.validate(doc)
    check_openvex_rules(doc, guests=4)
    present = "vulnerable_code_not_present"
    not_run = "vulnerable_code_not_in_execute_path"
    assert _rows(doc) == [
        ("adv.cfg", "CVE-2014-5146", ["XSA-97"], "affected", None),
        ("adv.cfg", "CVE-2014-5149", ["XSA-97"], "not_affected", not_run),
        ("adv.cfg", "CVE-2020-25601", ["XSA-344"], "affected", None),
        ("adv.cfg", "CVE-2022-33746", ["XSA-410"], "affected", None),
        ("adv.cfg", "CVE-2026-42493", ["XSA-495"], "under_investigation", None),
        ("uaf.cfg", "CVE-2014-5146", ["XSA-97"], "not_affected", None),
        ("uaf.cfg", "CVE-2014-5149", ["XSA-97"], "not_affected", not_run),
        ("uaf.cfg", "CVE-2020-25601", ["XSA-344"], "not_affected", present),  # fixed
        ("uaf.cfg", "CVE-2022-33746", ["XSA-410"], "affected", None),
        ("quiet.cfg", "CVE-2014-5146", ["XSA-97"], "not_affected", not_run),
        ("quiet.cfg", "CVE-2014-5149", ["XSA-97"], "not_affected", not_run),
        ("quiet.cfg", "CVE-2020-25601", ["XSA-344"], "not_affected", None),  # within budget
        ("xm-guest.cfg", "CVE-2014-5146", ["XSA-97"], "under_investigation", None),
        ("xm-guest.cfg", "CVE-2014-5149", ["XSA-97"], "under_investigation", None),
    ]
    s = doc["statements"]
    assert s[2]["vulnerability"]["description"] == (
        "XSA-344: Lack of preemption in evtchn_reset() / evtchn_destroy()")
    assert "description" not in s[0]["vulnerability"]  # XSA-97's stay as they were
    assert s[2]["action_statement"] == "Set max_event_channels = 1023 or less."
    assert "no bound once triggered" in s[2]["status_notes"]
    assert s[3]["status_notes"].endswith("worst-case non-preemptible section 40.0-380 ms, "
                                         "budget 30 ms")
    assert s[4]["status_notes"].endswith(
        "XSA-495 could not be assessed: shadow pool size unknown: shadow_memory not given")
    assert s[7]["impact_statement"].startswith("this release has the XSA-344 fix; ")
    assert s[8]["action_statement"] == "No mitigation known; see XSA-410."
    assert "integrity impact" in s[8]["status_notes"]
    assert s[11]["impact_statement"] == (
        "resetting 1,023 ports takes 0.102-0.511 ms; worst-case non-preemptible section "
        "0.102-0.511 ms, budget 30 ms")


def test_narrowed_to_other_advisories(validator: jsonschema.Draft202012Validator) -> None:
    doc = render(advisory_report(NARROWED))
    validator.validate(doc)
    check_openvex_rules(doc, guests=4)
    assert _rows(doc) == [
        ("adv.cfg", "CVE-2020-25601", ["XSA-344"], "affected", None),
        ("uaf.cfg", "CVE-2020-25601", ["XSA-344"], "not_affected", "vulnerable_code_not_present"),
        ("quiet.cfg", "CVE-2020-25601", ["XSA-344"], "not_affected", None),
        # could not be assessed at all: unknown for the reported advisory, what is missing said
        ("xm-guest.cfg", "CVE-2020-25601", ["XSA-344"], "under_investigation", None),
    ]
    assert "xm configuration written in Python" in doc["statements"][3]["status_notes"]


def test_a_cve_is_stated_once_per_guest() -> None:
    twice = replace(UNBOUNDED, id="XSA-410")  # another advisory naming the same CVE
    guest = replace(QUIET, advisories=(BUDGET_344, twice))
    names = [s["vulnerability"]["name"]
             for s in render(AuditReport(findings=(guest,)))["statements"]]
    assert names == ["CVE-2014-5146", "CVE-2014-5149", "CVE-2020-25601"]


# --- suppressed findings (--suppress) ---------------------------------------------------------


def test_a_suppressed_finding_keeps_its_status_and_says_so(
    validator: jsonschema.Draft202012Validator,
) -> None:
    doc = render(suppressed_report())
    validator.validate(doc)
    silenced = {s["vulnerability"]["name"]: s for s in doc["statements"]
                if s["products"][0]["@id"].endswith("guests/silenced.cfg")}
    plain = {s["vulnerability"]["name"]: s for s in doc["statements"]
             if s["products"][0]["@id"].endswith("guests/adv.cfg")}
    assert sorted(silenced) == sorted(plain)
    for cve, note in (("CVE-2014-5146", NOTE_97), ("CVE-2022-33746", NOTE_410)):
        assert silenced[cve]["status"] == plain[cve]["status"] == "affected"
        assert silenced[cve]["action_statement"] == plain[cve]["action_statement"]
        assert silenced[cve]["status_notes"] == (
            plain[cve]["status_notes"].replace("guests/adv.cfg", "guests/silenced.cfg")
            .replace('"adv"', '"silenced"') + f"; suppressed by the operator: {note}")
    # the other paging mode's CVE and the advisories left alone: no mark
    for cve in ("CVE-2014-5149", "CVE-2020-25601", "CVE-2026-42493"):
        assert "suppressed" not in silenced[cve]["status_notes"]
    assert not any("suppressed" in s["status_notes"] for s in plain.values())


def test_statements_of_a_shared_advisory_are_each_guests_own() -> None:
    """Guests of one shape share their advisory findings, whose statements are encoded once
    with stand-ins for the guest's products and notes: each guest still gets its own, even
    with names that hold backslashes, quotes or the stand-in's text itself."""
    from xenvmmu.audit.findings import AdvisoryFinding

    adv = AdvisoryFinding(id="XSA-344", cves=("CVE-2020-25601",), verdict="affected",
                          worst_case_ms=65.5, worst_case_ms_low=13.1,
                          operations=("evtchn_reset",), fixed=False,
                          mitigations=("Set max_event_channels = 1,023 or less.",))
    names = ["a", 'b "quoted" \\\\', "\\u0000xenvmmu-notes\\u0000"]
    findings = [replace(PV, name=n, source=SourceRef(f"/etc/xen/g{i}.cfg"), advisories=(adv,),
                        uuid=None)
                for i, n in enumerate(names)]
    doc = render(AuditReport(findings=tuple(findings)))
    stated = [s for s in doc["statements"] if s["vulnerability"]["name"] == "CVE-2020-25601"]
    assert [s["status"] for s in stated] == ["affected"] * 3
    assert [s["products"][0]["@id"] for s in stated] == [
        f"urn:xenvmmu:guest:path:/etc/xen/g{i}.cfg" for i in range(3)]
    for s, n in zip(stated, names, strict=True):
        assert s["status_notes"].startswith(f'guest "{n}" read from /etc/xen/')
        assert s["action_statement"] == "Set max_event_channels = 1,023 or less."
