"""The library entry point ``xenvmmu.audit.run_audit``: real verdicts on the example fleet,
bad inputs reported (never raised), and the same report as ``xenvmmu audit``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xenvmmu.audit import AuditReport, AuditSettings, Finding, InputError, audit_settings, run_audit
from xenvmmu.audit.format import get_formatter
from xenvmmu.audit.rules import CVE_HAP, CVE_SHADOW
from xenvmmu.cli import main
from xenvmmu.costs import default_profile
from xenvmmu.toolstack import host_from_flags

from ..conftest import REPO

GUESTS = REPO / "examples" / "guests"
SETTINGS = audit_settings()


def _by_name(report: AuditReport) -> dict[str | None, Finding]:
    return {f.name: f for f in report.findings}


def test_big_hap_and_shadow_guests_are_affected_on_440() -> None:
    report = run_audit([GUESTS], host_from_flags("4.4.0"), SETTINGS)
    assert report.inputs_read == 7 and len(report.findings) == 7 and report.errors == ()
    guests = _by_name(report)
    big = guests["analytics"]  # builder="hvm", 1 TiB, HAP by default
    assert (big.guest_type, big.paging, big.verdict, big.severity, big.cve) == (
        "hvm", "hap", "affected", "critical", CVE_HAP,
    )
    assert big.xsa97_fixed is False and big.worst_case_ms is not None
    assert big.worst_case_ms >= 5000  # longer than the watchdog timeout
    shadow = guests["legacy-win2008"]
    assert (shadow.paging, shadow.verdict, shadow.cve) == ("shadow", "affected", CVE_SHADOW)
    assert guests["build-pv"].verdict == "not_affected"
    # type= is not understood before 4.10: xl 4.4 builds these as PV guests
    assert guests["web-01"].guest_type == "pv" and guests["web-01"].verdict == "not_affected"
    (xm,) = [f for f in report.findings if f.source.path.endswith("old-xm.cfg")]
    assert xm.verdict == "unknown" and xm.reasons  # Python: reported, never run
    assert report.host["xen_version"] == "4.4.0" and report.host["xsa97_fixed"] is False
    assert report.budget_ms == 30.0


def test_no_hap_guest_is_affected_on_4173() -> None:
    report = run_audit([GUESTS], host_from_flags("4.17.3"), SETTINGS)
    hap = [f for f in report.findings if f.paging == "hap"]
    assert {f.name for f in hap} >= {"analytics", "db-primary", "web-01"}
    assert all(f.verdict == "not_affected" and f.xsa97_fixed for f in hap)
    # shadow paging is another matter: a full shadow pool is still flushed in one go
    assert _by_name(report)["legacy-win2008"].verdict == "affected"


def test_inputs_in_order_files_and_directories(tmp_path: Path) -> None:
    cfg = tmp_path / "one.cfg"
    cfg.write_text('name="one"\nbuilder="hvm"\nmemory=1024\n')
    report = run_audit(
        [str(cfg), GUESTS / "analytics.cfg"], host_from_flags("4.4.0"), SETTINGS
    )
    assert [f.name for f in report.findings] == ["one", "analytics"]
    assert report.inputs_read == 2


def test_bad_inputs_become_input_errors_not_exceptions(tmp_path: Path) -> None:
    (tmp_path / "truncated.json").write_text('[{"domid": 1,')
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.cfg")
    os.mkfifo(tmp_path / "fifo")
    missing = tmp_path / "missing.cfg"
    report = run_audit(
        [missing, tmp_path / "truncated.json", tmp_path / "dangling.cfg", tmp_path / "fifo",
         GUESTS / "web-01.cfg"],
        host_from_flags("4.4.0"), SETTINGS,
    )
    assert all(isinstance(e, InputError) for e in report.errors)
    why = {Path(e.path).name: e.message for e in report.errors}
    assert why["missing.cfg"].startswith("cannot read")
    assert why["dangling.cfg"].startswith("cannot read")
    assert why["truncated.json"].startswith("invalid JSON")
    assert why["fifo"] == "not a regular file or directory (a FIFO)"
    assert report.inputs_read == 2  # the JSON file was read, then rejected
    assert [f.name for f in report.findings] == ["web-01"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    secret = tmp_path / "secret.cfg"
    secret.write_text('name="secret"\n')
    secret.chmod(0)
    report = run_audit([secret], host_from_flags("4.4.0"), SETTINGS)
    assert report.findings == () and report.inputs_read == 0
    (error,) = report.errors
    assert error.path == str(secret) and error.message.startswith("cannot read")


def test_nothing_readable_is_an_empty_report() -> None:
    report = run_audit(["/nonexistent/xenvmmu"], host_from_flags("4.4.0"), SETTINGS)
    assert (report.findings, report.inputs_read, len(report.errors)) == ((), 0, 1)


def test_patched_and_profile() -> None:
    host = host_from_flags("4.4.1")
    cfg = [GUESTS / "analytics.cfg"]
    (plain,) = run_audit(cfg, host, SETTINGS).findings
    (patched,) = run_audit(cfg, host, SETTINGS, patched=frozenset({"xsa97-hap"})).findings
    assert (plain.xsa97_fixed, patched.xsa97_fixed) == (False, True)
    profile = host.profile(patched=frozenset({"xsa97-hap"}))
    (same,) = run_audit(cfg, host, SETTINGS, profile=profile).findings
    assert same == patched
    with pytest.raises(ValueError, match="not both"):
        run_audit(cfg, host, SETTINGS, patched=frozenset({"xsa97-hap"}), profile=profile)


def test_settings_from_plain_values(tmp_path: Path) -> None:
    assert isinstance(SETTINGS, AuditSettings) and SETTINGS.budget_ms == 30.0
    host = host_from_flags("4.4.0")
    cfg = [GUESTS / "analytics.cfg"]
    (relaxed,) = run_audit(cfg, host, audit_settings(budget_ms=1e9)).findings
    assert relaxed.verdict == "not_affected"
    costs = default_profile()
    assert audit_settings(costs=costs).costs is costs
    with pytest.raises(ValueError, match="positive"):
        audit_settings(budget_ms=0)
    from xenvmmu.costs import CostProfileError

    with pytest.raises(CostProfileError):
        audit_settings(costs=tmp_path / "missing.toml")


def test_the_cli_prints_the_library_report(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_audit([GUESTS], host_from_flags("4.4.0"), SETTINGS)
    assert main(["audit", "--xen-version", "4.4.0", "--format", "json", str(GUESTS)]) == 1
    assert capsys.readouterr().out == get_formatter("json").render(report)
