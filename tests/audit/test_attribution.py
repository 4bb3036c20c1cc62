"""One mechanism, one finding: each operation carries the reference that covers exactly its
code, and a guest's CVE is one whose vulnerable code the host still runs."""

from __future__ import annotations

import pytest

from xenvmmu.audit.rules import assess
from xenvmmu.audit.settings import AuditSettings
from xenvmmu.costs import default_profile
from xenvmmu.toolstack import guest_from_xlcfg, host_from_flags
from xenvmmu.versions import XenVersion, behaviour_releases, profile_for

SETTINGS = AuditSettings(default_profile())
#: every release where a behaviour changes, and the last release before each of them
RELEASES = sorted({str(v) for v in behaviour_releases()}
                  | {"4.2.5", "4.3.3", "4.4.0", "4.4.1", "4.4.3", "4.5.1", "4.16.2"})


def _assess(version: str, *, memory_gib: int = 1024, shadow: bool = False,
            cmdline: str = ""):  # type: ignore[no-untyped-def]
    host = host_from_flags(version, cmdline=cmdline)
    cfg = f'name = "g"\nbuilder = "hvm"\nmemory = {memory_gib * 1024}\nvcpus = 4\n'
    if shadow:
        cfg += "hap = 0\n"
    guest = guest_from_xlcfg(cfg.encode(), host.profile(), source="g.cfg")
    return assess(guest, host, host.profile(), SETTINGS)


@pytest.mark.parametrize("version", RELEASES)
def test_attribution_rule_for_every_release(version: str) -> None:
    p = profile_for(version)
    f = _assess(version)
    assert f.paging == "hap"
    by_op = {o.op: o for o in f.ops}
    xsa97 = [o for o in f.ops if o.reference == "XSA-97"]
    assert {o.op for o in xsa97} == {"logdirty_peek", "logdirty_clean", "logdirty_off"}
    if p.logdirty_preemptible:
        # the host has the fix: XSA-97's own operations are preemptible, the CVE is gone
        assert all(o.preemptible for o in xsa97)
        assert f.cve is None
    else:
        assert f.cve == "CVE-2014-5146"
        assert not any(o.preemptible for o in xsa97)
    sweep = by_op["hap_global_retype"]
    assert sweep.reference != "XSA-97" and "90ac32559b" in sweep.reference
    assert sweep.residual == (p.logdirty_preemptible and p.hap_retype == "sweep")
    assert sweep.started_by == ("toolstack",) and "guest" in sweep.sized_by
    vram = by_op["vram_track"]
    assert vram.started_by == ("device_model",) and "device_model" in vram.sized_by
    # shadow paging: never fixed, CVE-2014-5149 in every release
    s = _assess(version, shadow=True)
    assert s.paging == "shadow" and s.cve == "CVE-2014-5149"
    assert any(o.op == "shadow_blow_tables" and not o.preemptible for o in s.ops)


def test_442_reports_the_residual_sweep_not_the_cve() -> None:
    f = _assess("4.4.2")
    assert f.verdict == "affected" and f.cve is None and f.xsa97_fixed
    worst = max((o for o in f.ops if not o.related), key=lambda o: o.worst_case_ms)
    assert worst.op == "hap_global_retype" and worst.residual
    assert any("residual exposure, not CVE-2014-5146" in r and "4.5.0" in r for r in f.reasons)
    for o in f.ops:  # everything still attributed to XSA-97 is preemptible or short
        if o.reference == "XSA-97":
            assert o.preemptible or o.worst_case_ms < SETTINGS.budget_ms
    # the upgrade that removes the sweep is 4.5.0; with the CPU vendor unknown, Intel's
    # per-frame EPT sync in VRAM tracking (until 4.7.0) can still exceed the budget
    upgrade = next(m.text for m in f.mitigations if m.action == "upgrade")
    assert upgrade in ("Upgrade Xen to 4.5.0 or later.", "Upgrade Xen to 4.7.0 or later.")
    amd = host_from_flags("4.4.2", cpu_vendor="amd")
    cfg = b'name = "g"\nbuilder = "hvm"\nmemory = 1048576\nvcpus = 4\n'
    g = assess(guest_from_xlcfg(cfg, amd.profile(), source="g.cfg"), amd, amd.profile(),
               SETTINGS)
    assert "Upgrade Xen to 4.5.0 or later." in [m.text for m in g.mitigations]
    assert not any(m.action == "patch" for m in f.mitigations)  # the patch is already in


