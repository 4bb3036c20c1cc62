"""The derived XSA-97 facts of shared/fixtures/README.md, one test per host + guest pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xenvmmu.toolstack.guest import GuestSpec
from xenvmmu.toolstack.host import HostSpec, host_from_flags, load_host
from xenvmmu.toolstack.paging import effective_paging, paging_pool
from xenvmmu.toolstack.xllist import guests_from_xl_list, load_xl_list

H_440 = "xl-info_4.4.0_x86-intel-ept.txt"
H_441 = "xl-info_4.4.1_x86-intel-ept_debian.txt"
H_442 = "xl-info_4.4.2_x86-amd-npt_hap1gb-off.txt"
H_425 = "xl-info_4.2.5_x86-intel_cmdline-hap0.txt"
H_433 = "xl-info_4.3.3_x86-intel-ept_watchdog.txt"
H_45U = "xl-info_4.5-unstable_x86-intel_dev-build-2014-09-12.txt"
H_450 = "xl-info_4.5.0_x86-intel-ept.txt"
H_4170 = "xl-info_4.17.0_x86-intel-hap.txt"
H_4173 = "xl-info_4.17.3_x86-amd_cmdline-hap0_no-hap-in-virt_caps.txt"
H_ARM = "xl-info_4.17.0_arm64.txt"

G_64 = ("xl-list-l_4.4.0_hvm-64gib_hap-default.json", 12)
G_256 = ("xl-list-l_4.4.1_hvm-256gib_hap1.json", 4)
G_SHADOW = ("xl-list-l_4.4.0_hvm-1gib_hap0_shadow4096.json", 9)
G_PV = ("xl-list-l_4.4.0_pv-4gib.json", 15)
G_425 = ("xl-list-l_4.2.5_hvm-1gib_compact.json", 7)
G_ERP = ("xl-list-l_4.5.0_list-dom0-hvm64gib-pv.json", 3)
G_DNS = ("xl-list-l_4.5.0_list-dom0-hvm64gib-pv.json", 5)
G_PVH = ("xl-list-l_4.10.0_pvh-8gib.json", 21)
G_2T = ("xl-list-l_4.17.0_hvm-2tib.json", 2)
G_ARM = ("xl-list-l_4.17.0_arm64-pvh-2gib.json", 1)

GIB = 1024 * 1024  # KiB

# (#, host, guest, paging, max_memkb, pool KiB, pool how, XSA-97 fix in hypervisor)
FACTS = [
    (1, H_440, G_64, "hap", 64 * GIB, 532480, "recorded", False),
    (2, H_441, G_256, "hap", 256 * GIB, 2113536, "recorded", False),
    (3, H_442, G_256, "hap", 256 * GIB, 2113536, "recorded", True),
    (4, H_440, G_SHADOW, "shadow", 1 * GIB, 4194304, "recorded", False),
    (5, H_440, G_PV, None, 4 * GIB, None, "not_applicable", False),
    # The README says "shadow" for fact 6; Xen 4.2 has no hypervisor `hap` option (removed by
    # 302b8a7c00 in 2008, back in 4.3.0 with bf56007693; no boolean_param("hap") in
    # xen/arch/x86/hvm/hvm.c @ RELEASE-4.2.5), so `hap=0` is ignored and the guest stays on HAP.
    (6, H_425, G_425, "hap", 1 * GIB, 9216, "recorded", False),
    (8, H_45U, G_ERP, "hap", 64 * GIB, 532480, "recorded", False),
    (9, H_450, G_ERP, "hap", 64 * GIB, 532480, "recorded", True),
    (10, H_450, G_DNS, None, 512 * 1024, None, "not_applicable", True),
    (11, H_450, G_PVH, "hap", 8 * GIB, 69632, "recorded", True),
    (12, H_4170, G_2T, "hap", 2048 * GIB, 65536 + 8388608, "default", True),
    (13, H_4173, G_2T, "shadow", 2048 * GIB, 65536 + 16777216, "default", True),
    (14, H_ARM, G_ARM, None, 2 * GIB, 2048 + 8192 + 512, "default", True),
]


@pytest.fixture(scope="module")
def fixtures(shared_dir: Path) -> Path:
    return shared_dir / "fixtures"


def _guest(fixtures: Path, which: tuple[str, int]) -> GuestSpec:
    listing = load_xl_list(fixtures / "guests" / which[0])
    return next(g for g in listing.guests if g.domid == which[1])


@pytest.mark.parametrize(("n", "host", "guest", "paging", "ram", "pool", "how", "fixed"),
                         FACTS, ids=[f"fact{f[0]}" for f in FACTS])
def test_fact(fixtures: Path, n: int, host: str, guest: tuple[str, int], paging: str | None,
              ram: int, pool: int | None, how: str, fixed: bool) -> None:
    h = load_host(fixtures / "hosts" / host)
    g = _guest(fixtures, guest)
    profile = h.profile()
    decision = effective_paging(g, h, profile)
    assert decision.mode == paging, decision.reasons
    assert not decision.creation_fails
    assert g.maxmem_kib == ram
    size = paging_pool(g, h, profile, decision)
    assert (size.kib, size.how) == (pool, how), size.reason
    assert profile.xsa97.value is fixed


def test_fact2_watchdog(fixtures: Path) -> None:
    h = load_host(fixtures / "hosts" / H_441)
    assert (h.watchdog, h.watchdog_timeout) == (True, 5)


def test_fact4_default_would_be_10240(fixtures: Path) -> None:
    h = load_host(fixtures / "hosts" / H_440)
    g = _guest(fixtures, G_SHADOW)
    assert paging_pool(g, h, h.profile()).default_kib == 10240
    assert "c_info.hap = false" in effective_paging(g, h, h.profile()).reasons[1]


def test_fact6_hap_option_ignored_on_4_2(fixtures: Path) -> None:
    h = load_host(fixtures / "hosts" / H_425)
    d = effective_paging(_guest(fixtures, G_425), h, h.profile())
    assert d.mode == "hap"
    assert any("'hap=0' ignored" in r and "4.3.0" in r for r in d.reasons)
    # the same command line on 4.3.0 moves the guest to shadow paging
    h43 = host_from_flags("4.3.0", cmdline="hap=0")
    assert effective_paging(_guest(fixtures, G_425), h43, h43.profile()).mode == "shadow"


def test_fact7_433_host_with_64g_guest(fixtures: Path) -> None:
    # 4.4-shaped 64 GiB guest on the 4.3.3 host (the 4.3 JSON is the 4.4 shape, fewer fields)
    h = load_host(fixtures / "hosts" / H_433)
    g = _guest(fixtures, G_64)
    d = effective_paging(g, h, h.profile())
    assert d.mode == "hap"
    assert paging_pool(g, h, h.profile(), d).kib == 520 * 1024
    assert h.profile().xsa97.value is False
    assert h.profile().xsa97_first_fixed is not None
    assert str(h.profile().xsa97_first_fixed) == "4.3.4"
    assert (h.watchdog, h.watchdog_timeout) == (True, 10)


def test_fact8_changeset_date_decides(fixtures: Path) -> None:
    h = load_host(fixtures / "hosts" / H_45U)
    assert h.xen_version.is_development
    assert h.profile().xsa97.known and "2014-09-12" in h.profile().xsa97.reason


def test_fact10_dom0_skipped(fixtures: Path) -> None:
    listing = load_xl_list(fixtures / "guests" / G_ERP[0])
    assert 0 not in [g.domid for g in listing.guests] and listing.notes


def test_fact11_pvh_on_410_host(fixtures: Path) -> None:
    h = host_from_flags("4.10.0", cpu_hap=True)
    g = _guest(fixtures, G_PVH)
    d = effective_paging(g, h, h.profile())
    assert d.mode == "hap" and paging_pool(g, h, h.profile(), d).kib == 69632


def test_fact13_default_follows_host(fixtures: Path) -> None:
    h = load_host(fixtures / "hosts" / H_4173)
    d = effective_paging(_guest(fixtures, G_2T), h, h.profile())
    assert "follows the host" in d.reasons[-1]


def test_fact15_explicit_hap_without_hap_fails(fixtures: Path) -> None:
    doc = json.loads((fixtures / "guests" / G_2T[0]).read_text())
    doc[0]["config"]["c_info"]["hap"] = "True"  # a 4.17 guest with explicit hap=1
    g = guests_from_xl_list(json.dumps(doc)).guests[0]
    h: HostSpec = load_host(fixtures / "hosts" / H_4173)
    d = effective_paging(g, h, h.profile())
    assert (d.mode, d.creation_fails) == (None, True)
    assert "HAP requested but not supported" in d.reasons[-1]
    assert paging_pool(g, h, h.profile(), d).how == "not_applicable"
    ok = load_host(fixtures / "hosts" / H_4170)  # the same guest where HAP exists
    assert effective_paging(g, ok, ok.profile()).mode == "hap"
