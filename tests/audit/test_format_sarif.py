"""``--format sarif``: validates against the OASIS SARIF 2.1.0 schema in ../shared/schemas."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from xenvmmu.advisories import registry
from xenvmmu.audit.findings import AuditReport, OpStall, SourceRef
from xenvmmu.audit.format import SarifFormatter, write_atomic
from xenvmmu.audit.format.sarif import artifact_uri

from .test_format_base import (
    ADV,
    BIG_HAP,
    NOTE_97,
    NOTE_410,
    PV,
    SHADOW,
    SMALL,
    TEARDOWN_410,
    UNBOUNDED,
    XM,
    advisory_report,
    sample_report,
    suppressed_report,
)


@pytest.fixture(scope="module")
def validator(shared_dir: Path) -> jsonschema.protocols.Validator:
    schema = json.loads((shared_dir / "schemas" / "sarif-schema-2.1.0.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft4Validator  # the schema declares draft-04
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


#: the advisories of the registry other than XSA-97, each with its own rule
OTHERS = [a for a in registry() if a.id != "XSA-97"]


def render(report: AuditReport) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SarifFormatter().render(report))
    return data


def rule_index(doc: dict[str, Any], rule_id: str) -> int:
    ids = [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]]
    return ids.index(rule_id)


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
        ("RELATED-OPERATION", ["security", "XSA-97"]),
    ] + [(a.id, ["security", a.id, *a.cves, a.impact]) for a in OTHERS]  # then a rule each
    assert driver["informationUri"].startswith("https://")
    assert driver["rules"][0]["helpUri"] == "https://xenbits.xen.org/xsa/advisory-97.html"
    assert driver["rules"][rule_index(doc, "XSA-410")]["helpUri"] == (
        "https://xenbits.xen.org/xsa/advisory-410.html")
    for rule in driver["rules"]:  # a rule per kind of finding, each with its help text
        assert rule["help"]["text"].startswith(rule["fullDescription"]["text"])
        assert rule["shortDescription"]["text"] and rule["name"]
    assert run["properties"]["budgetMs"] == 30.0
    assert run["properties"]["host"]["xen_version"] == "4.4.0"


def test_one_result_per_affected_or_unknown_guest() -> None:
    doc = render(sample_report())
    results = doc["runs"][0]["results"]
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
        # big-hap's teardown: 40 ms, not preempted, over the budget: a related finding, under
        # the rule of XSA-410 (which covers teardown) since big-hap has no XSA-410 finding
        ("XSA-410", rule_index(doc, "XSA-410"), "fail", "warning", "guests/big-hap.cfg",
         {"startLine": 4}),
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
        ("XSA-410", "error", "critical"),  # longest first; XSA-410's rule covers teardown
        ("RELATED-OPERATION", "warning", "medium"),
    ]


# --- the advisories of the registry -----------------------------------------------------------


def test_a_rule_per_registry_advisory(validator: jsonschema.protocols.Validator) -> None:
    doc = render(sample_report())
    validator.validate(doc)
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert len(rules) == len(doc["runs"][0]["tool"]["driver"]["rules"])  # ids unique
    for a in OTHERS:
        rule = rules[a.id]
        assert rule["helpUri"] == f"https://xenbits.xen.org/xsa/advisory-{a.id[4:]}.html"
        assert rule["properties"]["tags"] == ["security", a.id, *a.cves, a.impact]
        assert a.title in rule["shortDescription"]["text"]
        assert rule["fullDescription"]["text"].startswith(f"{a.id} (")
        assert rule["name"].isalnum() and rule["name"][0].isupper()
    assert "XSA-410-TEARDOWN" not in rules  # the teardown is the XSA-410 rule's now


def _results(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(r["properties"]["guest"], r["ruleId"], r["kind"], r["level"])
            for r in doc["runs"][0]["results"]]


def test_a_result_per_affected_or_unknown_advisory(
    validator: jsonschema.protocols.Validator,
) -> None:
    doc = render(advisory_report())
    validator.validate(doc)
    check_sarif_rules(doc)
    assert _results(doc) == [
        ("adv", "XSA-97-HAP", "fail", "error"),
        ("adv", "XSA-344", "fail", "error"),  # unbounded: high
        ("adv", "XSA-410", "fail", "error"),  # its teardown is this result, not a second one
        ("adv", "XSA-495", "review", "none"),  # unknown: §3.27.10
        ("uaf", "XSA-410", "fail", "error"),  # integrity, no figure
        (None, "XSA-97-UNKNOWN", "review", "none"),
    ]  # quiet: within the budget, no result; uaf's XSA-344 is fixed
    _, unbounded, teardown, unknown, uaf, _ = doc["runs"][0]["results"]
    assert unbounded["locations"][0]["physicalLocation"] == {  # the advisory's own setting
        "artifactLocation": {"uri": "guests/adv.cfg"}, "region": {"startLine": 9}}
    assert teardown["locations"][0]["physicalLocation"]["region"] == {"startLine": 4}
    assert unbounded["properties"] == {
        "guest": "adv", "advisory": "XSA-344", "cves": ["CVE-2020-25601"],
        "verdict": "affected", "severity": "high", "impact": "availability",
        "worstCaseMs": None, "worstCaseMsLow": None, "unbounded": True,
        "figure": "unbounded", "fixed": False, "budgetMs": 30.0,
        "operations": ["evtchn_reset"], "mitigations": list(UNBOUNDED.mitigations),
        "reasons": list(UNBOUNDED.reasons), "xenVersion": "4.4.0",
        "tags": ["security", "XSA-344", "CVE-2020-25601", "availability"],
    }
    assert "no bound once triggered" in unbounded["message"]["text"]
    assert "Fix: Set max_event_channels = 1023 or less." in unbounded["message"]["text"]
    assert (teardown["properties"]["worstCaseMs"], teardown["properties"]["worstCaseMsLow"]) == (
        380.0, 40.0)
    assert unknown["message"]["text"].endswith(
        "could not be assessed: shadow pool size unknown: shadow_memory not given.")
    assert uaf["properties"]["impact"] == "integrity" and "integrity" in uaf["properties"]["tags"]
    assert "memory corruption" in uaf["message"]["text"]
    assert {r["ruleIndex"] for r in doc["runs"][0]["results"]} <= set(
        range(len(doc["runs"][0]["tool"]["driver"]["rules"])))


def test_narrowed_to_other_advisories_has_no_xsa97(
    validator: jsonschema.protocols.Validator,
) -> None:
    doc = render(advisory_report(("XSA-344", "XSA-495")))
    validator.validate(doc)
    check_sarif_rules(doc)
    (run,) = doc["runs"]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["XSA-344", "XSA-495"]
    assert run["properties"]["advisories"] == ["XSA-344", "XSA-495"]
    assert _results(doc) == [
        ("adv", "XSA-344", "fail", "error"),
        ("adv", "XSA-495", "review", "none"),
        # the xm guest could not be assessed at all: unknown for each reported advisory
        (None, "XSA-344", "review", "none"),
        (None, "XSA-495", "review", "none"),
    ]
    xm = run["results"][2]
    assert "could not be assessed: xm configuration written in Python" in xm["message"]["text"]
    assert "XSA-97" not in json.dumps(doc)


def test_related_operations_follow_the_reported_advisories(
    validator: jsonschema.protocols.Validator,
) -> None:
    resize = OpStall("set_allocation", ("toolstack",), False, 50.0, related=True)
    guest = replace(BIG_HAP, ops=(*BIG_HAP.ops, resize))  # a teardown (XSA-410) and a resize

    def ids(advisories: tuple[str, ...]) -> list[str]:
        doc = render(AuditReport(findings=(guest,), advisories=advisories))
        validator.validate(doc)
        check_sarif_rules(doc)
        return [r["ruleId"] for r in doc["runs"][0]["results"]]

    assert ids(()) == ["XSA-97-HAP", "RELATED-OPERATION", "XSA-410"]  # longest first
    assert ids(("XSA-97",)) == ["XSA-97-HAP", "RELATED-OPERATION"]  # XSA-410 is left out
    assert ids(("XSA-410",)) == ["XSA-410"]  # the resize is XSA-97's class alone
    assert ids(("XSA-344",)) == []
    # the guest's own XSA-410 finding is the one result for its teardown
    covered = replace(guest, advisories=(TEARDOWN_410,))
    doc = render(AuditReport(findings=(covered,)))
    assert [r["ruleId"] for r in doc["runs"][0]["results"]] == [
        "XSA-97-HAP", "XSA-410", "RELATED-OPERATION"]
    assert "operation" not in doc["runs"][0]["results"][1]["properties"]


def test_advisory_fingerprints_unique_and_stable(
    validator: jsonschema.protocols.Validator,
) -> None:
    twin = replace(ADV, source=SourceRef("list.json"), name=None)
    doc = render(AuditReport(findings=(twin, twin, ADV)))
    validator.validate(doc)
    check_sarif_rules(doc)  # unique fingerprints, the twins' included
    alone = render(AuditReport(findings=(ADV,)))["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in alone] == [
        r["partialFingerprints"] for r in doc["runs"][0]["results"][-len(alone):]]


# --- suppressed findings (--suppress) ---------------------------------------------------------


def test_suppressed_results_carry_an_accepted_external_suppression(
    validator: jsonschema.protocols.Validator,
) -> None:
    doc = render(suppressed_report())
    validator.validate(doc)
    results = doc["runs"][0]["results"]
    mine = {r["ruleId"]: r for r in results if r["properties"]["guest"] == "silenced"}
    assert sorted(mine) == ["XSA-344", "XSA-410", "XSA-495", "XSA-97-HAP"]  # still results
    assert mine["XSA-97-HAP"]["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": NOTE_97}]
    assert mine["XSA-410"]["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": NOTE_410}]
    assert mine["XSA-410"]["kind"] == "fail" and mine["XSA-410"]["level"] == "error"
    for rule in ("XSA-344", "XSA-495"):
        assert "suppressions" not in mine[rule]
    # the same guest unsuppressed (ADV) has none; nothing else changes
    others = [r for r in results if r["properties"]["guest"] != "silenced"]
    assert others == render(advisory_report())["runs"][0]["results"]
    assert not any("suppressions" in r for r in others)
    # a wrong suppression is caught by the schema
    mine["XSA-410"]["suppressions"][0]["status"] = "silenced"
    assert not validator.is_valid(doc)


def test_suppressed_results_of_a_narrowed_run(validator: jsonschema.protocols.Validator) -> None:
    doc = render(suppressed_report(("XSA-410",)))
    validator.validate(doc)
    results = [r for r in doc["runs"][0]["results"] if r["properties"]["guest"] == "silenced"]
    assert [(r["ruleId"], r["suppressions"][0]["justification"]) for r in results] == [
        ("XSA-410", NOTE_410)]
