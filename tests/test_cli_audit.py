"""`xenvmmu audit` end to end: exit statuses, formats validated against their schemas,
directory scans with loops and unreadable files, and usage errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from xenvmmu.cli import main

from .conftest import REPO, SHARED

EXAMPLES = REPO / "examples"
HOST_440 = str(EXAMPLES / "hosts" / "xen-4.4.0-intel.txt")
HOST_4173 = str(EXAMPLES / "hosts" / "xen-4.17.3-amd.txt")


def _write(d: Path, name: str, text: str) -> Path:
    p = d / name
    p.write_text(text)
    return p


def test_affected_fleet_exits_1_with_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--host", HOST_440, str(EXAMPLES / "guests")]) == 1
    cap = capsys.readouterr()
    assert cap.out.startswith("GUEST ")
    assert "analytics: affected, critical, CVE-2014-5146" in cap.out
    assert "7 guests: 2 affected, 4 not affected, 1 unknown; budget 30 ms" in cap.out
    assert "xenvmmu audit: 7 input file(s), 7 guest(s), 0 input error(s)" in cap.err


def test_none_affected_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "web.cfg", 'name="web"\ntype="hvm"\nmemory=2048\nvcpus=2\n')
    assert main(["audit", "--host", HOST_4173, str(tmp_path)]) == 0
    assert "1 guest: 0 affected, 1 not affected, 0 unknown" in capsys.readouterr().out


def test_unassessed_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "web.cfg", 'name="web"\ntype="hvm"\nmemory=2048\n')
    _write(tmp_path, "xm.cfg", "import os\nmemory = 1024\n")
    assert main(["audit", "--host", HOST_4173, str(tmp_path)]) == 3
    capsys.readouterr()


def test_nothing_readable_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--xen-version", "4.4.0", str(tmp_path / "missing")]) == 2
    assert "nothing readable" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "x.cfg"], "give --host XL_INFO_FILE or --xen-version V"),
        (["audit", "--xen-version", "banana", "x.cfg"], "banana"),
        (["audit", "--xen-version", "4.4.0", "--budget-ms", "0", "x.cfg"], "--budget-ms"),
        (["audit", "--host", "/nonexistent/xl-info", "x.cfg"], "/nonexistent/xl-info"),
    ],
)
def test_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xenvmmu audit: ") and message in err
    assert "Traceback" not in err


def test_scan_reports_loops_and_bad_files_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    os.symlink(tmp_path, sub / "loop")
    _write(sub, "vm.cfg", 'name="vm"\nbuilder="hvm"\nmemory=1024\n')
    _write(tmp_path, "list.json", '[{"domid": 1,')  # truncated JSON
    _write(tmp_path, "notes.txt", "not a guest\n")  # ignored in a directory scan
    # the guest is not affected by XSA-97; the bad inputs make it 3
    assert main(["audit", "--xen-version", "4.4.0", "--advisory", "XSA-97", "--format", "json",
                 str(tmp_path)]) == 3
    report = json.loads(capsys.readouterr().out)
    messages = {(Path(e["source"]).name, e["message"].split(":")[0]) for e in report["errors"]}
    assert ("loop", "symbolic link loop") in messages
    assert any(name == "list.json" and msg.startswith("invalid JSON") for name, msg in messages)
    assert [Path(g["source"]).name for g in report["guests"]] == ["vm.cfg"]
    # the whole registry: 4.4.0 lacks XSA-380's fix and the default maptrack limit (131,072
    # mappings) can be released for longer than the budget at the high cost end: affected
    assert main(["audit", "--xen-version", "4.4.0", "--format", "json", str(tmp_path)]) == 1
    (guest,) = json.loads(capsys.readouterr().out)["guests"]
    assert {a["id"] for a in guest["advisories"] if a["verdict"] == "affected"} == {"XSA-380"}


def test_json_validates_against_its_schema(capsys: pytest.CaptureFixture[str]) -> None:
    from xenvmmu.audit.format.jsonfmt import load_schema

    main(["audit", "--host", HOST_440, "--format", "json", str(EXAMPLES / "guests")])
    report = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator(load_schema()).validate(report)
    assert report["schema"] == "xenvmmu.audit/1"
    by_name = {g["name"]: g for g in report["guests"]}
    assert by_name["legacy-win2008"]["paging"] == "shadow"
    assert by_name["legacy-win2008"]["line"] == 6  # hap = 0 decides


def test_sarif_validates_and_points_at_the_deciding_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "audit.sarif"
    rc = main(
        [
            "audit",
            "--host",
            HOST_440,
            "--format",
            "sarif",
            "--output",
            str(out),
            str(EXAMPLES / "guests"),
        ]
    )
    assert rc == 1
    sarif = json.loads(out.read_text())
    schema = json.loads((SHARED / "schemas" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(sarif)
    locations = {
        Path(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]).name: r["locations"][
            0
        ]["physicalLocation"]["region"]["startLine"]
        for r in sarif["runs"][0]["results"]
        if r["ruleId"] in ("XSA-97-HAP", "XSA-97-SHADOW")  # (not the other advisories')
    }
    assert locations == {"analytics.cfg": 5, "legacy-win.cfg": 6}
    capsys.readouterr()


def test_openvex_validates(capsys: pytest.CaptureFixture[str]) -> None:
    main(["audit", "--host", HOST_440, "--format", "openvex", str(EXAMPLES / "guests")])
    vex = json.loads(capsys.readouterr().out)
    schema = json.loads((SHARED / "schemas" / "openvex-schema-0.2.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(vex)
    statuses = {
        s["vulnerability"]["name"]: s["status"]
        for s in vex["statements"]
        if s["status"] == "affected" and s["vulnerability"]["aliases"] == ["XSA-97"]
    }  # (the other advisories have statements of their own)
    assert statuses == {"CVE-2014-5146": "affected", "CVE-2014-5149": "affected"}


def test_prometheus_output_file_is_written_atomically(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "xenvmmu.prom"
    main(
        [
            "audit",
            "--host",
            HOST_440,
            "--format",
            "prometheus",
            "--output",
            str(out),
            str(EXAMPLES / "guests"),
        ]
    )
    text = out.read_text()
    assert 'xenvmmu_guests{verdict="affected"} 2' in text
    assert [p.name for p in tmp_path.iterdir()] == ["xenvmmu.prom"]
    capsys.readouterr()


def test_flags_override_xl_info(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "audit",
        "--host",
        HOST_440,
        "--format",
        "json",
        str(EXAMPLES / "guests" / "web-01.cfg"),
    ]
    main([*args, "--xen-version", "4.17.3"])
    report = json.loads(capsys.readouterr().out)
    assert report["guests"][0]["type"] == "hvm"  # type= is understood from 4.10
    assert report["host"]["xen_version"] == "4.17.3"


def test_patched_flag(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(EXAMPLES / "guests" / "analytics.cfg")
    main(["audit", "--xen-version", "4.4.1", "--format", "json", cfg])
    plain = json.loads(capsys.readouterr().out)["guests"][0]
    main(["audit", "--xen-version", "4.4.1", "--patched", "xsa97-hap", "--format", "json", cfg])
    patched = json.loads(capsys.readouterr().out)["guests"][0]
    assert (plain["xsa97_fixed"], patched["xsa97_fixed"]) == (False, True)


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "sarif", "openvex", "prometheus"])
def test_undecodable_bytes_in_names_survive_every_format(
    tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "a.cfg").write_bytes(b'name="caf\xe9\xff"\nbuilder="hvm"\nmemory=65536\n')
    out = tmp_path / f"report.{fmt}"
    rc = main(
        [
            "audit",
            "--xen-version",
            "4.4.0",
            "--format",
            fmt,
            "--output",
            str(out),
            str(tmp_path / "g"),
        ]
    )
    assert rc == 1
    text = out.read_bytes().decode("utf-8")  # valid UTF-8, the bytes shown as \xNN
    assert "caf\\xe9\\xff" in text.replace("\\\\", "\\")  # OpenVEX: in the status notes
    capsys.readouterr()


def test_binary_host_file_is_a_clear_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = tmp_path / "xl-info"
    host.write_bytes(bytes(range(256)) * 4)
    assert main(["audit", "--host", str(host), str(EXAMPLES / "guests" / "web-01.cfg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"xenvmmu audit: {host}") and "Traceback" not in err


def test_cpu_vendor_and_arch_spellings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _write(tmp_path, "big.cfg", 'name="big"\nbuilder="hvm"\nmemory=1048576\nvcpus=4\n')
    worst = {}
    for vendor in ("intel", "amd"):
        main(["audit", "--xen-version", "4.4.0", "--cpu-vendor", vendor, "--format", "json",
              str(cfg)])
        (g,) = json.loads(capsys.readouterr().out)["guests"]
        assert g["worst_case_ms_low"] <= g["worst_case_ms"]
        assert all(o["worst_case_ms_low"] <= o["worst_case_ms"] for o in g["operations"])
        worst[vendor] = g["worst_case_ms"]
    assert worst["amd"] > 2 * worst["intel"]  # NPT takes the paging lock per entry (4.4)
    # unknown vendor: both evaluated, the worse reported and said so
    main(["audit", "--xen-version", "4.4.0", "--format", "json", str(cfg)])
    (g,) = json.loads(capsys.readouterr().out)["guests"]
    assert g["worst_case_ms"] == worst["amd"]
    assert any("both EPT (Intel) and NPT (AMD)" in r for r in g["reasons"])
    for spelling in ("aarch64", "arm64", "x86_64", "amd64"):
        assert main(["audit", "--xen-version", "4.17.0", "--arch", spelling, str(cfg)]) in (0, 1)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["audit", "--xen-version", "4.17.0", "--arch", "sparc", str(cfg)])


# --- the table's options, streamed output, formats by their specs -------------------------------


def _fleet_with_twins(d: Path) -> Path:
    """Two guests named "web" (one affected on 4.4.0, one not), and a third in a subdir."""
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    _write(d / "a", "web.cfg", 'name="web"\nbuilder="hvm"\nmemory=262144\n')
    _write(d / "b", "web.cfg", 'name="web"\nbuilder="hvm"\nmemory=512\n')
    _write(d, "pv.cfg", 'name="pv"\nmemory=2048\n')
    return d


def test_verbose_summary_and_wide(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = str(_fleet_with_twins(tmp_path))
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["audit", "--xen-version", "4.4.0", fleet]) == 1
    plain = capsys.readouterr().out
    rows = plain.splitlines()
    assert [r.split()[:2] for r in rows[1:4]] == [["pv", "pv.cfg"], ["web", "a/web.cfg"],
                                                 ["web", "b/web.cfg"]]
    assert "\nFIXED: whether the release has the xsa97-hap fix" in plain
    # pv is not affected by XSA-97: its reasons only with -v (an affected advisory of the
    # registry is still listed under it)
    pv = plain.split("\npv: not affected", 1)[-1].split("\nweb")[0] if "\npv: " in plain else ""
    assert "\n  - " not in pv
    assert main(["audit", "--xen-version", "4.4.0", "-v", fleet]) == 1
    verbose = capsys.readouterr().out
    assert "pv: not affected" in verbose and "web: not affected" in verbose
    assert main(["audit", "--xen-version", "4.4.0", "--summary", fleet]) == 1
    summary = capsys.readouterr().out
    assert summary.startswith("Verdicts:    1 affected, 2 not affected, 0 unknown\n")
    assert "Releases:    Xen 4.4.0: 3\n" in summary and "The 2 worst guests:" in summary
    assert "FIXED:" not in summary
    # a narrow terminal (COLUMNS): fitted; --wide: not
    monkeypatch.setenv("COLUMNS", "70")
    assert main(["audit", "--xen-version", "4.4.0", fleet]) == 1
    narrow = capsys.readouterr().out
    assert all(len(line) <= 70 for line in narrow.splitlines()[:4])
    assert "left out; --wide shows" in narrow
    assert main(["audit", "--xen-version", "4.4.0", "--wide", fleet]) == 1
    assert capsys.readouterr().out == plain


def test_summary_is_for_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _write(tmp_path, "a.cfg", 'name="a"\nmemory=512\n')
    assert main(["audit", "--xen-version", "4.4.0", "--format", "json", "--summary",
                 str(cfg)]) == 2
    assert "--summary is for --format table" in capsys.readouterr().err


def test_duplicate_names_sarif_and_openvex_by_their_specs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from .audit.test_format_openvex import check_openvex_rules
    from .audit.test_format_sarif import check_sarif_rules

    fleet = str(_fleet_with_twins(tmp_path / "g"))
    uuid = "6c1c9b44-2f7e-4c0e-9d55-0d3c3b1e7a10"
    _write(tmp_path / "g", "running.json", json.dumps([{"domid": 3, "config": {
        "c_info": {"name": "web", "type": "hvm", "uuid": uuid},
        "b_info": {"max_memkb": 1 << 28, "target_memkb": 1 << 28, "max_vcpus": 4}}}]))
    schemas = SHARED / "schemas"
    assert main(["audit", "--xen-version", "4.4.0", "--format", "openvex", fleet]) == 1
    vex = json.loads(capsys.readouterr().out)
    schema = json.loads((schemas / "openvex-schema-0.2.0.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(vex)
    check_openvex_rules(vex, guests=4)  # three guests called "web": three products
    assert f"urn:uuid:{uuid}" in {s["products"][0]["@id"] for s in vex["statements"]}
    by_product = {(s["products"][0]["@id"].rsplit("/", 2)[-2:][0], s["vulnerability"]["name"]):
                  s["status"] for s in vex["statements"]}
    assert by_product[("a", "CVE-2014-5146")] == "affected"
    assert by_product[("b", "CVE-2014-5146")] == "not_affected"
    assert main(["audit", "--xen-version", "4.4.0", "--format", "sarif", fleet]) == 1
    sarif = json.loads(capsys.readouterr().out)
    schema = json.loads((schemas / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    check_sarif_rules(sarif)


def test_nothing_written_when_nothing_was_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "report.json"
    out.parent.mkdir()
    assert main(["audit", "--xen-version", "4.4.0", "--format", "json", "--output", str(out),
                 str(tmp_path / "missing")]) == 2
    assert list(out.parent.iterdir()) == []
    capsys.readouterr()


def test_a_write_failing_midway_leaves_the_old_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from xenvmmu.audit.format import FORMATS

    out = tmp_path / "out" / "report.json"
    out.parent.mkdir()
    out.write_text("old\n")
    real = FORMATS["json"].write

    def full_disk(self: object, audit: object, stream: object) -> None:
        real(self, audit, stream)  # type: ignore[arg-type]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FORMATS["json"], "write", full_disk)
    rc = main(["audit", "--xen-version", "4.4.0", "--format", "json", "--output", str(out),
               str(EXAMPLES / "guests")])
    assert rc == 2
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "old\n" and [p.name for p in out.parent.iterdir()] == ["report.json"]
