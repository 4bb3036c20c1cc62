"""`xenvmmu explain`: one guest with its config, the deciding lines in the gutter, every reason
and operation, and the mitigations with the exact config edit as a unified diff."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from xenvmmu.cli import main
from xenvmmu.commands.explain import _remove_setting, _set_value, _split

from .conftest import REPO, SHARED

EXAMPLES = REPO / "examples"
HOST_440 = str(EXAMPLES / "hosts" / "xen-4.4.0-intel.txt")
HOST_4173 = str(EXAMPLES / "hosts" / "xen-4.17.3-amd.txt")
LEGACY = EXAMPLES / "guests" / "legacy-win.cfg"
ANALYTICS = EXAMPLES / "guests" / "analytics.cfg"
LISTING = SHARED / "fixtures" / "guests" / "xl-list-l_4.5.0_list-dom0-hvm64gib-pv.json"


def explain(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["explain", *argv])
    cap = capsys.readouterr()
    return status, cap.out, cap.err


def gutter(out: str) -> dict[int, str]:
    """The listed config: line number -> gutter mark (' ' for none)."""
    marks: dict[int, str] = {}
    for line in out.splitlines():
        m = re.match(r"  ([>*! ]) +(\d+)(  |$)", line)
        if m:
            marks[int(m.group(2))] = m.group(1)
    return marks


def diff_of(out: str) -> list[str]:
    """The unified diff lines printed under the mitigations."""
    return [line.strip() for line in out.splitlines()
            if re.match(r"       ([-+@ ]|after)", line)]


def test_shadow_guest_marks_hap_and_removes_it(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = explain(["--host", HOST_440, str(LEGACY)], capsys)
    assert status == 1 and err == ""
    assert out.startswith(f"legacy-win2008 ({LEGACY}) on Xen 4.4.0")
    assert "Verdict: affected, critical, CVE-2014-5149" in out
    marks = gutter(out)
    assert len(marks) == len(LEGACY.read_text().splitlines())
    assert marks[6] == ">"  # hap = 0 decides
    assert {n for n, m in marks.items() if m == "*"} == {2, 4, 5, 7}  # builder, memory...
    assert "> decides the verdict" in out
    # every reason and every operation
    assert "Why:" in out and "the guest refuses HAP (hap=0): shadow paging" in out
    for op in ("logdirty_clean", "shadow_blow_tables", "vram_track", "teardown_relinquish"):
        assert re.search(rf"^  {op}: [\d.]+(-[\d.]+)? ms, (not )?preemptible", out, re.M), op
    assert "started by the device model; made long by the" in out
    assert "(related: outside the verdict)" in out and "reference: XSA-97" in out
    # the mitigation's edit: hap = 0 removed, and what the audit says of the edited file
    diff = diff_of(out)
    assert f"--- {LEGACY}" in diff and f"+++ {LEGACY} (hap = 0 removed)" in diff
    assert "-hap     = 0" in diff and not any(d.startswith("+") and "hap" in d
                                                for d in diff if not d.startswith("+++"))
    assert any(d.startswith("after this edit, on Xen 4.4.0:") for d in diff)


def test_hap_guest_shrinks_memory_and_maxmem(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = explain(["--host", HOST_440, str(ANALYTICS)], capsys)
    assert status == 1
    assert gutter(out)[5] == ">"  # maxmem decides
    m = re.search(r"at most ([\d,]+) MiB", out)
    assert m, out
    mib = m.group(1).replace(",", "")
    diff = diff_of(out)
    assert "-memory   = 1048576" in diff and f"+memory   = {mib}" in diff
    assert "-maxmem   = 2097152" in diff and f"+maxmem   = {mib}" in diff
    after = next(d for d in diff if d.startswith("after this edit"))
    assert "not affected" in after  # the edit does what the mitigation says


def test_shadow_memory_edit_changes_or_adds_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a large budget makes a smaller shadow pool a fix (no HAP on this CPU)
    cfg = tmp_path / "s.cfg"
    cfg.write_text('name = "s"\ntype = "hvm"\nmemory = 1024\nvcpus = 2\nhap = 0\n'
                   "shadow_memory = 4096  # generous\n")
    argv = ["--host", HOST_4173, "--no-cpu-hap", "--budget-ms", "100000", str(cfg)]
    status, out, _ = explain(argv, capsys)
    assert status == 1
    m = re.search(r"Set shadow_memory = (\d+)", out)
    assert m, out
    diff = diff_of(out)
    assert "-shadow_memory = 4096  # generous" in diff
    assert f"+shadow_memory = {m.group(1)}  # generous" in diff
    # without the setting, it is added at the end
    cfg.write_text('name = "s"\ntype = "hvm"\nmemory = 1024\nvcpus = 2\nhap = 0\n')
    status, out, _ = explain(["--host", HOST_4173, "--no-cpu-hap", "--budget-ms", "5000",
                              str(cfg)], capsys)
    m = re.search(r"Set shadow_memory = (\d+)", out)
    assert m, out
    assert f"+shadow_memory = {m.group(1)}" in diff_of(out)
    assert "@@ -4,2 +4,3 @@" in diff_of(out)  # appended after the last line


def test_pv_guest_is_not_affected_with_its_type_line_marked(
    capsys: pytest.CaptureFixture[str]
) -> None:
    guest = EXAMPLES / "guests" / "db-primary.cfg"
    status, out, _ = explain(["--host", HOST_440, str(guest)], capsys)
    assert status == 0
    assert "Verdict: not affected" in out
    assert gutter(out)[3] == ">"  # type = "hvm", which xl 4.4 ignores: a PV guest
    assert "is ignored by xl before 4.10" in out
    assert "Operations: none assessed" in out and "Mitigations: not affected" in out


def test_rejected_config_marks_the_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = explain(["--host", HOST_440, str(EXAMPLES / "guests" / "old-xm.cfg")],
                             capsys)
    assert status == 3
    assert gutter(out)[2] == "!" and "! xl rejects the file here" in out
    assert "never executes it" in out


def test_crlf_config_shows_the_hint_and_no_raw_carriage_return(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "win.cfg"
    cfg.write_bytes(b'name = "w"\r\nbuilder = "hvm"\r\nmemory = 1024\r\n')
    status, out, _ = explain(["--xen-version", "4.4.0", str(cfg)], capsys)
    assert status == 3
    assert "\r" not in out and 'name = "w"\\r' in out
    assert "sed -i 's/\\r$//' FILE" in out


def test_control_characters_in_the_config_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "evil.cfg"
    cfg.write_bytes(b'# \x1b]0;owned\x07 \x1b[2J\nname = "e"\nbuilder = "hvm"\n'
                    b"memory = 2097152\n")
    status, out, _ = explain(["--host", HOST_440, str(cfg)], capsys)
    assert status == 1
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07" in out


def test_not_a_config_is_not_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret.cfg"
    secret.write_bytes(b"root:$6$saltsalt$hash\x00:19000:0:99999:7:::\n")
    status, out, err = explain(["--xen-version", "4.4.0", str(secret)], capsys)
    assert status == 2 and out == ""
    assert "not an xl.cfg file" in err and "saltsalt" not in err


def test_xl_list_guest_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = explain(["--host", HOST_440, str(LISTING)], capsys)
    assert status == 2 and out == ""
    assert "holds 2 guests ('erp-64g', 'dns-pv'): choose one with --guest NAME" in err
    status, out, _ = explain(["--host", HOST_440, "--guest", "erp-64g", str(LISTING)], capsys)
    assert status == 1
    assert out.startswith("erp-64g (") and "no xl.cfg lines to show" in out
    assert "logdirty_clean" in out and "Mitigations, cheapest first:" in out
    assert "--- " not in out  # no file to edit
    status, _, err = explain(["--host", HOST_440, "--guest", "nope", str(LISTING)], capsys)
    assert status == 2 and "no guest named 'nope' among" in err


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(LEGACY.read_bytes())))
    status, out, _ = explain(["--host", HOST_440, "-"], capsys)
    assert status == 1
    assert out.startswith("legacy-win2008 (<stdin>)") and gutter(out)[6] == ">"
    assert "--- <stdin>" in out


def test_host_from_stdin(monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(Path(HOST_440).read_bytes())))
    status, out, _ = explain(["--host", "-", str(LEGACY)], capsys)
    assert status == 1 and "on Xen 4.4.0" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--host", "-", "-"], "standard input holds one input"),
        (["--xen-version", "4.4.0", "/nonexistent.cfg"], "/nonexistent.cfg: cannot read"),
        (["/x.cfg"], "give --host XL_INFO_FILE or --xen-version V"),
        (["--xen-version", "4.4.0", "--budget-ms", "nan", "/x.cfg"], "--budget-ms"),
    ],
)
def test_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = explain(argv, capsys)
    assert status == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_listed_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "explain" in capsys.readouterr().out


# --- the config edits -----------------------------------------------------------------------


def test_split_numbers_lines_as_xl_does() -> None:
    assert _split("a\nb\n") == ["a", "b"]
    assert _split("a\nb") == ["a", "b"]
    assert _split("a\x0bb\x1cc\n") == ["a\x0bb\x1cc"]  # only \n ends a line


@pytest.mark.parametrize(
    ("line", "key", "value", "expected"),
    [
        ("memory = 4096", "memory", "512", "memory = 512"),
        ("memory=4096 # big", "memory", "512", "memory=512 # big"),
        ('memory = "4096"', "memory", "512", "memory = 512"),
        ("vcpus = 2; memory = 4096", "memory", "512", "vcpus = 2; memory = 512"),
        ("maxmem = 1; memory = 2; memory = 3", "memory", "9", "maxmem = 1; memory = 2; memory = 9"),
        ("shadow_memory = 64", "memory", "512", None),  # not the key
    ],
)
def test_set_value(line: str, key: str, value: str, expected: str | None) -> None:
    lines = ["x = 1", line]
    assert _set_value(lines, 2, key, value) is (expected is not None)
    assert lines[1] == (expected if expected is not None else line)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hap = 0", None),
        ("hap=0   # old drivers", None),
        ("hap = 0;", None),
        ("vcpus = 2; hap = 0", "vcpus = 2; "),
        ("hap = 0; vcpus = 2", "vcpus = 2"),
    ],
)
def test_remove_setting(line: str, expected: str | None) -> None:
    lines = ["a = 1", line, "b = 2"]
    assert _remove_setting(lines, 2, "hap")
    assert lines == (["a = 1", "b = 2"] if expected is None else ["a = 1", expected, "b = 2"])


def test_explain_lists_every_advisory_of_the_guest(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = REPO / "examples" / "advisories" / "xsa-380-maptrack.cfg"
    main(["explain", "--xen-version", "4.13.3", "--cmdline", "gnttab_max_maptrack_frames=4096",
          str(cfg)])
    out = capsys.readouterr().out
    section = out[out.index("Advisories"):]
    assert "XSA-380 (CVE-2021-28698): affected, high" in section
    assert "decided by max_maptrack_frames (line 10)" in section
    assert "fix: Upgrade Xen to 4.13.4 or later (XSA-380 fixed)." in section
    assert "XSA-344 (CVE-2020-25601): not affected" in section