def test_patched_440_is_like_442() -> None:
    host = host_from_flags("4.4.0")
    cfg = b'name = "g"\nbuilder = "hvm"\nmemory = 1048576\nvcpus = 4\n'
    profile = host.profile(patched=frozenset({"xsa97-hap"}))
    f = assess(guest_from_xlcfg(cfg, profile, source="g.cfg"), host, profile, SETTINGS)
    assert f.cve is None and any(o.residual for o in f.ops)


def test_440_keeps_the_cve_and_the_walk_carries_the_sweep() -> None:
    f = _assess("4.4.0")
    assert f.cve == "CVE-2014-5146"
    by_op = {o.op: o for o in f.ops}
    # unfixed: the walk and the sweep after it are one section, at least the sweep's length
    assert by_op["logdirty_clean"].worst_case_ms >= by_op["hap_global_retype"].worst_case_ms
    assert not by_op["hap_global_retype"].residual


def test_425_ignores_the_hypervisor_hap_option() -> None:
    f = _assess("4.2.5", cmdline="hap=0")
    assert f.paging == "hap" and f.cve == "CVE-2014-5146"
    assert any("'hap=0' ignored" in r for r in f.paging_reasons)
    assert _assess("4.3.0", cmdline="hap=0").paging == "shadow"


def test_lazy_releases_have_no_residual() -> None:
    for v in ("4.5.0", "4.17.0"):
        f = _assess(v)
        assert not any(o.residual for o in f.ops)
        assert XenVersion.parse(v) >= XenVersion(4, 5, 0)


def test_residual_has_its_own_identity_in_every_format() -> None:
    import json

    from xenvmmu.audit.findings import AuditReport
    from xenvmmu.audit.format import get_formatter

    f = _assess("4.4.2")
    report = AuditReport(findings=(f,), budget_ms=SETTINGS.budget_ms, tool_version="t")
    sarif = json.loads(get_formatter("sarif").render(report))
    result, *related = sarif["runs"][0]["results"]  # then the related findings (teardown)
    assert result["ruleId"] == "HAP-TYPE-SWEEP-RESIDUAL" and result["kind"] == "fail"
    assert "CVE-2014-5146" not in result["properties"]["tags"]
    # the teardown is XSA-410's: its advisory result, not a related result besides
    assert "XSA-410" in [r["ruleId"] for r in related]
    assert all("advisory" in r["properties"] for r in related)  # no related-operation result
    vex = json.loads(get_formatter("openvex").render(report))
    # a statement for each of XSA-97's CVEs, then one per CVE of the other advisories
    statement, shadow, *others = vex["statements"]
    assert [(s["vulnerability"]["aliases"], s["vulnerability"]["name"]) for s in others] == [
        ([a.id], cve) for a in f.advisories if a.id != "XSA-97" for cve in a.cves]
    assert (["XSA-410"], "CVE-2022-33746") in [
        (s["vulnerability"]["aliases"], s["vulnerability"]["name"]) for s in others]
    assert shadow["vulnerability"]["name"] == "CVE-2014-5149"
    assert shadow["justification"] == "vulnerable_code_not_in_execute_path"
    assert statement["vulnerability"]["name"] == "CVE-2014-5146"
    assert statement["status"] == "not_affected"  # the host has that fix
    assert statement["justification"] == "vulnerable_code_not_present"
    assert "residual" in statement["impact_statement"]
    prom = get_formatter("prometheus").render(report)
    assert 'cve="CVE-2014-5146"' not in prom
    doc = json.loads(get_formatter("json").render(report))
    (op,) = [o for o in doc["guests"][0]["operations"] if o["residual"]]
    assert op["op"] == "hap_global_retype" and op["started_by"] == ["toolstack"]
