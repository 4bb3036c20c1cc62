"""HostSpec from `xl info` fixtures, from flags, and merged."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xenvmmu.toolstack.host import (
    HostOverrides,
    HostSpec,
    InputFileError,
    host_from_flags,
    host_from_xl_info,
    load_host,
    merge_host,
    parse_changeset,
    parse_xl_info,
)
from xenvmmu.versions import XenVersion

# file -> version, arch, cpu_hap, cpu_hap_assumed, hap_enabled, hap_available,
#         watchdog, watchdog_timeout, changeset date (UTC day or None), XSA-97 fix
HOSTS = {
    "xl-info_4.2.5_x86-intel_cmdline-hap0.txt":
        # hap=0 is ignored: Xen 4.2 has no `hap` option (back in 4.3.0, bf56007693)
        ("4.2.5", "x86", True, True, True, True, False, 5, None, False),
    "xl-info_4.3.3_x86-intel-ept_watchdog.txt":
        ("4.3.3", "x86", True, True, True, True, True, 10, None, False),
    "xl-info_4.4.0_x86-intel-ept.txt":
        ("4.4.0", "x86", True, True, True, True, False, 5, None, False),
    "xl-info_4.4.1_x86-intel-ept_debian.txt":
        ("4.4.1", "x86", True, True, True, True, True, 5, None, False),
    "xl-info_4.4.2_x86-amd-npt_hap1gb-off.txt":
        ("4.4.2", "x86", True, True, True, True, False, 5, date(2015, 3, 19), True),
    "xl-info_4.5-unstable_x86-intel_dev-build-2014-09-12.txt":
        ("4.5-unstable", "x86", True, True, True, True, False, 5, date(2014, 9, 12), False),
    "xl-info_4.5.0_x86-intel-ept.txt":
        ("4.5.0", "x86", True, True, True, True, False, 5, None, True),
    "xl-info_4.17.0_x86-intel-hap.txt":
        ("4.17.0", "x86", True, False, True, True, False, 5, date(2022, 10, 11), True),
    "xl-info_4.17.3_x86-amd_cmdline-hap0_no-hap-in-virt_caps.txt":
        ("4.17.3", "x86", None, False, False, False, True, 10, date(2023, 12, 18), True),
    "xl-info_4.17.0_arm64.txt":
        ("4.17.0", "arm", None, False, True, None, False, 5, date(2022, 10, 11), True),
}


@pytest.fixture(scope="module")
def hosts_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures" / "hosts"


def test_every_fixture_is_listed(hosts_dir: Path) -> None:
    assert {p.name for p in hosts_dir.glob("*.txt")} == set(HOSTS)


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_fixture_host(hosts_dir: Path, name: str) -> None:
    version, arch, cpu, assumed, enabled, available, wd, timeout, day, fixed = HOSTS[name]
    h = load_host(hosts_dir / name)
    assert str(h.xen_version) == version
    assert h.arch == arch
    assert (h.cpu_hap, h.cpu_hap_assumed, h.hap_enabled, h.hap_available) == (
        cpu, assumed, enabled, available)
    assert (h.watchdog, h.watchdog_timeout) == (wd, timeout)
    when = h.changeset_date
    assert isinstance(when, datetime) or when is None
    assert (when.astimezone(UTC).date() if when else None) == day
    assert h.profile().xsa97.value is fixed
    assert h.source == str(hosts_dir / name)
    assert h.warnings == ()
    assert h.hap_reasons and h.watchdog_reason
    if assumed:
        assert any("assumed" in r for r in h.hap_reasons)


def test_fixture_details(hosts_dir: Path) -> None:
    h = load_host(hosts_dir / "xl-info_4.4.1_x86-intel-ept_debian.txt")
    assert h.cmdline == "placeholder dom0_mem=2048M,max:2048M watchdog"
    assert h.line_of("xen_commandline") == 28
    amd = load_host(hosts_dir / "xl-info_4.4.2_x86-amd-npt_hap1gb-off.txt")
    assert (amd.options.hap_1gb, amd.options.hap_2mb, amd.hap_available) == (False, False, True)
    assert amd.changeset == "39f513b"
    old = load_host(hosts_dir / "xl-info_4.2.5_x86-intel_cmdline-hap0.txt")
    assert old.info is not None and old.info.get("xen_version") is None  # composed
    assert old.options.hap_ignored == "hap=0" and old.options.hap_token is None
    assert old.virt_caps == ("hvm", "hvm_directio")
    new = load_host(hosts_dir / "xl-info_4.17.0_x86-intel-hap.txt")
    assert new.virt_caps is not None and "hap" in new.virt_caps
    dev = load_host(hosts_dir / "xl-info_4.5-unstable_x86-intel_dev-build-2014-09-12.txt")
    assert dev.xen_version.is_development and dev.changeset == "4218cde"


def test_from_flags() -> None:
    h = host_from_flags("4.4.1", cmdline="hap=0 watchdog", cpu_hap=True)
    assert (h.hap_enabled, h.hap_available, h.cpu_hap_assumed, h.watchdog) == (
        False, False, False, True)
    assert h.source is None and h.info is None
    assumed = host_from_flags("4.17.0")
    assert assumed.cpu_hap and assumed.cpu_hap_assumed and assumed.hap_available
    assert "no `xl info` virt_caps" in assumed.hap_reasons[-1]
    nohap = host_from_flags(XenVersion.parse("4.4.0"), cpu_hap=False)
    assert nohap.hap_available is False and nohap.hap_enabled
    arm = host_from_flags("4.17.0", arch="arm")
    assert arm.hap_available is None and arm.cpu_hap is None
    wd = host_from_flags("4.4.0", watchdog_timeout=7)
    assert (wd.watchdog, wd.watchdog_timeout) == (True, 7)


def test_flags_override_xl_info(shared_dir: Path) -> None:
    h = load_host(shared_dir / "fixtures/hosts/xl-info_4.4.0_x86-intel-ept.txt",
                  HostOverrides(cpu_hap=False))
    assert (h.cpu_hap, h.cpu_hap_assumed, h.hap_available) == (False, False, False)
    merged = merge_host(h, HostOverrides(cmdline="hap=0 watchdog_timeout=3",
                                         xen_version=XenVersion.parse("4.4.2")))
    assert str(merged.xen_version) == "4.4.2" and merged.cpu_hap is False  # kept
    assert (merged.hap_enabled, merged.watchdog, merged.watchdog_timeout) == (False, True, 3)
    back = merge_host(merged, HostOverrides(cpu_hap=True, watchdog=False))
    assert back.hap_available is False  # command line still says hap=0
    assert back.watchdog is False and back.watchdog_timeout == 3
    assert merge_host(back, HostOverrides(cmdline="")).hap_available is True


def test_flag_contradicting_virt_caps_warns(shared_dir: Path) -> None:
    h = load_host(shared_dir / "fixtures/hosts/xl-info_4.17.0_x86-intel-hap.txt",
                  HostOverrides(cpu_hap=False))
    assert h.cpu_hap is False and h.hap_available is False
    assert any("contradicts virt_caps" in w for w in h.warnings)


def _info(**fields: str) -> str:
    base = {"machine": "x86_64", "xen_major": "4", "xen_minor": "13", "xen_extra": ".0",
            "virt_caps": "pv hvm hvm_directio pv_directio hap shadow",
            "xen_commandline": "dom0_mem=1G", "xen_changeset": "unavailable"}
    base.update(fields)
    return "".join(f"{k:<23}: {v}\n" for k, v in base.items())


def test_virt_caps_without_hap_on_413_means_no_ept() -> None:
    h = _host(_info(virt_caps="pv hvm shadow"))
    assert (h.cpu_hap, h.cpu_hap_assumed, h.hap_available) == (False, False, False)


def _host(text: str) -> HostSpec:
    return host_from_xl_info(parse_xl_info(text, "test.txt"))


def test_robust_lines() -> None:
    text = _info().replace("\n", "\r\n") + "cpu_topology           :\ncpu:    core\n  0:  0\n"
    h = _host("garbage line without colon\n" + text + "xend_config_format     : 4\n")
    assert str(h.xen_version) == "4.13.0" and h.cpu_hap is True
    assert _host(_info(xen_extra="-unstable")).xen_version.is_development
    # xen_version line disagreeing with the parts: the parts win, with a warning
    odd = _host(_info() + "xen_version            : 4.13.1\n")
    assert str(odd.xen_version) == "4.13.0" and odd.warnings
    no_cmdline = _info().replace("xen_commandline", "other")
    assert "no xen_commandline" in _host(no_cmdline).warnings[0]


@pytest.mark.parametrize(
    ("value", "day", "commit"),
    [("Fri Sep 12 16:39:44 2014 +0530 git:4218cde", date(2014, 9, 12), "4218cde"),
     ("Thu Oct  2 12:31:07 2014 +0200 git:0123abcd-dirty", date(2014, 10, 2), "0123abcd"),
     ("unavailable", None, None),
     ("Sometime git:abcdef", None, "abcdef")],
)
def test_parse_changeset(value: str, day: date | None, commit: str | None) -> None:
    when, got = parse_changeset(value)
    assert (when.date() if when else None) == day and got == commit


# --- hostile inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"   \n\n", "empty file"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00garbage", "binary data"),
        (bytes(range(256)) * 4, "binary data"),
        (b"\xff\xfe\xfa random high bytes \xc3\x28 no colon", "not `xl info` output"),
        (b'[{"domid": 1, "config": {}}]', "not `xl info` output"),
        (b"xen_major : 4\nxen_minor : 4\nxen_extra : .1\nmachine : x86_64\n"
         b"xen_major : 4\n", "second `xen_major` line"),
        (b"xen_major : 99999999999999999999\nxen_minor : 4\nxen_extra : .1\n", ":1: "),
        (b"xen_major : 4\nxen_minor : 4\nxen_extra : banana\n", ":1: "),
        (b"xen_major : 4\nxen_minor : 4\nxen_extra : .1\nmachine : riscv64\n",
         "unknown architecture"),
    ],
)
def test_hostile_xl_info(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "host.txt"
    path.write_bytes(content)
    with pytest.raises(InputFileError) as e:
        load_host(path)
    assert str(path) in str(e.value)
    assert message in str(e.value)
    assert e.value.path == str(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot read"):
        load_host(tmp_path / "nope.txt")


def test_moved_names_stay_importable_from_host() -> None:
    from xenvmmu import toolstack
    from xenvmmu.toolstack import host, inputs, xlinfo

    assert host.InputFileError is inputs.InputFileError is toolstack.InputFileError
    assert (host.XlInfo, host.parse_xl_info, host.parse_changeset) == (
        xlinfo.XlInfo, xlinfo.parse_xl_info, xlinfo.parse_changeset)


def test_flags_need_a_version() -> None:
    with pytest.raises(ValueError):
        host_from_flags("not-a-version")


@settings(max_examples=200)
@given(st.binary(max_size=400) | st.text(alphabet="xen_majorinf :.4\n-", max_size=200))
def test_xl_info_any_input(data: bytes | str) -> None:
    try:
        host_from_xl_info(parse_xl_info(data, "h.txt"))
    except InputFileError as e:
        assert "h.txt" in str(e)
