"""The advisory family beyond the paging operations (xenvmmu.audit.family): each advisory's
release boundaries (checked with git tag --contains on the fix commits, see the data files),
its config conditions, and the example guest of examples/advisories/."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenvmmu.audit.findings import AdvisoryFinding
from xenvmmu.audit.rules import assess
from xenvmmu.audit.settings import AuditSettings
from xenvmmu.costs import default_profile
from xenvmmu.toolstack import guest_from_xlcfg, host_from_flags

SETTINGS = AuditSettings(default_profile())
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "advisories"


def _advisory(adv: str, version: str, cfg: str | Path, *, arch: str = "x86",
              cmdline: str = "", vendor: str = "intel") -> AdvisoryFinding | None:
    host = host_from_flags(version, arch=arch, cmdline=cmdline,  # type: ignore[arg-type]
                           cpu_vendor=vendor)  # type: ignore[arg-type]
    text = cfg.read_bytes() if isinstance(cfg, Path) else cfg.encode()
    guest = guest_from_xlcfg(text, host.profile(), source=str(cfg)[:40], arch=host.arch)
    f = assess(guest, host, host.profile(), SETTINGS)
    return {a.id: a for a in f.advisories}.get(adv)


def _verdict(adv: str, version: str, cfg: str | Path, **kw: str) -> str | None:
    found = _advisory(adv, version, cfg, **kw)
    return None if found is None else found.verdict


@pytest.mark.parametrize("before,after", [("4.4.3", "4.4.4"), ("4.5.1", "4.5.2"),
                                          ("4.6.0", "4.6.1"), ("4.3.4", "4.7.0")])
def test_xsa150_boundaries(before: str, after: str) -> None:
    cfg = EXAMPLES / "xsa-150-pod.cfg"
    old, new = _advisory("XSA-150", before, cfg), _advisory("XSA-150", after, cfg)
    assert old is not None and new is not None
    assert (old.verdict, old.fixed, new.verdict, new.fixed) == ("affected", False,
                                                                "not_affected", True)
    assert old.mitigations[0].startswith("Set maxmem = memory")
    assert new.worst_case_ms is not None and new.worst_case_ms < 10  # 1024 gfns a section


def test_xsa150_needs_populate_on_demand() -> None:
    same = 'name = "g"\nbuilder = "hvm"\nmemory = 65536\nmaxmem = 65536\n'
    found = _advisory("XSA-150", "4.4.0", same)
    assert found is not None and found.verdict == "not_affected"
    assert "not on populate-on-demand" in found.reasons[0]
    # PV guests never use PoD: the advisory does not concern them
    assert _advisory("XSA-150", "4.4.0", 'name = "g"\nmemory = 1024\nmaxmem = 4096\n') is None


def test_xsa150_npt_and_ept_differ_before_4_7() -> None:
    """EPT before 4.7 syncs once per removed entry (an IPI round each): the Intel figure is
    the larger; NPT pays a paging-lock round trip per entry instead."""
    cfg = EXAMPLES / "xsa-150-pod.cfg"
    ept, npt = _advisory("XSA-150", "4.6.0", cfg), _advisory("XSA-150", "4.6.0", cfg,
                                                             vendor="amd")
    assert ept is not None and npt is not None
    assert ept.worst_case_ms is not None and npt.worst_case_ms is not None
    assert ept.worst_case_ms > 5 * npt.worst_case_ms > 0


@pytest.mark.parametrize("before,after", [("4.7.4", "4.7.5"), ("4.8.2", "4.8.3"),
                                          ("4.9.1", "4.9.2"), ("4.6.6", "4.10.0")])
def test_xsa246_boundaries(before: str, after: str) -> None:
    cfg = EXAMPLES / "xsa-246-pod-small-pool.cfg"
    old, new = _advisory("XSA-246", before, cfg), _advisory("XSA-246", after, cfg)
    assert old is not None and new is not None
    assert (old.verdict, old.unbounded, old.worst_case_ms, old.severity) == (
        "affected", True, None, "high")
    assert (new.verdict, new.fixed) == ("not_affected", True)


def test_xsa246_needs_a_pool_that_can_run_out() -> None:
    roomy = (EXAMPLES / "xsa-246-pod-small-pool.cfg").read_text().replace(
        "shadow_memory = 16", "shadow_memory = 512")
    found = _advisory("XSA-246", "4.9.1", roomy)
    assert found is not None and found.verdict == "not_affected"
    assert "holds a fully 4 KiB-mapped p2m" in found.reasons[0]


@pytest.mark.parametrize("before,after", [("4.12.4", "4.13.0")])
def test_xsa344_example(before: str, after: str) -> None:
    cfg = EXAMPLES / "xsa-344-evtchn.cfg"
    assert _verdict("XSA-344", "4.13.0", cfg) == "affected"
    assert _verdict("XSA-344", "4.13.2", cfg) == "not_affected"
    assert _verdict("XSA-344", before, cfg) == "not_affected"  # 4.12.4 has the backport


@pytest.mark.parametrize("before,after", [("4.13.3", "4.13.4"), ("4.14.2", "4.14.3"),
                                          ("4.15.0", "4.15.1"), ("4.12.4", "4.16.0")])
def test_xsa380_boundaries(before: str, after: str) -> None:
    cfg = EXAMPLES / "xsa-380-maptrack.cfg"
    cmdline = "gnttab_max_maptrack_frames=4096"
    old = _advisory("XSA-380", before, cfg, cmdline=cmdline)
    new = _advisory("XSA-380", after, cfg, cmdline=cmdline)
    assert old is not None and new is not None
    assert (old.verdict, old.fixed, new.verdict, new.fixed) == ("affected", False,
                                                                "not_affected", True)
    # the release of the PV backend's grants, and mapkind for its passthrough device
    assert old.operations == ("maptrack_release", "maptrack_mapkind")
    if old.decisive is not None and old.decisive.key:
        assert old.decisive.key == "max_maptrack_frames"
    assert any("max_maptrack_frames = 256" in m or "gnttab_max_maptrack_frames=256" in m
               for m in old.mitigations)


def test_xsa380_limit_above_the_hypervisor_refuses_the_guest() -> None:
    found = _advisory("XSA-380", "4.13.3", EXAMPLES / "xsa-380-maptrack.cfg")
    assert found is not None and found.verdict == "not_affected"
    assert "Xen refuses to build the domain" in found.reasons[0]


def test_xsa380_a_low_limit_is_within_the_budget() -> None:
    cfg = 'name = "g"\ntype = "pvh"\nmemory = 1024\nmax_maptrack_frames = 256\n'
    found = _advisory("XSA-380", "4.13.3", cfg)
    assert found is not None and found.verdict == "not_affected" and found.fixed is False
    assert found.worst_case_ms is not None and found.worst_case_ms < 30


@pytest.mark.parametrize("before,after", [("4.13.4", "4.13.5"), ("4.14.5", "4.14.6"),
                                          ("4.15.3", "4.15.4"), ("4.16.2", "4.16.3"),
                                          ("4.12.0", "4.17.0")])
def test_xsa409_boundaries_on_arm(before: str, after: str) -> None:
    cfg = EXAMPLES / "xsa-409-arm.cfg"
    old = _advisory("XSA-409", before, cfg, arch="arm")
    new = _advisory("XSA-409", after, cfg, arch="arm")
    assert old is not None and new is not None
    assert (old.verdict, old.impact, new.verdict) == ("affected", "availability",
                                                      "not_affected")
    assert _advisory("XSA-409", before, cfg) is None  # an x86 host: not concerned


@pytest.mark.parametrize("before,after", [("4.14.5", "4.14.6"), ("4.15.4", "4.15.5"),
                                          ("4.16.3", "4.16.4"), ("4.17.0", "4.17.1"),
                                          ("4.13.5", "4.18.0")])
def test_xsa427_and_428_boundaries(before: str, after: str) -> None:
    shadow, stubdom = EXAMPLES / "xsa-427-shadow.cfg", EXAMPLES / "xsa-428-stubdom.cfg"
    old = _advisory("XSA-427", before, shadow)
    assert old is not None and (old.verdict, old.impact) == ("affected", "integrity")
    assert _verdict("XSA-427", after, shadow) == "not_affected"
    assert _advisory("XSA-427", before, stubdom) is None  # HAP: no shadow code runs
    old = _advisory("XSA-428", before, stubdom)
    assert old is not None and (old.verdict, old.unbounded) == ("affected", True)
    assert _verdict("XSA-428", after, stubdom) == "not_affected"
    # a device model in dom0 with dom0's privileges gains nothing from the interface
    assert _verdict("XSA-428", before, shadow) == "not_affected"


def test_every_example_guest_meets_its_advisory() -> None:
    """Each file of examples/advisories/ is affected by the advisory it is named after on a
    release before that advisory's fix."""
    cases = {"xsa-150-pod.cfg": ("XSA-150", "4.6.0", "x86", ""),
             "xsa-246-pod-small-pool.cfg": ("XSA-246", "4.9.1", "x86", ""),
             "xsa-344-evtchn.cfg": ("XSA-344", "4.13.0", "x86", ""),
             "xsa-380-maptrack.cfg": ("XSA-380", "4.13.3", "x86",
                                      "gnttab_max_maptrack_frames=4096"),
             "xsa-409-arm.cfg": ("XSA-409", "4.16.2", "arm", ""),
             "xsa-427-shadow.cfg": ("XSA-427", "4.17.0", "x86", ""),
             "xsa-428-stubdom.cfg": ("XSA-428", "4.17.0", "x86", "")}
    assert sorted(cases) == sorted(p.name for p in EXAMPLES.glob("*.cfg"))
    for name, (adv, version, arch, cmdline) in cases.items():
        assert _verdict(adv, version, EXAMPLES / name, arch=arch, cmdline=cmdline) == "affected"


