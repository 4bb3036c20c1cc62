"""``--format csv``: the documented columns, one row per guest, the same facts as JSON, and
names that can neither break a row nor become a spreadsheet formula."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from xenvmmu.audit.findings import AuditReport
from xenvmmu.audit.format import FORMATS, get_formatter
from xenvmmu.audit.format.csvfmt import COLUMNS, REASON_SEPARATOR, CsvFormatter
from xenvmmu.cli import main

from ..conftest import REPO
from .test_format_base import (
    BIG_HAP,
    NARROWED,
    PV,
    UNBOUNDED,
    WEIRD,
    WEIRD_NAME,
    XM,
    advisory_report,
    sample_report,
    suppressed_report,
)

HOST_440 = str(REPO / "examples" / "hosts" / "xen-4.4.0-intel.txt")
GUESTS = str(REPO / "examples" / "guests")


def _rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def test_registered() -> None:
    assert FORMATS["csv"] is CsvFormatter
    assert isinstance(get_formatter("csv"), CsvFormatter)


def test_columns_are_documented_in_order() -> None:
    import xenvmmu.audit.format.csvfmt as module

    doc = module.__doc__ or ""
    documented = [line.split()[0] for line in doc.splitlines()
                  if line and line.split()[0] in COLUMNS and not line.startswith(" ")]
    assert documented == list(COLUMNS)
    readme = (REPO / "README.md").read_text()
    assert all(f"`{column}`" in readme for column in COLUMNS)


def test_the_stable_columns_start_as_documented() -> None:
    # the order promised: new columns are only ever added at the end
    assert COLUMNS[:16] == (
        "source", "name", "type", "paging", "memory_mib", "maxmem_mib", "vcpus", "pool_kib",
        "xen_version", "xsa97_fixed", "cve", "worst_case_ms_low", "worst_case_ms", "verdict",
        "severity", "worst_operation")
    assert "first_mitigation" in COLUMNS


def test_empty_report_is_the_header() -> None:
    text = CsvFormatter().render(AuditReport(findings=()))
    assert text == ",".join(COLUMNS) + "\n"


def test_one_row_per_guest_one_line_each() -> None:
    report = sample_report()
    text = CsvFormatter().render(report)
    assert len(text.splitlines()) == 1 + len(report.findings)  # a name's newline is escaped
    rows = _rows(text)
    assert [r["verdict"] for r in rows] == [f.verdict for f in report.findings]
    big = rows[0]
    assert big["source"] == "guests/big-hap.cfg"
    assert big["name"] == "big-hap"
    assert big["worst_case_ms"] == "1234.5" and big["worst_case_ms_low"] == ""
    assert big["xsa97_fixed"] == "false"
    assert big["worst_operation"] == "logdirty_clean"  # the related teardown is not the verdict's
    assert big["worst_operation_ms"] == "1234.5" and big["residual"] == "false"
    assert big["first_mitigation"] == "upgrade"
    assert big["first_mitigation_text"] == BIG_HAP.mitigations[0].text
    assert big["mitigations"] == "upgrade shrink"
    assert (big["line"], big["decisive_key"]) == ("4", "memory")
    assert big["reasons"] == REASON_SEPARATOR.join(BIG_HAP.reasons)
    pv = rows[2]
    assert pv["paging"] == pv["pool_kib"] == pv["worst_operation"] == pv["cve"] == ""
    assert rows[3]["name"] == "" and rows[3]["line"] == str(XM.source.line)
    weird = rows[4]
    assert "\n" not in weird["name"] and weird["name"] == 'we"ird\\nname\\\\ü-日本'
    assert weird["name"] != WEIRD_NAME


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)"])
def test_formula_like_text_is_defused(name: str) -> None:
    text = CsvFormatter().render(AuditReport(findings=(replace(PV, name=name),)))
    assert _rows(text)[0]["name"] == "'" + name


def test_escape_sequences_never_reach_the_output() -> None:
    text = CsvFormatter().render(AuditReport(findings=(replace(WEIRD, name="a\x1b[2Jb\rc"),)))
    assert "\x1b" not in text and "\r" not in text
    assert _rows(text)[0]["name"] == "a\\x1b[2Jb\\rc"


def test_the_cli_writes_the_same_facts_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--host", HOST_440, "--format", "csv", GUESTS]) == 1
    rows = _rows(capsys.readouterr().out)
    assert main(["audit", "--host", HOST_440, "--format", "json", GUESTS]) == 1
    guests = json.loads(capsys.readouterr().out)["guests"]
    assert len(rows) == len(guests) == 7

    def text(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    same = ("source", "name", "type", "paging", "memory_mib", "maxmem_mib", "vcpus",
            "pool_kib", "xen_version", "xsa97_fixed", "cve", "worst_case_ms_low",
            "worst_case_ms", "verdict", "severity", "line")
    for row, guest in zip(rows, guests, strict=True):
        assert {k: row[k] for k in same} == {k: text(guest[k]) for k in same}
        fixes = guest["mitigations"]
        assert row["first_mitigation"] == (fixes[0]["action"] if fixes else "")
        verdict_ops = [o for o in guest["operations"] if not o["related"]]
        if verdict_ops:
            worst = max(verdict_ops, key=lambda o: o["worst_case_ms"])
            assert row["worst_operation"] == worst["op"]


def test_csv_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fleet.csv"
    assert main(["audit", "--host", HOST_440, "--format", "csv", "--output", str(out),
                 GUESTS]) == 1
    assert capsys.readouterr().out == ""
    rows = _rows(out.read_text(encoding="utf-8"))
    assert {r["name"] for r in rows if r["verdict"] == "affected"} == {"analytics",
                                                                      "legacy-win2008"}


# --- the advisories of the registry -----------------------------------------------------------


def test_advisories_column_lists_the_reported_ones() -> None:
    rows = _rows(CsvFormatter().render(advisory_report()))
    assert [r["advisories"] for r in rows] == [
        "XSA-97:affected XSA-344:affected XSA-410:affected XSA-495:unknown",
        "XSA-344:not_affected XSA-410:affected",
        "XSA-344:not_affected",
        "",
    ]
    assert rows[0]["verdict"] == "affected" and rows[0]["cve"] == "CVE-2014-5146"  # XSA-97's
    narrowed = _rows(CsvFormatter().render(advisory_report(("XSA-97", "XSA-495"))))
    assert [r["advisories"] for r in narrowed] == ["XSA-97:affected XSA-495:unknown", "", "", ""]


def test_narrowed_rows_are_the_worst_reported_advisory() -> None:
    adv, uaf, quiet, xm = _rows(CsvFormatter().render(advisory_report(NARROWED)))
    assert {k: adv[k] for k in (
        "verdict", "severity", "worst_case_ms", "worst_case_ms_low", "xsa97_fixed", "cve",
        "worst_operation", "worst_operation_ms", "residual", "first_mitigation",
        "first_mitigation_text", "mitigations", "line", "decisive_key", "reasons",
        "advisories")} == {
        "verdict": "affected", "severity": "high",
        "worst_case_ms": "", "worst_case_ms_low": "",  # unbounded: no figure
        "xsa97_fixed": "", "cve": "",  # XSA-97's facts: not reported
        "worst_operation": "evtchn_reset", "worst_operation_ms": "", "residual": "",
        "first_mitigation": "", "first_mitigation_text": UNBOUNDED.mitigations[0],
        "mitigations": "", "line": "9", "decisive_key": "max_event_channels",
        "reasons": UNBOUNDED.reasons[0], "advisories": "XSA-344:affected",
    }
    assert (adv["name"], adv["paging"], adv["memory_mib"]) == ("adv", "hap", "65536")
    assert (uaf["verdict"], uaf["worst_case_ms"], uaf["worst_case_ms_low"]) == (
        "not_affected", "0.05", "0.01")
    assert quiet["verdict"] == "not_affected" and quiet["worst_operation_ms"] == "0.511"
    assert (xm["verdict"], xm["reasons"], xm["advisories"]) == (
        "unknown", XM.reasons[0], "")


# --- suppressed findings (--suppress) ---------------------------------------------------------


def test_suppressed_column_is_the_last_and_lists_the_suppressed_advisories() -> None:
    assert COLUMNS[-1] == "suppressed" and COLUMNS[-2] == "advisories"
    rows = _rows(CsvFormatter().render(suppressed_report()))
    assert [(r["name"], r["verdict"], r["suppressed"]) for r in rows] == [
        ("silenced", "affected", "XSA-97 XSA-410"), ("adv", "affected", ""),
        ("uaf", "not_affected", ""), ("quiet", "not_affected", ""), ("", "unknown", "")]
    narrowed = _rows(CsvFormatter().render(suppressed_report(("XSA-344", "XSA-410"))))
    assert narrowed[0]["suppressed"] == "XSA-410"  # only what the run reports
