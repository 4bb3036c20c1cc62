"""`xenvmmu audit --live` with a stand-in `xl` on PATH, and inputs from standard input.

The stand-in is a small Python script written into tmp_path that prints fixture files from
../shared/fixtures, as `xl info` and `xl list -l` would. `--live` must give the same report
as the same outputs given as files (`--host FILE LISTING`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from xenvmmu.cli import main
from xenvmmu.toolstack.live import LiveError, find_xl, read_live, run_xl

from .conftest import REPO, SHARED

FIXTURES = SHARED / "fixtures"
HOSTS = FIXTURES / "hosts"
GUESTS = FIXTURES / "guests"

HOST_HAP0 = "xl-info_4.17.3_x86-amd_cmdline-hap0_no-hap-in-virt_caps.txt"
PAIRS = [
    ("xl-info_4.4.0_x86-intel-ept.txt", "xl-list-l_4.4.0_hvm-64gib_hap-default.json"),
    ("xl-info_4.4.1_x86-intel-ept_debian.txt", "xl-list-l_4.4.1_hvm-256gib_hap1.json"),
    ("xl-info_4.5.0_x86-intel-ept.txt", "xl-list-l_4.5.0_list-dom0-hvm64gib-pv.json"),
    ("xl-info_4.2.5_x86-intel_cmdline-hap0.txt", "xl-list-l_4.2.5_hvm-1gib_compact.json"),
    ("xl-info_4.17.0_x86-intel-hap.txt", "xl-list-l_4.17.0_hvm-2tib.json"),
    ("xl-info_4.17.0_arm64.txt", "xl-list-l_4.17.0_arm64-pvh-2gib.json"),
    (HOST_HAP0, "xl-list-l_4.17.0_hvm-2tib.json"),
]


def write_xl(directory: Path, info: Path | None, listing: Path | None, *, name: str = "xl",
             status: int = 0, stderr: str = "", sleep: float = 0.0) -> Path:
    """A stand-in `xl`: `info` prints ``info``, `list -l` prints ``listing``; ``stderr`` is
    printed on stderr and ``status`` is the exit status of both."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        f"time.sleep({sleep!r})\n"
        f"files = {{'info': {str(info) if info else None!r}, "
        f"'list -l': {str(listing) if listing else None!r}}}\n"
        "path = files.get(' '.join(sys.argv[1:]))\n"
        "if path is None:\n"
        "    sys.stderr.write('xl: unknown command ' + ' '.join(sys.argv[1:]) + '\\n')\n"
        "    sys.exit(1)\n"
        "sys.stdout.buffer.write(open(path, 'rb').read())\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({status})\n"
    )
    script.chmod(0o755)
    return script


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bin directory first on PATH (the stand-in xl goes there)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bin_dir


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any],
                                                                         str]:
    status = main(argv)
    cap = capsys.readouterr()
    return status, json.loads(cap.out), cap.err


def _without_sources(report: dict[str, Any], *paths: str) -> dict[str, Any]:
    """The report with the names of its inputs taken out (files vs. the live commands or
    standard input): the source fields, and ``paths`` wherever they appear (an xl.cfg's
    reasons name its file)."""
    text = json.dumps(report)
    for path in paths:
        text = text.replace(json.dumps(path)[1:-1], "SRC")
    doc: dict[str, Any] = json.loads(text)
    doc["host"]["source"] = None
    for guest in doc["guests"]:
        guest["source"] = None
        if guest["decisive"] is not None:
            guest["decisive"]["path"] = None
        for adv in guest.get("advisories", []):  # each advisory's deciding setting too
            if adv.get("decisive") is not None:
                adv["decisive"]["path"] = None
    for error in doc["errors"]:
        error["source"] = None
    return doc


