"""The advisory registry: its data, its agreement with the release table, and the per-guest
findings it gives."""

from __future__ import annotations

import pytest

from xenvmmu._branches import BRANCHES
from xenvmmu.advisories import RegistryError, advisory, registry
from xenvmmu.audit.rules import assess
from xenvmmu.audit.settings import AuditSettings
from xenvmmu.cli import main
from xenvmmu.costs import default_profile
from xenvmmu.toolstack import guest_from_xlcfg, host_from_flags
from xenvmmu.versions import XenVersion, profile_for

SETTINGS = AuditSettings(default_profile())


def _finding(version: str, mib: int, *, shadow: bool = False, vendor: str = "intel"):  # type: ignore[no-untyped-def]
    host = host_from_flags(version, cpu_vendor=vendor)  # type: ignore[arg-type]
    cfg = f'name = "g"\nbuilder = "hvm"\nmemory = {mib}\nvcpus = 4\n' + ("hap = 0\n" if shadow
                                                                          else "")
    guest = guest_from_xlcfg(cfg.encode(), host.profile(), source="g.cfg")
    return assess(guest, host, host.profile(), SETTINGS)


def test_registry_is_complete_and_sourced() -> None:
    ids = [a.id for a in registry()]
    assert ids[0] == "XSA-97" and {"XSA-410", "XSA-495"} <= set(ids)
    for a in registry():
        assert a.sources and a.cves and a.operations and a.started_by and a.sized_by
    with pytest.raises(RegistryError, match="unknown advisory"):
        advisory("XSA-1")
    assert advisory("xsa-410").id == "XSA-410"


@pytest.mark.parametrize("adv", [a for a in registry() if a.behaviour], ids=lambda a: a.id)
def test_registry_agrees_with_the_release_table(adv) -> None:  # type: ignore[no-untyped-def]
    """first_fixed / fixed_from say what the release table says, at every point release
    from .0 to the fix and one past it, on every supported branch."""
    for row in BRANCHES:
        if not row.supported:
            continue
        first = dict(adv.first_fixed).get(f"{row.branch[0]}.{row.branch[1]}")
        top = int(first.split(".")[2]) + 1 if first and first != "none" else 1
        for micro in range(top + 1):
            v = XenVersion(row.branch[0], row.branch[1], micro)
            table = getattr(profile_for(v).paging, adv.behaviour)
            assert adv.fixed_in(v) is table, (adv.id, str(v))


def test_shadow_guest_gets_xsa495_without_an_upgrade() -> None:
    f = _finding("4.18.5", 65536, shadow=True)
    by_id = {a.id: a for a in f.advisories}
    x = by_id["XSA-495"]
    assert x.verdict == "affected" and x.fixed is False
    assert not any("Upgrade" in m for m in x.mitigations)
    assert any("Use HAP" in m for m in x.mitigations)
    assert any("declared from 4.18.6" in r for r in x.reasons)
    later = {a.id: a for a in _finding("4.18.6", 65536, shadow=True).advisories}
    assert any("SUPPORT.md says so" in r for r in later["XSA-495"].reasons)
    # a HAP guest has no XSA-495 finding
    assert "XSA-495" not in {a.id for a in _finding("4.18.5", 65536).advisories}


def test_xsa410_boundary_on_8tib() -> None:
    before = {a.id: a for a in _finding("4.16.2", 8 << 20).advisories}["XSA-410"]
    after = {a.id: a for a in _finding("4.16.3", 8 << 20).advisories}["XSA-410"]
    assert before.verdict == "affected" and before.fixed is False
    assert "Upgrade Xen to 4.16.3 or later (XSA-410 fixed)." in before.mitigations
    assert after.verdict == "not_affected" and after.fixed is True


def test_xsa97_entry_keeps_the_guest_verdict() -> None:
    f = _finding("4.4.0", 1 << 20)
    (x97,) = [a for a in f.advisories if a.id == "XSA-97"]
    assert x97.verdict == f.verdict and x97.worst_case_ms == f.worst_case_ms


