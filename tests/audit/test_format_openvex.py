"""``--format openvex``: validates against the OpenVEX v0.2.0 schema in ../shared/schemas."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from xenvmmu.audit.findings import AuditReport
from xenvmmu.audit.format import OpenVexFormatter, write_atomic
from xenvmmu.audit.format.openvex import timestamp_text

from .test_format_base import BIG_HAP, SMALL, WEIRD, sample_report

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
    assert rows == [
        ("xenvmmu:guest/big-hap", "CVE-2014-5146", "affected", None),
        ("xenvmmu:guest/shadow-db", "CVE-2014-5149", "affected", None),
        ("xenvmmu:guest/pv-web", "CVE-2014-5146", "not_affected",
         "vulnerable_code_not_in_execute_path"),
        # paging unknown: either CVE may apply
        ("xenvmmu:guest/legacy%2Fxm-guest.cfg", "CVE-2014-5146", "under_investigation", None),
        ("xenvmmu:guest/legacy%2Fxm-guest.cfg", "CVE-2014-5149", "under_investigation", None),
        ("xenvmmu:guest/we%22ird%0Aname%5C%C3%BC-%E6%97%A5%E6%9C%AC", "CVE-2014-5146",
         "not_affected", "vulnerable_code_not_present"),
        ("xenvmmu:guest/small", "CVE-2014-5146", "not_affected",
         "inline_mitigations_already_exist"),
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
                "@id": "xenvmmu:guest/big-hap",
                "subcomponents": [
                    {"identifiers": {"cpe23": "cpe:2.3:o:xen:xen:4.4.0:*:*:*:*:*:*:*"}}
                ],
            }
        ],
        "status": "affected",
        "action_statement": "Upgrade Xen to 4.4.1 or later.",
        "status_notes": (
            "guest read from guests/big-hap.cfg; worst-case non-preemptible section 1234 ms, "
            "budget 30 ms"
        ),
    }


def test_not_affected_statements_explain() -> None:
    statements = render(sample_report())["statements"]
    assert statements[2]["impact_statement"] == "PV guests have no HAP or shadow paging"
    assert statements[6]["impact_statement"] == (
        "the longest non-preemptible section, 9.5 ms, is within the budget; "
        "worst-case non-preemptible section 9.50 ms, budget 30 ms"
    )
    assert statements[3]["status_notes"] == (
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
        [{"@id": "xenvmmu:guest/small"}],
        [{"@id": "xenvmmu:guest/we%22ird%0Aname%5C%C3%BC-%E6%97%A5%E6%9C%AC"}],
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
