"""``--format sarif``: validates against the OASIS SARIF 2.1.0 schema in ../shared/schemas."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from xenvmmu.audit.findings import AuditReport, OpStall, SourceRef
from xenvmmu.audit.format import SarifFormatter, write_atomic
from xenvmmu.audit.format.sarif import artifact_uri

from .test_format_base import BIG_HAP, PV, SHADOW, SMALL, XM, sample_report


@pytest.fixture(scope="module")
def validator(shared_dir: Path) -> jsonschema.protocols.Validator:
    schema = json.loads((shared_dir / "schemas" / "sarif-schema-2.1.0.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft4Validator  # the schema declares draft-04
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def render(report: AuditReport) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SarifFormatter().render(report))
    return data


def test_validates(validator: jsonschema.protocols.Validator) -> None:
    validator.validate(render(sample_report()))
    validator.validate(render(AuditReport(findings=())))


def test_validator_catches_a_bad_level(validator: jsonschema.protocols.Validator) -> None:
    doc = render(sample_report())
    doc["runs"][0]["results"][0]["level"] = "critical"
    assert not validator.is_valid(doc)


def test_run_and_rules() -> None:
    doc = render(sample_report())
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("/sarif-schema-2.1.0.json")
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("xenvmmu", "0.1.0")
    assert [(r["id"], r["properties"]["tags"]) for r in driver["rules"]] == [
        ("XSA-97-HAP", ["security", "XSA-97", "CVE-2014-5146"]),
        ("XSA-97-SHADOW", ["security", "XSA-97", "CVE-2014-5149"]),
        ("XSA-97-UNKNOWN", ["security", "XSA-97"]),
        ("HAP-TYPE-SWEEP-RESIDUAL", ["security", "XSA-97"]),
        ("XSA-410-TEARDOWN", ["security", "XSA-410", "CVE-2022-33746"]),
        ("RELATED-OPERATION", ["security", "XSA-97"]),
    ]
    assert driver["informationUri"].startswith("https://")
    assert driver["rules"][0]["helpUri"] == "https://xenbits.xen.org/xsa/advisory-97.html"
    assert driver["rules"][4]["helpUri"] == "https://xenbits.xen.org/xsa/advisory-410.html"
    for rule in driver["rules"]:  # a rule per kind of finding, each with its help text
        assert rule["help"]["text"].startswith(rule["fullDescription"]["text"])
        assert rule["shortDescription"]["text"] and rule["name"]
    assert run["properties"]["budgetMs"] == 30.0
    assert run["properties"]["host"]["xen_version"] == "4.4.0"


def test_one_result_per_affected_or_unknown_guest() -> None:
    results = render(sample_report())["runs"][0]["results"]
    summary = [
        (
            r["ruleId"],
            r["ruleIndex"],
            r["kind"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"].get("region"),
        )
        for r in results
    ]
    assert summary == [
        ("XSA-97-HAP", 0, "fail", "error", "guests/big-hap.cfg", {"startLine": 4}),
        # big-hap's teardown: 40 ms, not preempted, over the budget: a related finding
        ("XSA-410-TEARDOWN", 4, "fail", "warning", "guests/big-hap.cfg", {"startLine": 4}),
        ("XSA-97-SHADOW", 1, "fail", "warning", "guests/shadow-db.cfg", {"startLine": 7}),
        # §3.27.10: kind other than "fail" => level "none"
        ("XSA-97-UNKNOWN", 2, "review", "none", "legacy/xm-guest.cfg", {"startLine": 3}),
    ]


def test_messages_and_properties() -> None:
    big, teardown, shadow, xm = render(sample_report())["runs"][0]["results"]
    assert big["message"]["text"] == (
        "Guest 'big-hap' (hap paging, Xen 4.4.0) can hold a physical CPU for up to 1234 ms "
        "without preemption (budget 30 ms). Fix: Upgrade Xen to 4.4.1 or later."
    )
    assert shadow["message"]["text"] == (
        "Guest 'shadow-db' (shadow paging, Xen 4.4.0) can hold a physical CPU for up to "
        "87.2 ms without preemption (budget 30 ms). Fix: Remove hap=0 so the guest uses HAP."
    )
    assert xm["message"]["text"] == (
        "Guest 'xm-guest.cfg' could not be assessed for XSA-97: xm configuration written in "
        "Python (line 3); not executed. Suggested: Rewrite the configuration in xl.cfg syntax."
    )
    assert big["properties"] == {
        "guest": "big-hap",
        "verdict": "affected",
        "severity": "high",
        "cve": "CVE-2014-5146",
        "paging": "hap",
        "xenVersion": "4.4.0",
        "xsa97Fixed": False,
        "worstCaseMs": 1234.5,
        "budgetMs": 30.0,
        "memoryMib": 65536,
        "maxmemMib": 65536,
        "poolKib": 532480,
        "vcpus": 8,
        "mitigation": "upgrade",
        "tags": ["security", "XSA-97", "CVE-2014-5146"],
    }
    assert xm["properties"]["guest"] is None and xm["properties"]["cve"] is None
    assert teardown["message"]["text"] == (
        "Guest 'big-hap' (hap paging, Xen 4.4.0): teardown_relinquish can hold a physical CPU "
        "for up to 40.0 ms without preemption (budget 30 ms); started by the toolstack. "
        "Outside the XSA-97 verdict. Reference: 2015 pool teardown fix."
    )
    assert teardown["properties"]["operation"] == "teardown_relinquish"
    assert teardown["properties"]["severity"] == "medium"
    results = (big, teardown, shadow, xm)
    fingerprints = {r["partialFingerprints"]["xenvmmuGuest/v1"] for r in results}
    assert len(fingerprints) == 4 and all(len(f) == 64 for f in fingerprints)


@pytest.mark.parametrize(
    ("severity", "level"),
    [("critical", "error"), ("high", "error"), ("medium", "warning"), ("low", "note")],
)
def test_level_follows_severity(severity: str, level: str) -> None:
    finding = replace(BIG_HAP, severity=severity, ops=())  # type: ignore[arg-type]
    (result,) = render(AuditReport(findings=(finding,)))["runs"][0]["results"]
    assert result["level"] == level


def test_falls_back_to_the_guest_line_and_omits_unknown_lines() -> None:
    no_decisive = replace(SHADOW, decisive=None)
    no_line = replace(BIG_HAP, decisive=None, ops=())
    results = render(AuditReport(findings=(no_decisive, no_line)))["runs"][0]["results"]
    assert results[0]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "guests/shadow-db.cfg"},
        "region": {"startLine": 1},
    }
    assert results[1]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "guests/big-hap.cfg"},
    }


def test_decisive_setting_in_another_file(validator: jsonschema.protocols.Validator) -> None:
    finding = replace(SHADOW, decisive=SourceRef("host/xl info.txt", 20, "hap"))
    doc = render(AuditReport(findings=(finding,)))
    validator.validate(doc)
    (result,) = doc["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "host/xl%20info.txt"},
        "region": {"startLine": 20},
    }
    assert result["relatedLocations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "guests/shadow-db.cfg"},
                "region": {"startLine": 1},
            },
            "id": 1,
            "message": {"text": "guest configuration"},
        }
    ]


def test_input_errors_are_tool_notifications() -> None:
    (invocation,) = render(sample_report())["runs"][0]["invocations"]
    assert invocation == {
        "executionSuccessful": True,
        "toolExecutionNotifications": [
            {
                "level": "error",
                "message": {"text": "config parsing error near `=': syntax error"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": "guests/broken.cfg"},
                            "region": {"startLine": 3},
                        }
                    }
                ],
            }
        ],
    }


def test_uris() -> None:
    assert artifact_uri("guests/a.cfg") == "guests/a.cfg"
    assert artifact_uri("odd name#1.cfg") == "odd%20name%231.cfg"
    assert artifact_uri("/etc/xen/ü.cfg") == "file:///etc/xen/%C3%BC.cfg"


def test_unknown_guest_with_known_paging_uses_the_unknown_rule() -> None:
    finding = replace(XM, paging="hap", cve="CVE-2014-5146")
    (result,) = render(AuditReport(findings=(finding,)))["runs"][0]["results"]
    assert (result["ruleId"], result["level"], result["properties"]["cve"]) == (
        "XSA-97-UNKNOWN", "none", "CVE-2014-5146",
    )


def test_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "xenvmmu.sarif"
    text = SarifFormatter().render(sample_report())
    write_atomic(out, text)
    assert out.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["xenvmmu.sarif"]


# --- the spec's rules, checked on every result ------------------------------------------------


def check_sarif_rules(doc: dict[str, Any]) -> None:
    """SARIF 2.1.0 rules the schema does not express, as xenvmmu promises them."""
    (run,) = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["informationUri"]
    fingerprints = []
    for r in run["results"]:
        # §3.27.10: a kind other than "fail" requires level "none"
        if r["kind"] != "fail":
            assert r["level"] == "none", r
        else:
            assert r["level"] in ("error", "warning", "note")
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]  # §3.27.6-7
        for loc in r["locations"] + r.get("relatedLocations", []):
            region = loc["physicalLocation"].get("region")
            if region is not None:
                assert region["startLine"] >= 1  # §3.30.5
        fingerprints.append(r["partialFingerprints"]["xenvmmuGuest/v1"])
    assert len(fingerprints) == len(set(fingerprints))


def test_spec_rules_hold(validator: jsonschema.protocols.Validator) -> None:
    doc = render(sample_report())
    validator.validate(doc)
    check_sarif_rules(doc)


def test_regions_only_where_a_line_is_known() -> None:
    results = render(AuditReport(findings=(replace(BIG_HAP, ops=()), SHADOW, XM)))
    regions = [r["locations"][0]["physicalLocation"].get("region")
               for r in results["runs"][0]["results"]]
    assert regions == [{"startLine": 4}, {"startLine": 7}, {"startLine": 3}]
    lineless = replace(BIG_HAP, decisive=SourceRef("guests/big-hap.cfg", None, "memory"), ops=())
    (r,) = render(AuditReport(findings=(lineless,)))["runs"][0]["results"]
    assert "region" not in r["locations"][0]["physicalLocation"]


def test_fingerprints_stable_across_runs_and_unique_within_one(
    validator: jsonschema.protocols.Validator,
) -> None:
    first = render(sample_report())["runs"][0]["results"]
    again = render(sample_report())["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in first] == [r["partialFingerprints"] for r in again]
    # the fingerprint follows the guest, not its position in the run
    alone = render(AuditReport(findings=(SHADOW,)))["runs"][0]["results"]
    assert alone[0]["partialFingerprints"] == first[2]["partialFingerprints"]
    # two unnamed domains of one listing: same rule, path and name, yet distinct results
    twin = replace(XM, source=SourceRef("list.json"))
    doc = render(AuditReport(findings=(twin, twin, twin)))
    validator.validate(doc)
    check_sarif_rules(doc)


def test_related_finding_of_a_guest_that_is_not_affected(
    validator: jsonschema.protocols.Validator,
) -> None:
    teardown = OpStall("teardown_final", ("toolstack",), False, 6000.0, related=True,
                       reference="XSA-410 (CVE-2022-33746)")
    resize = OpStall("set_allocation", ("toolstack",), False, 50.0, related=True)
    guest = replace(SMALL, xsa97_fixed=True, ops=(resize, teardown))
    doc = render(AuditReport(findings=(guest, PV), host={"watchdog_timeout_s": 5}))
    validator.validate(doc)
    check_sarif_rules(doc)
    results = doc["runs"][0]["results"]
    assert [(r["ruleId"], r["level"], r["properties"]["severity"]) for r in results] == [
        ("XSA-410-TEARDOWN", "error", "critical"),  # longest first
        ("RELATED-OPERATION", "warning", "medium"),
    ]