def test_advisories_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advisories"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("XSA-97") and "XSA-495" in text and "source" in text
    assert main(["advisories", "XSA-999"]) == 2


def _evtchn(version: str, channels: int | None, kind: str = "hvm"):  # type: ignore[no-untyped-def]
    host = host_from_flags(version, cpu_vendor="intel")
    cfg = f'name = "g"\nbuilder = "{"hvm" if kind == "hvm" else "generic"}"\nmemory = 1024\n'
    if kind != "hvm" and host.profile().xl_type_key:
        cfg += f'type = "{kind}"\n'
    if channels is not None:
        cfg += f"max_event_channels = {channels}\n"
    guest = guest_from_xlcfg(cfg.encode(), host.profile(), source="g.cfg")
    f = assess(guest, host, host.profile(), SETTINGS)
    return {a.id: a for a in f.advisories}["XSA-344"]


def test_xsa344_many_event_channels_before_the_fix() -> None:
    x = _evtchn("4.13.0", 131071)
    assert x.verdict == "affected" and x.fixed is False
    assert x.worst_case_ms is not None and x.worst_case_ms >= SETTINGS.budget_ms
    assert "Upgrade Xen to 4.13.2 or later (XSA-344 fixed)." in x.mitigations
    assert any(m.startswith("Set max_event_channels = ") for m in x.mitigations)
    # the default 1023 channels are harmless; the fix bounds every section to 64 ports
    assert _evtchn("4.13.0", None).verdict == "not_affected"
    fixed = _evtchn("4.13.2", 131071)
    assert fixed.verdict == "not_affected" and fixed.fixed is True
    assert fixed.worst_case_ms is not None and fixed.worst_case_ms < 0.1
    # PV guests too: the event channels are not a paging matter
    assert _evtchn("4.13.0", 131071, kind="pv").verdict == "affected"


def test_advisory_flag_narrows_the_json(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import json

    cfg = tmp_path / "g.cfg"
    cfg.write_text('name = "g"\nbuilder = "hvm"\nmemory = 65536\nvcpus = 4\nhap = 0\n')
    main(["audit", "--xen-version", "4.18.5", "--format", "json", str(cfg)])
    (g,) = json.loads(capsys.readouterr().out)["guests"]
    # every x86 HVM advisory of the registry concerns a shadow HVM guest (Arm's XSA-409 not)
    assert [a["id"] for a in g["advisories"]] == [
        "XSA-97", "XSA-150", "XSA-246", "XSA-344", "XSA-380", "XSA-410", "XSA-427", "XSA-428",
        "XSA-495"]
    main(["audit", "--xen-version", "4.18.5", "--advisory", "xsa-495,XSA-410", "--format",
          "json", str(cfg)])
    (g,) = json.loads(capsys.readouterr().out)["guests"]
    assert [a["id"] for a in g["advisories"]] == ["XSA-410", "XSA-495"]
    assert main(["audit", "--xen-version", "4.18.5", "--advisory", "XSA-1", str(cfg)]) == 2


def test_advisories_in_the_table_and_csv(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import csv
    import io

    cfg = tmp_path / "big.cfg"
    cfg.write_text('name = "big"\nbuilder = "hvm"\nmemory = 8388608\nvcpus = 4\n'
                   "max_event_channels = 131071\n")
    main(["audit", "--xen-version", "4.13.0", "--cpu-vendor", "intel", "-v", str(cfg)])
    table = capsys.readouterr().out
    assert "  XSA-344: affected" in table and "Upgrade Xen to 4.13.2 or later" in table
    assert "  XSA-410: affected" in table
    main(["audit", "--xen-version", "4.13.0", "--cpu-vendor", "intel", "--format", "csv",
          str(cfg)])
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["advisories"].split() == [
        "XSA-97:not_affected", "XSA-150:not_affected", "XSA-246:not_affected",
        "XSA-344:affected", "XSA-380:affected", "XSA-410:affected", "XSA-428:not_affected"]