def test_figures_are_the_closed_forms_priced() -> None:
    """The audit's XSA-150 and XSA-380 figures are the model's closed forms priced with the
    cost profile: no other formula (the one-model rule)."""
    from xenvmmu.model import analytic
    from xenvmmu.versions import profile_for

    costs = default_profile()
    beh = profile_for("4.6.0").paging
    found = _advisory("XSA-150", "4.6.0", EXAMPLES / "xsa-150-pod.cfg")
    est = analytic.pod_sweep(65536 * 256, 16384 * 256, "intel", beh)
    assert found is not None
    assert found.worst_case_ms == round(est.longest_ns(costs.ns_per_unit) / 1e6, 3)
    assert found.worst_case_ms_low == round(est.longest_ns(costs.low_ns) / 1e6, 3)
    beh = profile_for("4.13.3").paging
    found = _advisory("XSA-380", "4.13.3", 'name = "g"\ntype = "pvh"\nmemory = 1024\n')
    est = analytic.maptrack_release(1024 * 256, 256, beh)
    assert found is not None
    assert found.worst_case_ms == round(est.longest_ns(costs.ns_per_unit) / 1e6, 3)


def test_each_advisory_points_at_its_own_setting() -> None:
    """SARIF locations: XSA-495 at the hap line, XSA-410 at the memory size, XSA-344 at
    max_event_channels (registry ``decided_by``), not all at XSA-97's deciding line."""
    cfg = ('name = "g"\ntype = "hvm"\nmemory = 8388608\nhap = 0\nshadow_memory = 20000\n'
           "max_event_channels = 131071\n")
    by = {a: _advisory(a, "4.13.0", cfg) for a in ("XSA-344", "XSA-410", "XSA-495")}
    keys = {a: (f.decisive.key, f.decisive.line) for a, f in by.items()
            if f is not None and f.decisive is not None}
    assert keys == {"XSA-344": ("max_event_channels", 6), "XSA-410": ("memory", 3),
                    "XSA-495": ("hap", 4)}
