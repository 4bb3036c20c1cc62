"""``--format json``: validates against audit-1.schema.json, carries every fact, round-trips."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from xenvmmu.advisories import registry
from xenvmmu.audit.findings import (
    AuditReport,
    Finding,
    InputError,
    Mitigation,
    OpStall,
    SourceRef,
)
from xenvmmu.audit.format import JsonFormatter, write_atomic
from xenvmmu.audit.format.jsonfmt import SCHEMA_ID, load_schema

from .test_format_base import (
    BIG_HAP,
    ERROR,
    NARROWED,
    NOTE_97,
    NOTE_410,
    PV,
    SHADOW,
    SILENCED,
    WEIRD,
    WEIRD_NAME,
    XM,
    advisory_report,
    sample_report,
    suppressed_report,
)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def render(report: AuditReport) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(JsonFormatter().render(report))
    return data


def test_validates(validator: jsonschema.Draft202012Validator) -> None:
    validator.validate(render(sample_report()))
    validator.validate(render(AuditReport(findings=())))


def test_schema_rejects_drift(validator: jsonschema.Draft202012Validator) -> None:
    doc = render(sample_report())
    doc["guests"][0]["verdict"] = "exposed"
    assert not validator.is_valid(doc)
    doc = render(sample_report())
    del doc["guests"][3]["name"]  # null, never missing
    assert not validator.is_valid(doc)
    doc = render(sample_report())
    doc["guests"][0]["extra"] = 1
    assert not validator.is_valid(doc)


def test_top_level() -> None:
    doc = render(sample_report())
    assert list(doc) == ["schema", "tool", "budget_ms", "advisories_reported", "host", "guests",
                         "errors", "summary"]
    assert doc["advisories_reported"] == [a.id for a in registry()]  # every one: not narrowed
    assert doc["schema"] == SCHEMA_ID == "xenvmmu.audit/1"
    assert doc["tool"] == {"name": "xenvmmu", "version": "0.1.0"}
    assert doc["budget_ms"] == 30.0
    assert doc["host"] == {
        "arch": "x86_64",
        "hap_capable": True,
        "nr_cpus": 16,
        "xen_commandline": "placeholder dom0_mem=4096M",
        "xen_version": "4.4.0",
    }
    assert doc["errors"] == [
        {"source": "guests/broken.cfg", "line": 3, "message": ERROR.message}
    ]
    assert doc["summary"] == {
        "guests": 6, "affected": 2, "not_affected": 3, "unknown": 1, "errors": 1,
        "advisories": {},  # the sample guests carry no advisory finding
        "suppressed": {"guests": 0, "advisories": {}},
    }
    assert [g["name"] for g in doc["guests"]] == [
        "big-hap", "shadow-db", "pv-web", None, WEIRD_NAME, "small",
    ]


def test_affected_hap_guest_whole() -> None:
    assert render(sample_report())["guests"][0] == {
        "source": "guests/big-hap.cfg",
        "line": 4,
        "decisive": {"path": "guests/big-hap.cfg", "line": 4, "key": "memory"},
        "name": "big-hap",
        "type": "hvm",
        "paging": "hap",
        "memory_mib": 65536,
        "maxmem_mib": 65536,
        "vcpus": 8,
        "pool_kib": 532480,
        "xen_version": "4.4.0",
        "xsa97_fixed": False,
        "cve": "CVE-2014-5146",
        "worst_case_ms": 1234.5,
        "worst_case_ms_low": None,
        "verdict": "affected",
        "severity": "high",
        "reasons": list(BIG_HAP.reasons),
        "mitigations": [
            {"action": "upgrade", "text": "Upgrade Xen to 4.4.1 or later."},
            {"action": "shrink", "text": "Give the guest at most 1536 MiB."},
        ],
        "operations": [
            {"op": "logdirty_clean", "trigger": "toolstack", "started_by": ["toolstack"],
             "sized_by": ["guest", "device_model"], "preemptible": False,
             "worst_case_ms": 1234.5, "worst_case_ms_low": 0.0, "related": False,
             "residual": False, "reference": "XSA-97"},
            {"op": "teardown_relinquish", "trigger": "toolstack", "started_by": ["toolstack"],
             "sized_by": [], "preemptible": False, "worst_case_ms": 40.0,
             "worst_case_ms_low": 0.0, "related": True, "residual": False,
             "reference": "2015 pool teardown fix"},
        ],
        "paging_reasons": ["hap not set in the config; the host supports HAP"],
        "uuid": None,
        "advisories": [],
        "suppressed": None,
    }


def test_lines_and_nulls() -> None:
    guests = render(sample_report())["guests"]
    shadow, pv, xm = guests[1], guests[2], guests[3]
    assert (shadow["line"], shadow["decisive"]["key"], shadow["paging"]) == (7, "hap", "shadow")
    assert (pv["line"], pv["decisive"], pv["paging"], pv["pool_kib"]) == (None, None, None, None)
    assert (xm["line"], xm["verdict"], xm["type"], xm["worst_case_ms"]) == (
        3, "unknown", None, None,
    )


def test_decisive_setting_in_another_file() -> None:
    elsewhere = replace(SHADOW, decisive=SourceRef("host/xl-info.txt", 20, "hap"))
    guest = render(AuditReport(findings=(elsewhere,)))["guests"][0]
    assert guest["line"] == 1  # the guest's own line, not line 20 of another file
    assert guest["decisive"] == {"path": "host/xl-info.txt", "line": 20, "key": "hap"}


def test_text_conventions() -> None:
    text = JsonFormatter().render(sample_report())
    assert text.isascii()
    assert '"name": "we\\"ird\\nname\\\\\\u00fc-\\u65e5\\u672c"' in text
    assert text.startswith('{\n  "schema": "xenvmmu.audit/1",\n  "tool": {\n    "name"')
    assert text.endswith("}\n") and not text.endswith("\n\n")
    # deterministic, and re-serialising the parsed document gives the same bytes
    assert JsonFormatter().render(sample_report()) == text
    assert json.dumps(json.loads(text), indent=2) + "\n" == text


def test_round_trip_to_findings() -> None:
    """Every Finding field can be read back (the source's own line comes back through
    ``line`` when there is no decisive setting in the file)."""
    doc = render(sample_report())

    def back(g: dict[str, Any]) -> Finding:
        d = g["decisive"]
        return Finding(
            source=SourceRef(g["source"], None if d else g["line"]),
            name=g["name"],
            guest_type=g["type"],
            paging=g["paging"],
            memory_mib=g["memory_mib"],
            maxmem_mib=g["maxmem_mib"],
            vcpus=g["vcpus"],
            pool_kib=g["pool_kib"],
            xen_version=g["xen_version"],
            xsa97_fixed=g["xsa97_fixed"],
            cve=g["cve"],
            worst_case_ms=g["worst_case_ms"],
            verdict=g["verdict"],
            severity=g["severity"],
            reasons=tuple(g["reasons"]),
            mitigations=tuple(Mitigation(**m) for m in g["mitigations"]),
            ops=tuple(_op_back(o) for o in g["operations"]),
            paging_reasons=tuple(g["paging_reasons"]),
            decisive=None if d is None else SourceRef(d["path"], d["line"], d["key"]),
            uuid=g["uuid"],
        )

    def _op_back(o: dict) -> OpStall:  # type: ignore[type-arg]
        assert o.pop("trigger") == ", ".join(o["started_by"])
        return OpStall(**{**o, "started_by": tuple(o["started_by"]),
                          "sized_by": tuple(o["sized_by"])})

    rebuilt = [back(g) for g in doc["guests"]]
    # SHADOW is the one sample with both its own line and a decisive line
    assert rebuilt == [BIG_HAP, replace(SHADOW, source=SourceRef(SHADOW.source.path)), PV, XM,
                       WEIRD, sample_report().findings[5]]
    assert [InputError(e["source"], e["line"], e["message"]) for e in doc["errors"]] == [ERROR]


def test_non_finite_numbers_become_null(validator: jsonschema.Draft202012Validator) -> None:
    report = AuditReport(findings=(replace(BIG_HAP, worst_case_ms=float("inf")),))
    doc = render(report)
    validator.validate(doc)
    assert doc["guests"][0]["worst_case_ms"] is None


def test_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    write_atomic(out, JsonFormatter().render(sample_report()))
    assert json.loads(out.read_text(encoding="utf-8")) == render(sample_report())
    assert [p.name for p in tmp_path.iterdir()] == ["audit.json"]


# --- the advisories of the registry -----------------------------------------------------------


def test_advisory_entries_carry_every_field(validator: jsonschema.Draft202012Validator) -> None:
    doc = render(advisory_report())
    validator.validate(doc)
    adv = doc["guests"][0]
    assert [a["id"] for a in adv["advisories"]] == ["XSA-97", "XSA-344", "XSA-410", "XSA-495"]
    assert adv["advisories"][1] == {
        "id": "XSA-344", "cves": ["CVE-2020-25601"], "verdict": "affected",
        "worst_case_ms": None, "worst_case_ms_low": None, "operations": ["evtchn_reset"],
        "fixed": False, "reasons": ["every port is reset in one loop without a preemption point"],
        "mitigations": ["Set max_event_channels = 1023 or less.",
                        "Upgrade Xen to 4.13.2 or later (XSA-344 fixed)."],
        "title": "Lack of preemption in evtchn_reset() / evtchn_destroy()",
        "impact": "availability", "severity": "high", "unbounded": True,
        "decisive": {"path": "guests/adv.cfg", "line": 9, "key": "max_event_channels"},
        "url": "https://xenbits.xen.org/xsa/advisory-344.html",
        "suppressed": None,
    }
    integrity = doc["guests"][1]["advisories"][1]
    assert (integrity["impact"], integrity["decisive"], integrity["unbounded"]) == (
        "integrity", None, False)
    assert doc["summary"]["advisories"] == {
        "XSA-97": {"affected": 1, "not_affected": 0, "unknown": 0},
        "XSA-344": {"affected": 1, "not_affected": 2, "unknown": 0},
        "XSA-410": {"affected": 2, "not_affected": 0, "unknown": 0},
        "XSA-495": {"affected": 0, "not_affected": 0, "unknown": 1},
    }
    bad = render(advisory_report())
    bad["guests"][0]["advisories"][1]["impact"] = "confidentiality"
    assert not validator.is_valid(bad)


def test_narrowed_document(validator: jsonschema.Draft202012Validator) -> None:
    doc = render(advisory_report(NARROWED))
    validator.validate(doc)
    assert doc["advisories_reported"] == ["XSA-344"]
    assert doc["summary"] == {"guests": 4, "affected": 1, "not_affected": 2, "unknown": 1,
                              "errors": 0,
                              "advisories": {"XSA-344": {"affected": 1, "not_affected": 2,
                                                         "unknown": 0}},
                              "suppressed": {"guests": 0, "advisories": {"XSA-344": 0}}}
    adv = doc["guests"][0]
    assert {k: adv[k] for k in ("line", "decisive", "xsa97_fixed", "cve", "worst_case_ms",
                                "verdict", "severity", "mitigations", "operations")} == {
        "line": 9,
        "decisive": {"path": "guests/adv.cfg", "line": 9, "key": "max_event_channels"},
        "xsa97_fixed": None, "cve": None, "worst_case_ms": None,  # unbounded
        "verdict": "affected", "severity": "high", "mitigations": [],
        "operations": [],  # logdirty_clean is XSA-97's, the teardown XSA-410's and XSA-495's
    }
    assert [a["id"] for a in adv["advisories"]] == ["XSA-344"]
    xm = doc["guests"][3]
    assert (xm["verdict"], xm["reasons"]) == ("unknown", list(XM.reasons))
    # the teardown stays when its advisory is reported
    teardown = render(advisory_report(("XSA-410",)))["guests"][0]["operations"]
    assert [o["op"] for o in teardown] == ["teardown_relinquish"]


def test_document_is_what_write_gives() -> None:
    report = advisory_report(("XSA-344", "XSA-410"))
    assert JsonFormatter().document(report) == render(report)


def test_advisories_of_a_shape_name_each_guests_own_file() -> None:
    """Guests of one shape share their advisory findings, whose deciding setting names the
    guest's own file as ``""``; each guest's JSON has its own path there, escaped like any
    other string (quotes, backslashes, non-ASCII)."""
    from xenvmmu.audit.findings import AdvisoryFinding, AuditStream

    adv = AdvisoryFinding(id="XSA-344", cves=("CVE-2020-25601",), verdict="affected",
                          worst_case_ms=65.5, worst_case_ms_low=13.1, operations=("evtchn_reset",),
                          fixed=False, decisive=SourceRef("", 6, "max_event_channels"))
    shared = (adv,)
    paths = ['/etc/xen/a.cfg', '/etc/xen/"quoted"\\b.cfg', "/etc/xen/\u00e9t\u00e9.cfg"]
    findings = [replace(PV, name=f"g{i}", source=SourceRef(p), advisories=shared)
                for i, p in enumerate(paths)]
    report = AuditReport(findings=tuple(findings))
    doc = render(report)
    assert [g["advisories"][0]["decisive"]["path"] for g in doc["guests"]] == paths
    assert JsonFormatter().document(report) == doc
    import io
    out = io.StringIO()
    JsonFormatter().write(AuditStream.of(report), out)
    assert json.loads(out.getvalue()) == doc


# --- suppressed findings (--suppress) ---------------------------------------------------------


def test_suppressed_fields_and_counts(validator: jsonschema.Draft202012Validator) -> None:
    doc = render(suppressed_report())
    validator.validate(doc)
    silenced, adv = doc["guests"][0], doc["guests"][1]
    assert silenced["name"] == "silenced" and adv["name"] == "adv"
    assert (silenced["suppressed"], adv["suppressed"]) == (NOTE_97, None)
    assert silenced["verdict"] == adv["verdict"] == "affected"  # the verdict stays
    assert [(a["id"], a["verdict"], a["suppressed"]) for a in silenced["advisories"]] == [
        ("XSA-97", "affected", NOTE_97), ("XSA-344", "affected", None),
        ("XSA-410", "affected", NOTE_410), ("XSA-495", "unknown", None)]
    assert all(a["suppressed"] is None for a in adv["advisories"])
    summary = doc["summary"]
    assert summary["affected"] == 2  # counted by verdict, suppressed or not
    assert summary["advisories"]["XSA-410"] == {"affected": 3, "not_affected": 0, "unknown": 0}
    assert summary["suppressed"] == {
        "guests": 1, "advisories": {"XSA-97": 1, "XSA-344": 0, "XSA-410": 1, "XSA-495": 0}}
    # the schema knows the fields: a number there is refused
    doc["guests"][0]["advisories"][2]["suppressed"] = 1
    assert not validator.is_valid(doc)


def test_suppressed_in_a_narrowed_run_is_the_headline_advisory_s(
    validator: jsonschema.Draft202012Validator,
) -> None:
    doc = render(suppressed_report(("XSA-410",)))
    validator.validate(doc)
    silenced = doc["guests"][0]
    assert (silenced["verdict"], silenced["suppressed"]) == ("affected", NOTE_410)
    assert doc["summary"]["suppressed"] == {"guests": 1, "advisories": {"XSA-410": 1}}
    # a guest whose only suppressed finding is not reported has none
    doc = render(suppressed_report(("XSA-344",)))
    assert doc["guests"][0]["suppressed"] is None
    assert doc["summary"]["suppressed"] == {"guests": 0, "advisories": {"XSA-344": 0}}
    assert SILENCED.suppressed == NOTE_97