@pytest.mark.parametrize(("info", "listing"), PAIRS)
def test_live_gives_the_same_report_as_the_files(
    info: str, listing: str, on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_xl(on_path, HOSTS / info, GUESTS / listing)
    live_status, live, _ = _json(["audit", "--live", "--format", "json"], capsys)
    file_status, files, _ = _json(
        ["audit", "--host", str(HOSTS / info), "--format", "json", str(GUESTS / listing)], capsys)
    assert live_status == file_status
    assert _without_sources(live) == _without_sources(files)
    assert live["host"]["source"] == "xl info"
    assert {g["source"] for g in live["guests"]} <= {"xl list -l"}
    assert live["guests"], "every pair has a guest"


def test_live_csv_is_the_csv_of_the_files(
    on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info, listing = HOSTS / PAIRS[2][0], GUESTS / PAIRS[2][1]
    write_xl(on_path, info, listing)

    def rows(argv: list[str]) -> list[dict[str, str]]:
        assert main([*argv, "--advisory", "XSA-97"]) == 0  # 4.5.0 has the XSA-97 fix
        found = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        for row in found:
            row.pop("source")
        return found

    live = rows(["audit", "--live", "--format", "csv"])
    assert live == rows(["audit", "--host", str(info), "--format", "csv", str(listing)])
    assert [row["name"] for row in live] == ["erp-64g", "dns-pv"]


def test_live_takes_the_command_line_from_xl_info(
    on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the 4.17.3 host has hap=0 on its command line: the HVM guest is shadow-paged
    write_xl(on_path, HOSTS / HOST_HAP0, GUESTS / "xl-list-l_4.17.0_hvm-2tib.json")
    status, report, _ = _json(["audit", "--live", "--format", "json"], capsys)
    assert status == 1
    assert [g["paging"] for g in report["guests"]] == ["shadow"]
    lines = (HOSTS / HOST_HAP0).read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("xen_commandline"))
    assert report["guests"][0]["decisive"] == {"path": "xl info", "line": line,
                                               "key": "xen_commandline"}
    # the host flags still win over what xl info says
    _, report, _ = _json(["audit", "--live", "--format", "json", "--cmdline", "",
                               "--cpu-hap"], capsys)
    assert [g["paging"] for g in report["guests"]] == ["hap"]


def test_live_with_an_explicit_xl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    xl = write_xl(tmp_path / "sbin", HOSTS / PAIRS[2][0], GUESTS / PAIRS[2][1], name="xl-4.5")
    status, report, err = _json(["audit", "--live", "--xl", str(xl), "--format", "json",
                                 "--advisory", "XSA-97"], capsys)
    assert status == 0  # 4.5.0 has the XSA-97 fix
    assert [g["name"] for g in report["guests"]] == ["erp-64g", "dns-pv"]
    assert "domain 0 (Domain-0) skipped" in err  # the listing's notes are shown


def test_no_xl_on_path_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["audit", "--live"]) == 2
    err = capsys.readouterr().err
    assert "no `xl` on PATH" in err and "--xl PATH" in err and "Traceback" not in err
    with pytest.raises(LiveError, match="no `xl` on PATH"):
        find_xl()


def test_failing_xl_shows_its_stderr_and_exits_2(
    on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = ("xc: error: Could not obtain handle on privileged command interface "
               "(2 = No such file or directory)\x1b[31m\n")
    write_xl(on_path, HOSTS / PAIRS[0][0], GUESTS / PAIRS[0][1], status=1, stderr=message)
    assert main(["audit", "--live"]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert "failed (exit status 1)" in cap.err
    assert "Could not obtain handle on privileged command interface" in cap.err
    assert "\x1b" not in cap.err  # xl's stderr cannot drive the terminal


def test_xl_that_cannot_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--live", "--xl", str(tmp_path / "missing" / "xl")]) == 2
    assert "cannot run" in capsys.readouterr().err
    not_executable = tmp_path / "xl"
    not_executable.write_text("#!/bin/sh\n")
    assert main(["audit", "--live", "--xl", str(not_executable)]) == 2
    assert "cannot run" in capsys.readouterr().err


def test_xl_stderr_on_success_is_shown(on_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_xl(on_path, HOSTS / PAIRS[0][0], GUESTS / PAIRS[0][1],
             stderr="libxl: error: Fail to get domain configuration for domain 7\n")
    assert main(["audit", "--live"]) == 1
    err = capsys.readouterr().err
    assert "xenvmmu audit: xl list -l: libxl: error: Fail to get domain configuration" in err


def test_hung_xl_is_stopped_after_the_timeout(on_path: Path) -> None:
    xl = write_xl(on_path, HOSTS / PAIRS[0][0], GUESTS / PAIRS[0][1], sleep=30)
    start = time.monotonic()
    with pytest.raises(LiveError, match=r"did not finish within 0.5 s"):
        read_live(str(xl), timeout=0.5)
    assert time.monotonic() - start < 10


def test_hung_xl_through_the_command_exits_2(
    on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_xl(on_path, HOSTS / PAIRS[0][0], GUESTS / PAIRS[0][1], sleep=30)
    assert main(["audit", "--live", "--xl-timeout", "0.5"]) == 2
    assert "did not finish within 0.5 s" in capsys.readouterr().err


def test_output_beyond_the_limit_is_refused(on_path: Path) -> None:
    xl = write_xl(on_path, HOSTS / PAIRS[0][0], GUESTS / PAIRS[0][1])
    out, _ = run_xl(str(xl), ["info"])
    assert out == (HOSTS / PAIRS[0][0]).read_bytes()
    with pytest.raises(LiveError, match="printed more than 100 bytes"):
        run_xl(str(xl), ["info"], limit=100)


# --- --configs: configured guests that are not running ---------------------------------------

UUID_RUNNING = "4c2a3bd1-7b3c-4a5e-9d4f-0123456789ab"


def _running_listing(tmp_path: Path) -> Path:
    """The 4.5.0 listing (erp-64g, dns-pv) with a known uuid for erp-64g."""
    doc = json.loads((GUESTS / "xl-list-l_4.5.0_list-dom0-hvm64gib-pv.json").read_text())
    for domain in doc:
        if domain["config"]["c_info"]["name"] == "erp-64g":
            domain["config"]["c_info"]["uuid"] = UUID_RUNNING
    path = tmp_path / "list.json"
    path.write_text(json.dumps(doc))
    return path


def test_configs_adds_guests_that_are_not_running_and_counts_none_twice(
    tmp_path: Path, on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_xl(on_path, HOSTS / "xl-info_4.4.0_x86-intel-ept.txt", _running_listing(tmp_path))
    etc = tmp_path / "etc-xen"
    (etc / "auto").mkdir(parents=True)
    # running, same name
    (etc / "dns.cfg").write_text('name = "dns-pv"\nmemory = 512\n')
    # running under another name, same uuid (renamed since it started)
    (etc / "erp.cfg").write_text(f'name = "erp-old-name"\nbuilder = "hvm"\nmemory = 65536\n'
                                 f'uuid = "{UUID_RUNNING.upper()}"\n')
    # not running
    (etc / "batch.cfg").write_text('name = "batch"\nbuilder = "hvm"\nmemory = 131072\n')
    os.symlink("../batch.cfg", etc / "auto" / "batch.cfg")  # read once
    (etc / "xl.conf").write_text('output_format="json"\n')  # not a guest
    status, report, err = _json(
        ["audit", "--live", "--configs", str(etc), "--format", "json"], capsys)
    assert status == 1
    assert [(g["name"], Path(g["source"]).name) for g in report["guests"]] == [
        ("erp-64g", "xl list -l"), ("dns-pv", "xl list -l"), ("batch", "batch.cfg")]
    assert "guest 'dns-pv' is running (same name)" in err
    assert f"guest uuid {UUID_RUNNING} is running (same uuid)" in err
    assert "4 input file(s), 3 guest(s), 0 input error(s)" in err


def test_configs_without_running_guests(tmp_path: Path, on_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[\n]\n")
    write_xl(on_path, HOSTS / "xl-info_4.4.0_x86-intel-ept.txt", empty)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "web.cfg").write_text('name = "web"\nbuilder = "hvm"\nmemory = 2048\n')
    status, report, _ = _json(["audit", "--live", "--configs", str(etc), "--format", "json",
                               "--advisory", "XSA-97"], capsys)
    assert [g["name"] for g in report["guests"]] == ["web"]
    assert status == 0  # a 2 GiB HAP guest is within the budget for XSA-97


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "--live", "vm.cfg"], "--configs DIR, not as PATH"),
        (["audit", "--live", "--host", "x.txt"], "--host cannot be combined"),
        (["audit", "--xen-version", "4.4.0", "--configs", "/etc/xen", "vm.cfg"], "go with --live"),
        (["audit", "--xen-version", "4.4.0", "--xl", "/usr/sbin/xl", "vm.cfg"], "go with --live"),
        (["audit", "--xen-version", "4.4.0"], "or --live on dom0"),
        (["audit", "--host", "-", "-"], "standard input holds one input"),
        (["audit", "--xen-version", "4.4.0", "-", "-"], "standard input holds one input"),
        (["audit", "--live", "--xl-timeout", "0"], "--xl-timeout"),
    ],
)
def test_live_usage_errors(argv: list[str], message: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# --- standard input ---------------------------------------------------------------------------


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


@pytest.mark.parametrize("listing", [
    GUESTS / "xl-list-l_4.4.0_hvm-64gib_hap-default.json",
    REPO / "examples" / "guests" / "legacy-win.cfg",
])
def test_dash_reads_one_input_from_stdin(listing: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    host = str(HOSTS / "xl-info_4.4.0_x86-intel-ept.txt")
    _stdin(monkeypatch, listing.read_bytes())
    status, piped, _ = _json(["audit", "--host", host, "--format", "json", "-"], capsys)
    file_status, files, _ = _json(["audit", "--host", host, "--format", "json", str(listing)],
                                  capsys)
    assert status == file_status == 1
    assert {g["source"] for g in piped["guests"]} == {"<stdin>"}
    assert _without_sources(piped, "<stdin>") == _without_sources(files, str(listing))


def test_host_dash_reads_xl_info_from_stdin(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    info = HOSTS / "xl-info_4.2.5_x86-intel_cmdline-hap0.txt"
    listing = str(GUESTS / "xl-list-l_4.2.5_hvm-1gib_compact.json")
    _stdin(monkeypatch, info.read_bytes())
    status, piped, _ = _json(["audit", "--host", "-", "--format", "json", listing], capsys)
    file_status, files, _ = _json(["audit", "--host", str(info), "--format", "json", listing],
                                  capsys)
    assert status == file_status
    assert piped["host"]["source"] == "<stdin>"
    assert _without_sources(piped, "<stdin>") == _without_sources(files, str(info))


def test_stdin_is_bounded(monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from xenvmmu.xlcfg import MAX_INPUT_BYTES

    _stdin(monkeypatch, b"#" * (MAX_INPUT_BYTES + 10))
    assert main(["audit", "--xen-version", "4.4.0", "-"]) == 2
    err = capsys.readouterr().err
    assert "nothing readable" in err and "<stdin>" in err and "too large" in err
    _stdin(monkeypatch, b"#" * (MAX_INPUT_BYTES + 10))
    assert main(["audit", "--host", "-", "vm.cfg"]) == 2
    assert "<stdin>: cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [
    [],
    ["--xen-version", "4.4.2", "--cmdline", "hap=0 watchdog", "--watchdog-timeout", "3"],
    ["--cpu-vendor", "amd", "--no-cpu-hap", "--no-watchdog"],
    ["--xen-version", "4.5-unstable", "--changeset", "2014-09-12", "--cpu-hap"],
    ["--patched", "xsa97-hap", "--watchdog", "--arch", "x86_64"],
    ["--arch", "aarch64"],
])
def test_host_from_stdin_reads_every_host_flag_as_host_file_does(
    flags: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--host -` (and --live) build the host from text; `--host FILE` through the shared host
    flags: the two must agree on every flag."""
    info = HOSTS / "xl-info_4.4.0_x86-intel-ept.txt"
    listing = str(GUESTS / "xl-list-l_4.4.1_hvm-256gib_hap1.json")
    _stdin(monkeypatch, info.read_bytes())
    status, piped, _ = _json(["audit", "--host", "-", *flags, "--format", "json", listing],
                             capsys)
    file_status, files, _ = _json(["audit", "--host", str(info), *flags, "--format", "json",
                                   listing], capsys)
    assert status == file_status
    assert _without_sources(piped) == _without_sources(files)
