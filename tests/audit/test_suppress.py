"""Per-guest suppressions (``xenvmmu audit --suppress FILE``): loading and its errors with
``FILE:line``, matching, the marks the audit puts on each guest's findings (never on the
shape cache's shared templates), the exit status, and every format writing the same thing
streamed or rendered."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from unittest.mock import Mock

import pytest

from xenvmmu.audit import api
from xenvmmu.audit.api import audit_settings, iter_audit, run_audit
from xenvmmu.audit.findings import AdvisoryFinding, AuditReport, AuditStream, Finding, SourceRef
from xenvmmu.audit.format import FORMATS, get_formatter
from xenvmmu.audit.format.base import headline, one_line, suppressed_counts, worst_advisory
from xenvmmu.audit.suppress import (
    Suppression,
    SuppressionError,
    load_suppressions,
    read_suppressions,
)
from xenvmmu.cli import main
from xenvmmu.toolstack import host_from_flags

from ..conftest import REPO
from .test_format_base import (
    ADV,
    ADV_97,
    BIG_HAP,
    FIXED_344,
    NOTE_97,
    NOTE_410,
    SHADOW,
    TEARDOWN_410,
    UNBOUNDED,
    UNKNOWN_495,
    XM,
    suppressed_report,
)

EXAMPLES = REPO / "examples"
MAPTRACK = EXAMPLES / "advisories" / "xsa-380-maptrack.cfg"
#: a host where the XSA-380 example is affected (and nothing else of it)
HOST_380 = ["--xen-version", "4.13.3", "--cmdline", "gnttab_max_maptrack_frames=4096"]
UUID = "6b1e3f0a-2c4d-4e8f-9a10-3b5c7d9e1f20"
TODAY = date(2026, 6, 1)


def _file(tmp_path: Path, text: str, name: str = "suppress.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _entry(selector: str = 'guest = "web-*"', advisory: str = "XSA-380",
           reason: str = "accepted", extra: str = "") -> str:
    return (f'[[suppress]]\n{selector}\nadvisory = "{advisory}"\nreason = "{reason}"\n'
            f"{extra}")


# --- loading ----------------------------------------------------------------------------------


def test_entries_are_read_with_where_they_were_written(tmp_path: Path) -> None:
    path = _file(tmp_path, "# silenced on purpose\n\n"
                 + _entry(extra="expires = 2027-01-31\n") + "\n"
                 + f'[[ suppress ]]\nuuid = "{UUID.upper()}"\nsource = "/etc/xen/*"\n'
                   'advisory = "xsa-97"\nreason = "  HAP fixed by the distribution  "\n'
                 + _entry('guest = "db"', "*"))
    first, second, third = read_suppressions(path)
    assert first == Suppression("accepted", "XSA-380", "web-*", expires=date(2027, 1, 31),
                                origin=f"{path}:3")
    assert (second.uuid, second.source, second.advisory, second.origin) == (
        UUID, "/etc/xen/*", "XSA-97", f"{path}:9")  # the registry's spelling, uuid lowered
    assert second.note == f"HAP fixed by the distribution ({path}:9)"
    assert (third.guest, third.advisory, third.origin) == ("db", "*", f"{path}:14")
    assert read_suppressions(_file(tmp_path, "# nothing yet\n", "empty.toml")) == ()


@pytest.mark.parametrize("text,line,message", [
    (_entry() + "\n" + _entry(extra='colour = "red"\n'), 6,
     r"unknown key colour in \[\[suppress\]\] \(known: advisory, expires, guest, reason, "),
    (_entry() + '[[suppress]]\nguest = "a"\nadvisory = "*"\n', 5, "reason is required"),
    (_entry(reason="   "), 1, "reason is required"),
    (_entry(advisory="XSA-1"), 1, r"unknown advisory 'XSA-1'; the registry has XSA-97, .*\*"),
    (_entry(advisory="XSA-380") + '[[suppress]]\nguest = "a"\nreason = "r"\n', 5,
     "advisory is required"),
    ('[[suppress]]\nadvisory = "*"\nreason = "r"\n', 1,
     "no guest selected: give guest, source or uuid"),
    (_entry('guest = ""'), 1, "guest is empty"),
    (_entry("guest = 3"), 1, "guest must be a string, not an integer"),
    (_entry("source = ['a']"), 1, "source must be a string, not an array"),
    (_entry('uuid = "web-1"'), 1, "uuid 'web-1' is not a domain uuid"),
    (_entry(extra='expires = "2027-01-31"\n'), 1, "expires must be a date .*not a string"),
    (_entry(extra="expires = 2027-01-31T10:00:00\n"), 1, "expires must be a date .*date-time"),
    (_entry(extra="reason2 = 1\nguest2 = 2\n"), 1, "unknown keys guest2, reason2 in"),
    ("# top\nsupress = 1\n" + _entry(), 2, "unknown key 'supress': a suppression file holds"),
    ('[suppress]\nguest = "a"\n', 1, r"suppress must be an array of tables: write each entry "
     r"under \[\[suppress\]\]"),
    (_entry() + 'reason = "twice"\n', 5, r"not TOML: Cannot overwrite a value \(column \d+\)"),
    ('[[suppress]]\nguest = "web\n', 2, r"not TOML: .* \(column \d+\)"),
])
def test_errors_name_the_file_and_the_entry_s_line(
    tmp_path: Path, text: str, line: int, message: str,
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(SuppressionError, match=message) as caught:
        load_suppressions([path], today=TODAY)
    assert (caught.value.path, caught.value.line) == (str(path), line)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_an_entry_without_a_header_line_is_named_by_its_number(tmp_path: Path) -> None:
    path = _file(tmp_path, 'suppress = [\n  {guest = "a", advisory = "*", reason = "r"},\n'
                           '  {guest = "b", advisory = "*"},\n]\n')
    with pytest.raises(SuppressionError, match="entry 2: reason is required") as caught:
        read_suppressions(path)
    assert caught.value.line is None and str(caught.value).startswith(f"{path}: entry 2: ")
    path = _file(tmp_path, 'suppress = [{guest = "a", advisory = "*", reason = "r"}]\n')
    assert read_suppressions(path)[0].origin == str(path)


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SuppressionError, match="cannot read: No such file") as caught:
        read_suppressions(tmp_path / "missing.toml")
    assert caught.value.path == str(tmp_path / "missing.toml")
    with pytest.raises(SuppressionError, match="not a regular file"):
        read_suppressions(tmp_path)
    (tmp_path / "latin1.toml").write_bytes(b'[[suppress]]\nguest = "caf\xe9"\n')
    with pytest.raises(SuppressionError, match="not UTF-8 text"):
        read_suppressions(tmp_path / "latin1.toml")
    deep = _file(tmp_path, "x = " + "[" * 5000 + "]" * 5000 + "\n", "deep.toml")
    with pytest.raises(SuppressionError, match="nested too deeply"):
        read_suppressions(deep)


def test_an_expired_entry_is_left_out_with_a_warning(tmp_path: Path) -> None:
    path = _file(tmp_path, _entry('guest = "old"', extra="expires = 2026-05-31\n") + "\n"
                 + _entry('guest = "today"', extra="expires = 2026-06-01\n"))
    said: list[str] = []
    rules = load_suppressions([path], today=TODAY, warn=said.append)
    assert [r.guest for r in rules] == ["today"]  # valid through the day it names
    assert said == [f"{path}:1: suppression expired on 2026-05-31; ignored"]
    with pytest.warns(UserWarning, match=f"{path}:1: suppression expired"):
        assert len(load_suppressions([path], today=TODAY)) == 1
    # validated all the same: an expired entry with an error is an error
    bad = _file(tmp_path, _entry(advisory="XSA-2", extra="expires = 2000-01-01\n"), "bad.toml")
    with pytest.raises(SuppressionError, match="unknown advisory"):
        load_suppressions([bad], today=TODAY)


def test_files_are_read_in_order(tmp_path: Path) -> None:
    one = _file(tmp_path, _entry('guest = "a"'), "one.toml")
    two = _file(tmp_path, _entry('guest = "b"') + _entry('guest = "c"'), "two.toml")
    assert [r.guest for r in load_suppressions([two, one])] == ["b", "c", "a"]


def test_the_example_file_silences_xsa380_for_the_example_guest() -> None:
    (rule,) = load_suppressions([EXAMPLES / "suppress.toml"])
    assert (rule.advisory, rule.reason) == ("XSA-380", "grant limit enforced by the host's "
                                                       "xl.conf")
    for path in (str(MAPTRACK), os.path.relpath(MAPTRACK, REPO)):
        assert rule.selects(replace(BIG_HAP, source=SourceRef(path)))
    assert not rule.selects(replace(BIG_HAP, source=SourceRef("examples/guests/web-01.cfg")))


# --- matching ---------------------------------------------------------------------------------


def test_selectors_match_names_paths_and_uuids() -> None:
    listed = replace(BIG_HAP, uuid=UUID)
    nameless = replace(XM, uuid=None)
    assert Suppression("r", guest="big-*").selects(BIG_HAP)
    assert not Suppression("r", guest="big-*").selects(SHADOW)
    assert not Suppression("r", guest="BIG-*").selects(BIG_HAP)  # case matters
    assert not Suppression("r", guest="*").selects(nameless)  # no name: no guest match
    assert Suppression("r", source="*").selects(nameless)
    assert Suppression("r", source="guests/*.cfg").selects(SHADOW)
    assert Suppression("r", source="*/big-hap.cfg").selects(BIG_HAP)
    assert not Suppression("r", source="big-hap.cfg").selects(BIG_HAP)  # the path as given
    assert Suppression("r", uuid=UUID.upper()).selects(listed)
    assert not Suppression("r", uuid=UUID).selects(BIG_HAP)  # no uuid known
    # every selector given must match
    assert Suppression("r", guest="big-hap", source="guests/*").selects(BIG_HAP)
    assert not Suppression("r", guest="big-hap", source="other/*").selects(BIG_HAP)
    assert not Suppression("r", guest="big-hap", uuid=UUID).selects(BIG_HAP)


def test_advisories_covered() -> None:
    every = Suppression("r", "*", guest="x")
    one = Suppression("r", "xsa-380", guest="x")
    assert one.advisory == "XSA-380"
    assert all(every.covers(a) for a in ("XSA-97", "XSA-380", "XSA-495"))
    assert one.covers("XSA-380") and not one.covers("XSA-97")


@pytest.mark.parametrize("kwargs,message", [
    ({"guest": "a", "reason": ""}, "reason is required"),
    ({"reason": "r"}, "no guest selected"),
    ({"reason": "r", "guest": "a", "advisory": "XSA-9999"}, "unknown advisory"),
    ({"reason": "r", "uuid": "nope"}, "not a domain uuid"),
])
def test_entries_built_directly_are_checked(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Suppression(**kwargs)


# --- the audit marks each guest's findings ----------------------------------------------------


def test_the_audit_marks_the_affected_verdicts_an_entry_selects() -> None:
    host = host_from_flags("4.13.3", cmdline="gnttab_max_maptrack_frames=4096")
    plain = run_audit([MAPTRACK], host, audit_settings())
    rule = Suppression("grant limit enforced", "*", source="*/xsa-380-maptrack.cfg",
                       origin="ops.toml:3")
    marked = run_audit([MAPTRACK], host, audit_settings(), suppress=[rule])
    (before,), (after,) = plain.findings, marked.findings
    assert [(a.id, a.verdict) for a in after.advisories] == [
        ("XSA-344", "not_affected"), ("XSA-380", "affected")]
    # only what needs a look is marked: a not-affected verdict has nothing to silence
    assert [a.suppressed for a in after.advisories] == [None, "grant limit enforced (ops.toml:3)"]
    assert after.suppressed is None and after.verdict == "not_affected"  # a PV guest
    assert replace(after, advisories=()) == replace(before, advisories=())
    assert after.advisories[0] is before.advisories[0] or after.advisories[0] == \
        before.advisories[0]
    stream = iter_audit([MAPTRACK], host, audit_settings(), suppress=[rule])
    list(stream)
    assert (stream.any_affected, stream.any_suppressed, stream.suppressed_counts) == (
        0, 1, {"XSA-380": 1})
    assert stream.advisory_counts["XSA-380"] == {"affected": 1, "not_affected": 0, "unknown": 0}


def test_the_library_reads_files_and_names_expired_entries_to_note(tmp_path: Path) -> None:
    path = _file(tmp_path, _entry('source = "*"', extra="expires = 2000-01-01\n")
                 + _entry('source = "*"', reason="kept"))
    said: list[str] = []
    host = host_from_flags("4.13.3", cmdline="gnttab_max_maptrack_frames=4096")
    report = run_audit([MAPTRACK], host, audit_settings(), suppress=[path], note=said.append)
    assert said == [f"{path}:1: suppression expired on 2000-01-01; ignored"]
    assert report.findings[0].advisories[1].suppressed == f"kept ({path}:6)"
    with pytest.raises(SuppressionError):  # at once, before any iteration
        iter_audit([MAPTRACK], host, audit_settings(), suppress=[tmp_path / "none.toml"])


def _twins(d: Path) -> list[str]:
    """Two guests of one shape (a 64 GiB HAP guest, affected by XSA-97 on 4.4.0)."""
    for name in ("a-web", "b-web"):
        (d / f"{name}.cfg").write_text(f'name = "{name}"\nbuilder = "hvm"\nmemory = 65536\n'
                                       "vcpus = 4\n")
    return [str(d / "a-web.cfg"), str(d / "b-web.cfg")]


@pytest.mark.parametrize("silenced", ["a-web", "b-web"])
def test_the_shape_cache_is_not_polluted(
    tmp_path: Path, silenced: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = _twins(tmp_path)
    host = host_from_flags("4.4.0")
    plain = {f.name: f for f in run_audit(paths, host, audit_settings()).findings}
    spy = Mock(wraps=api.assess)
    monkeypatch.setattr(api, "assess", spy)
    rule = Suppression("test guest", "*", guest=silenced, origin="s.toml:1")
    marked = {f.name: f for f in run_audit(paths, host, audit_settings(),
                                           suppress=[rule]).findings}
    assert spy.call_count == 1  # one shape: the second guest is the first's template, renamed
    other = "b-web" if silenced == "a-web" else "a-web"
    assert marked[other] == plain[other]  # untouched, before or after the marked one
    assert marked[other].suppressed is None
    assert all(a.suppressed is None for a in marked[other].advisories)
    mine = marked[silenced]
    assert (mine.verdict, mine.suppressed) == ("affected", "test guest (s.toml:1)")
    assert {a.id: a.suppressed for a in mine.advisories if a.verdict != "not_affected"} == {
        a.id: "test guest (s.toml:1)" for a in mine.advisories if a.verdict != "not_affected"}
    assert any(a.verdict == "affected" and a.id != "XSA-97" for a in mine.advisories)
    assert replace(mine, suppressed=None, advisories=plain[silenced].advisories) == \
        plain[silenced]


# --- what the exit status reads ---------------------------------------------------------------

N97 = "n97 (s.toml:1)"


def _counted(*findings: Finding, advisories: tuple[str, ...] = ()) -> AuditStream:
    stream = AuditStream.of(AuditReport(findings=findings, advisories=advisories))
    list(stream)
    return stream


def test_a_guest_counts_only_through_its_unsuppressed_findings() -> None:
    only_97 = replace(ADV, advisories=(ADV_97,))
    silenced = replace(only_97, suppressed=N97, advisories=(replace(ADV_97, suppressed=N97),))
    assert _counted(only_97).any_affected == 1
    stream = _counted(silenced)
    assert (stream.any_affected, stream.any_unknown, stream.any_suppressed) == (0, 0, 1)
    assert stream.counts["affected"] == 1 and stream.suppressed_counts == {"XSA-97": 1}
    # another advisory still affected: the guest counts through it
    loud = replace(silenced, advisories=(*silenced.advisories, TEARDOWN_410))
    assert _counted(loud).any_affected == 1
    # the guest verdict alone silenced: its XSA-97 entry still counts (a guest can be
    # given an entry another suppression did not mark)
    assert _counted(replace(only_97, suppressed=N97)).any_affected == 1
    # an unknown advisory, suppressed or not
    unknown = replace(SHADOW, verdict="not_affected", severity="none",
                      advisories=(UNKNOWN_495,))
    assert _counted(unknown).any_unknown == 1
    quiet = replace(unknown, advisories=(replace(UNKNOWN_495, suppressed=N97),))
    assert (_counted(quiet).any_unknown, _counted(quiet).any_suppressed) == (0, 1)


def test_an_unassessed_guest_stays_unknown_unless_xsa97_is_suppressed() -> None:
    assert _counted(XM).any_unknown == 1
    assert _counted(XM, advisories=("XSA-344",)).any_unknown == 1  # whatever is reported
    silenced = replace(XM, suppressed=N97)
    assert _counted(silenced).any_unknown == 0
    stream = _counted(silenced, advisories=("XSA-344",))
    assert (stream.any_unknown, stream.any_suppressed) == (0, 0)  # XSA-97 is not reported


def test_suppressed_counts_of_a_report_and_of_a_stream() -> None:
    report = suppressed_report()
    assert suppressed_counts(report) == (1, {"XSA-97": 1, "XSA-344": 0, "XSA-410": 1,
                                             "XSA-495": 0})
    stream = AuditStream.of(report)
    list(stream)
    assert suppressed_counts(stream) == suppressed_counts(report)
    assert suppressed_counts(suppressed_report(("XSA-344",))) == (0, {"XSA-344": 0})


# --- the headline ranks a suppressed finding last -----------------------------------------------


def test_a_suppressed_finding_heads_a_guest_only_when_nothing_else_needs_a_look() -> None:
    quiet_410 = replace(TEARDOWN_410, suppressed=N97)
    assert worst_advisory([quiet_410, UNBOUNDED]) is UNBOUNDED  # though 410 has a figure
    assert worst_advisory([quiet_410, replace(UNBOUNDED, severity="medium")]).id == "XSA-344"
    assert worst_advisory([quiet_410, UNKNOWN_495]) is UNKNOWN_495
    assert worst_advisory([FIXED_344, quiet_410]) is quiet_410  # still affected, marked
    assert worst_advisory([TEARDOWN_410, UNBOUNDED]) is UNBOUNDED  # unchanged otherwise
    guest = replace(ADV, advisories=(ADV_97, UNBOUNDED, quiet_410))
    head = headline(guest, AuditReport(findings=(), advisories=("XSA-344", "XSA-410")))
    assert (head.advisory, head.suppressed) == ("XSA-344", None)
    head = headline(guest, AuditReport(findings=(), advisories=("XSA-410",)))
    assert (head.advisory, head.verdict, head.suppressed) == ("XSA-410", "affected", N97)
    assert headline(replace(guest, suppressed=N97), AuditReport(findings=())).suppressed == N97


# --- every format, streamed or rendered -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("options", [{}, {"verbose": True}, {"summary_only": True}])
@pytest.mark.parametrize("advisories", [(), ("XSA-410",)])
def test_write_gives_what_render_gives_with_suppressed_findings(
    name: str, options: dict[str, bool], advisories: tuple[str, ...],
) -> None:
    report = suppressed_report(advisories)
    formatter = get_formatter(name, timestamp=datetime(2026, 1, 2, tzinfo=UTC), **options)
    out = io.StringIO()
    formatter.write(AuditStream.of(report), out)
    assert out.getvalue() == formatter.render(report)
    text = out.getvalue()
    if name == "csv":
        assert text.splitlines()[1].endswith(",XSA-410" if advisories else ",XSA-97 XSA-410")
    elif name == "prometheus":
        assert 'advisory="XSA-410",impact="availability"} 1\n' in text
    elif not options.get("summary_only"):
        assert one_line(NOTE_410) in text.replace("\\", "")  # markdown escapes


def test_every_format_marks_the_guest_with_nothing_but_suppressed_findings() -> None:
    only = AdvisoryFinding(**{**vars(TEARDOWN_410), "suppressed": NOTE_97})
    guest = replace(BIG_HAP, verdict="not_affected", severity="none", cve=None,
                    advisories=(only,))
    report = AuditReport(findings=(guest,), tool_version="0.1.0")
    for name in sorted(FORMATS):
        text = get_formatter(name, timestamp=datetime(2026, 1, 2, tzinfo=UTC)).render(report)
        assert ("migrations are disabled" in text) or name in ("csv", "prometheus"), name
    assert json.loads(get_formatter("json").render(report))["summary"]["suppressed"] == {
        "guests": 1, "advisories": {"XSA-410": 1}}


# --- the command ----------------------------------------------------------------------------------


def test_the_only_affected_advisory_suppressed_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["audit", *HOST_380, str(MAPTRACK)]) == 1
    capsys.readouterr()
    suppress = str(EXAMPLES / "suppress.toml")
    assert main(["audit", *HOST_380, "--suppress", suppress, str(MAPTRACK)]) == 0
    out = capsys.readouterr().out
    assert ("  XSA-380: affected, high, 64.0-317 ms (CVE-2021-28698; not fixed in this "
            "release); suppressed (grant limit enforced by the host's xl.conf "
            f"({suppress}:20))\n") in out
    assert "XSA-380:     1 affected, 0 not affected, 0 unknown, 1 suppressed\n" in out
    assert main(["audit", *HOST_380, "--advisory", "XSA-380", "--suppress", suppress,
                 str(MAPTRACK)]) == 0


def test_a_bad_file_is_a_usage_error_before_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    bad = _file(tmp_path, _entry() + "\n" + _entry(extra="colour = 1\n"))
    report = tmp_path / "report.json"
    assert main(["audit", *HOST_380, "--suppress", str(bad), "--format", "json", "--output",
                 str(report), str(MAPTRACK)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and not report.exists()
    assert cap.err.startswith(f"xenvmmu audit: {bad}:6: unknown key colour in [[suppress]]")
    assert main(["audit", *HOST_380, "--suppress", str(tmp_path / "no.toml"),
                 str(MAPTRACK)]) == 2
    assert "no.toml: cannot read: No such file" in capsys.readouterr().err


def test_an_expired_entry_is_warned_about_and_silences_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    old = _file(tmp_path, "\n" + _entry('source = "*"', extra="expires = 2001-02-03\n"))
    assert main(["audit", *HOST_380, "--suppress", str(old), str(MAPTRACK)]) == 1
    cap = capsys.readouterr()
    assert (f"xenvmmu audit: warning: {old}:2: suppression expired on 2001-02-03; ignored\n"
            in cap.err)
    assert "suppressed" not in cap.out


def test_an_unassessed_guest_exits_0_only_when_xsa97_is_suppressed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    xm = str(EXAMPLES / "guests" / "old-xm.cfg")
    assert main(["audit", "--xen-version", "4.17.3", xm]) == 3
    other = _file(tmp_path, _entry('source = "*/old-xm.cfg"', "XSA-380"), "other.toml")
    assert main(["audit", "--xen-version", "4.17.3", "--suppress", str(other), xm]) == 3
    mine = _file(tmp_path, _entry('source = "*/old-xm.cfg"', "XSA-97", "converting it"),
                 "mine.toml")
    capsys.readouterr()
    assert main(["audit", "--xen-version", "4.17.3", "--suppress", str(other),
                 "--suppress", str(mine), xm]) == 0
    out = capsys.readouterr().out
    assert "old-xm.cfg: unknown, suppressed (" in out
    assert f"  suppressed: converting it ({mine}:1)\n" in out
