"""Xen version parsing/ordering and the per-release Profile table."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenvmmu import xlcfg
from xenvmmu.versions import (
    Known,
    Unknown,
    VersionError,
    XenVersion,
    default_pool_kib,
    first_fixed_release,
    profile_for,
    upgrade_target,
)

V = XenVersion.parse

# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "major", "minor", "micro", "extra", "dev"),
    [
        ("4.4.1", 4, 4, 1, "", False),
        ("4.5.0", 4, 5, 0, "", False),
        ("4.5-unstable", 4, 5, None, "-unstable", True),
        ("4.17.3-pre", 4, 17, 3, "-pre", True),
        ("4.4.2-pre", 4, 4, 2, "-pre", True),
        ("4.5-rc1", 4, 5, None, "-rc1", True),
        ("4.5.0-rc2", 4, 5, 0, "-rc2", True),
        ("4.2.5-33.el6", 4, 2, 5, "-33.el6", False),
        ("4.1.6.1", 4, 1, 6, ".1", False),
        ("4.23-unstable", 4, 23, None, "-unstable", True),
        ("  4.4.1\n", 4, 4, 1, "", False),
        ("4.4", 4, 4, None, "", False),
    ],
)
def test_parse(text: str, major: int, minor: int, micro: int | None, extra: str,
               dev: bool) -> None:
    v = V(text)
    assert (v.major, v.minor, v.micro, v.extra) == (major, minor, micro, extra)
    assert v.is_development is dev
    assert V(str(v)) == v


def test_vendor_and_dev_tag() -> None:
    assert V("4.2.5-33.el6").vendor == "-33.el6"
    assert V("4.2.5-33.el6").dev_tag is None
    assert V("4.4.2-pre-ubuntu1").dev_tag == "pre"
    assert V("4.4.2-pre-ubuntu1").vendor == "-ubuntu1"
    assert V("4.5-rc10").dev_tag == "rc10"


@pytest.mark.parametrize(
    ("major", "minor", "extra", "expected"),
    [
        ("4", "4", ".1", "4.4.1"),
        ("4", "2", ".5", "4.2.5"),
        ("4", "5", "-unstable", "4.5-unstable"),
        ("4", "4", ".2-pre", "4.4.2-pre"),
        ("4", "17", ".0", "4.17.0"),
        (" 4 ", "3", ".3 ", "4.3.3"),
    ],
)
def test_from_xl_info(major: str, minor: str, extra: str, expected: str) -> None:
    assert str(XenVersion.from_xl_info(major, minor, extra)) == expected


@pytest.mark.parametrize(
    "text",
    ["", "4", "4.", "4.x", "four", "4.4.1 junk", "4.4.1\n4.5.0", "4.99999.1", "\x00",
     "4.4.1-" + "x" * 200, "x" * 10_000, "4.4.-1", "-4.4.1", "4.4.1 -pre"],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(VersionError, match="Xen version"):
        V(text)


def test_from_xl_info_rejects_non_numbers() -> None:
    with pytest.raises(VersionError):
        XenVersion.from_xl_info("four", "4", ".1")


def test_constructor_validates() -> None:
    with pytest.raises(VersionError):
        XenVersion(4, 5, None, ".1")  # would read back as 4.5.1
    with pytest.raises(VersionError):
        XenVersion(4, 5, None, "+x")
    with pytest.raises(VersionError):
        XenVersion(4, 5, 0, "9")
    with pytest.raises(VersionError):
        XenVersion(-1, 5)


def test_ordering_by_release() -> None:
    ordered = ["4.1.6.1", "4.2.5", "4.2.5-33.el6", "4.3.3", "4.3.4", "4.4.0", "4.4.1",
               "4.4.2-pre", "4.4.2", "4.5-unstable", "4.5-rc1", "4.5-rc2", "4.5.0",
               "4.5.1-pre", "4.5.1", "4.10.0", "4.17.3-pre", "4.17.3"]
    versions = [V(s) for s in ordered]
    assert sorted(reversed(versions)) == versions
    assert V("4.10.0") > V("4.9.4")  # numeric, not string, comparison


_EXTRAS = st.sampled_from(["", "-pre", "-rc1", "-rc12", "-unstable", "-33.el6", "+deb8u1",
                           "-pre-ubuntu1", ".1", "~beta", "_x"])


@st.composite
def versions(draw: st.DrawFn) -> XenVersion:
    micro = draw(st.none() | st.integers(0, 20))
    extra = draw(_EXTRAS)
    if micro is None and not extra.startswith("-"):
        extra = ""
    return XenVersion(draw(st.integers(0, 20)), draw(st.integers(0, 30)), micro, extra)


@given(versions())
def test_parse_str_round_trip(v: XenVersion) -> None:
    assert XenVersion.parse(str(v)) == v


@given(versions(), versions())
def test_ordering_is_total(a: XenVersion, b: XenVersion) -> None:
    assert [a < b, a == b, a > b].count(True) == 1
    assert (a <= b) == (a < b or a == b)
    assert (a >= b) == (a > b or a == b)


@given(versions(), versions(), versions())
def test_ordering_is_transitive(a: XenVersion, b: XenVersion, c: XenVersion) -> None:
    x, y, z = sorted([a, b, c])
    assert x <= y <= z and x <= z


# --- Profile: release boundaries ------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "fixed"),
    [
        ("4.1.6.1", False), ("4.2.0", False), ("4.2.5", False), ("4.2.5-33.el6", False),
        ("4.3.0", False), ("4.3.3", False), ("4.3.4", True), ("4.4.0", False),
        ("4.4.1", False), ("4.4.2", True), ("4.4.4", True), ("4.5.0", True), ("4.6.0", True),
        ("4.12.0", True), ("4.17.3", True), ("5.0.0", True),
    ],
)
def test_xsa97_fix_by_release(version: str, fixed: bool) -> None:
    p = profile_for(version)
    assert isinstance(p.xsa97, Known)
    assert p.xsa97.value is fixed
    assert p.logdirty_preemptible is fixed


def test_441_has_fix_and_revert() -> None:
    reason = profile_for("4.4.1").xsa97.reason
    assert "89f167e04e" in reason and "1f161c7d40" in reason


@pytest.mark.parametrize(
    ("version", "retype", "teardown", "p2m_free"),
    [
        ("4.4.1", "sweep", False, False),
        ("4.4.3", "sweep", False, False),
        ("4.4.4", "sweep", True, False),  # 2015 teardown backport e19042ffbd
        ("4.5.0", "lazy", False, False),
        ("4.5.1", "lazy", False, False),  # hap_teardown(d) @ RELEASE-4.5.1
        ("4.5.2", "lazy", True, False),  # backport 9e6379ed39 @ RELEASE-4.5.2
        ("4.5.5", "lazy", True, False),
        ("4.6.0", "lazy", True, False),
        ("4.12.0", "lazy", True, False),  # nothing of XSA-410 on stable-4.12
        ("4.13.4", "lazy", True, False),  # XSA-410 backports: absent @ RELEASE-4.13.4
        ("4.13.5", "lazy", True, True),  # eed4ef4177
        ("4.14.5", "lazy", True, False),
        ("4.14.6", "lazy", True, True),  # 804f83bfba
        ("4.15.3", "lazy", True, False),
        ("4.15.4", "lazy", True, True),  # b03074bb47
        ("4.16.2", "lazy", True, False),
        ("4.16.3", "lazy", True, True),  # a603386b42
        ("4.16.4", "lazy", True, True),
        ("4.17.0", "lazy", True, True),
    ],
)
def test_other_behaviours(version: str, retype: str, teardown: bool, p2m_free: bool) -> None:
    p = profile_for(version)
    assert (p.hap_retype, p.pool_teardown_preemptible, p.p2m_free_preemptible) == (
        retype, teardown, p2m_free)


@pytest.mark.parametrize(
    ("version", "dialect"),
    [("4.2.0", "4.2"), ("4.2.1", "4.2.1"), ("4.2.5", "4.2.1"), ("4.3.0", "4.3"),
     ("4.4.1", "4.3"), ("4.5.0", "4.3"), ("4.6.1", "4.6"), ("4.7.0", "4.7"),
     ("4.12.0", "4.7"), ("4.13.0", "4.13"), ("4.17.3", "4.13"), ("4.1.6.1", "4.2"),
     ("4.23-unstable", "4.13")],
)
def test_dialect(version: str, dialect: str) -> None:
    assert profile_for(version).dialect == dialect
    assert dialect in xlcfg.DIALECTS


def test_412_413_boundary() -> None:
    old, new = profile_for("4.12.3"), profile_for("4.13.0")
    assert not old.hap_default_follows_host and new.hap_default_follows_host
    assert not old.virt_caps_reports_hap and new.virt_caps_reports_hap
    assert (old.pool_by, new.pool_by) == ("xl", "libxl")
    assert old.pool_formula == new.pool_formula == "xl"


def test_416_417_boundary() -> None:
    assert profile_for("4.16.5").pool_formula == "xl"
    assert profile_for("4.17.0").pool_formula == "libxl-4.17"


def test_xl_rules_by_release() -> None:
    assert not profile_for("4.9.0").xl_type_key and profile_for("4.10.0").xl_type_key
    assert [profile_for(f"4.{m}.0").pvh_v1 for m in (3, 4, 8, 9)] == [False, True, True, False]
    assert profile_for("4.11.0").arm_default_type == "pv"
    assert profile_for("4.12.0").arm_default_type == "pvh"
    assert not profile_for("4.1.2").supported and profile_for("4.2.0").supported


def test_cmdline_rules_come_from_profile() -> None:
    # strict parse_params (63e8a1e5ff, 94dfb8bf8d) and char opt[128] first in RELEASE-4.10.0
    old, new = profile_for("4.9.4").cmdline, profile_for("4.10.0").cmdline
    assert (old.bool_values, old.token_max) == ("lenient", 99)
    assert (new.bool_values, new.token_max) == ("strict", 127)
    assert profile_for("4.17.0").cmdline.bool_values == "strict"


def test_hap_option_from_4_3() -> None:
    # removed by 302b8a7c00 (2008), back with bf56007693 first in RELEASE-4.3.0
    assert not profile_for("4.2.5").cmdline.hap_option
    assert not profile_for("4.0.0").cmdline.hap_option
    assert profile_for("4.3.0").cmdline.hap_option


@pytest.mark.parametrize(
    ("version", "custom"),
    [("4.3.4", False), ("4.4.0", False), ("4.4.1", False), ("4.4.2", True),  # ae5c3023da
     ("4.5.0", True), ("4.9.0", True), ("4.17.0", True)],  # 3ea2ba980a
)
def test_watchdog_force_by_release(version: str, custom: bool) -> None:
    assert profile_for(version).cmdline.watchdog_custom is custom


def test_xsa410_backport_pre_builds_use_the_stable_dates() -> None:
    before = profile_for("4.16.3-pre", changeset_date=date(2022, 9, 1))
    after = profile_for("4.16.3-pre", changeset_date=date(2022, 10, 20))
    assert not before.p2m_free_preemptible and after.p2m_free_preemptible
    tear = profile_for("4.5.2-pre", changeset_date=date(2015, 9, 20))
    assert tear.pool_teardown_preemptible


def test_newer_and_older_than_table() -> None:
    assert "newer than the table" in profile_for("4.23.0").notes[0]
    p = profile_for("3.4.2")
    assert not p.supported and p.xsa97.value is False and p.notes


# --- development builds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "when", "expected"),
    [
        ("4.5-unstable", date(2014, 9, 12), False),  # fixture: after the revert, before re-fix
        ("4.5-unstable", date(2014, 10, 20), True),  # after 070493dfd2 (2014-10-06)
        ("4.5-unstable", date(2014, 7, 1), False),  # before the August fix
        ("4.5-unstable", date(2014, 8, 15), None),  # August fix, later reverted
        ("4.5-unstable", date(2014, 10, 6), None),  # the re-fix day itself
        ("4.5-unstable", date(2014, 10, 7), None),  # within a day: author dates are fuzzy
        ("4.5-unstable", None, None),  # no changeset date
        ("4.5-rc1", None, None),
        ("4.5.0-rc2", date(2014, 11, 20), True),
        ("4.4.2-pre", date(2014, 10, 20), True),  # stable-4.4 re-fix c8ed54edda 2014-10-17
        ("4.4.2-pre", date(2014, 9, 30), False),
        ("4.4.3-pre", None, True),  # after 4.4.2, which has it
        ("4.3.4-pre", date(2014, 11, 1), True),
        ("4.2.6-pre", date(2014, 11, 5), True),  # stable-4.2 re-fix c844974caf 2014-10-31
        ("4.2.6-pre", date(2014, 10, 20), False),
        ("4.4.0-rc1", None, False),  # before 4.4.0, which lacks it
        ("4.6-unstable", None, True),  # 4.5.0 already had it
        ("4.17.3-pre", None, True),
    ],
)
def test_development_builds(version: str, when: date | None, expected: bool | None) -> None:
    c = profile_for(version, changeset_date=when).xsa97
    assert c.value is expected
    assert c.known is (expected is not None)
    assert c.reason
    if expected is None:
        assert isinstance(c, Unknown)
        assert profile_for(version, changeset_date=when).logdirty_preemptible is False


def test_changeset_datetime_in_utc() -> None:
    late = datetime(2014, 10, 9, 1, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert profile_for("4.5-unstable", changeset_date=late).xsa97.value is True


def test_dev_build_other_behaviours() -> None:
    p = profile_for("4.5-unstable", changeset_date=date(2014, 4, 1))
    assert p.hap_retype == "sweep"  # lazy recalculation landed 2014-05-02
    assert profile_for("4.5-unstable", changeset_date=date(2014, 9, 12)).hap_retype == "lazy"
    tear = profile_for("4.4.4-pre").assess("pool_teardown_preemptible")
    assert isinstance(tear, Unknown) and "4.4.3" in tear.reason
    p2m = profile_for("4.17-unstable", changeset_date=date(2022, 11, 1))
    assert p2m.p2m_free_preemptible


def test_version_without_micro() -> None:
    assert isinstance(profile_for("4.4").xsa97, Unknown)
    assert profile_for("4.2").xsa97.value is False
    assert profile_for("4.6").xsa97.value is True


# --- patches ------------------------------------------------------------------


def test_patched_distribution_build() -> None:
    p = profile_for("4.2.5-33.el6", patched=frozenset({"xsa97-hap"}))
    assert p.logdirty_preemptible and p.xsa97.value is True
    assert "xsa97-hap" in p.xsa97.reason
    assert p.upgrade_to is None
    assert p.hap_retype == "sweep"  # the patch does not bring lazy recalculation
    assert profile_for("4.16.2", patched=frozenset({"xsa410"})).p2m_free_preemptible
    with pytest.raises(VersionError, match="unknown patch"):
        profile_for("4.4.1", patched=frozenset({"xsa97"}))


@pytest.mark.parametrize(
    ("version", "first", "upgrade"),
    [("4.2.5", None, "4.3.4"), ("4.3.3", "4.3.4", "4.3.4"), ("4.4.1", "4.4.2", "4.4.2"),
     ("4.4.2", "4.4.2", None), ("4.1.6.1", None, "4.3.4"), ("4.5.0", "4.5.0", None)],
)
def test_first_fixed_and_upgrade(version: str, first: str | None, upgrade: str | None) -> None:
    p = profile_for(version)
    assert p.xsa97_first_fixed == (V(first) if first else None)
    assert p.upgrade_to == (V(upgrade) if upgrade else None)
    assert first_fixed_release(V(version).branch) == p.xsa97_first_fixed
    assert upgrade_target(V("4.5-unstable")) == V("4.5.0")


def test_stub_constructor_still_works() -> None:
    p = profile_for("4.4.0")
    from xenvmmu.versions import Profile

    q = Profile(p.version, p.dialect, False, "sweep", False, False, "xl", False, False)
    assert q.dialect == "4.3"


# --- default paging pool --------------------------------------------------------------------

_GIB = 1024


@pytest.mark.parametrize(
    ("ram_gib", "vcpus", "shadow_mib", "hap_mib"),
    [  # xen-config.md §2.1 worked examples (MiB)
        (1, 1, 9, 5), (1, 4, 12, 8), (1, 32, 40, 36),
        (4, 1, 33, 17), (4, 4, 36, 20), (4, 32, 64, 48),
        (64, 1, 513, 257), (64, 4, 516, 260), (64, 32, 544, 288),
        (256, 1, 2049, 1025), (256, 4, 2052, 1028), (256, 32, 2080, 1056),
    ],
)
def test_pool_worked_examples(ram_gib: int, vcpus: int, shadow_mib: int, hap_mib: int) -> None:
    m = ram_gib * _GIB
    for paging in ("hap", "shadow"):
        assert default_pool_kib(m, vcpus, guest_type="hvm", paging=paging,
                                formula="xl") == shadow_mib * 1024
    assert default_pool_kib(m, vcpus, guest_type="hvm", paging="shadow",
                            formula="libxl-4.17") == shadow_mib * 1024
    assert default_pool_kib(m, vcpus, guest_type="pvh", paging="hap",
                            formula="libxl-4.17") == hap_mib * 1024
    assert default_pool_kib(m, vcpus, guest_type="pv", paging=None,
                            formula="libxl-4.17") == hap_mib * 1024
    assert default_pool_kib(m, vcpus, guest_type="pvh", paging=None, arch="arm",
                            formula="libxl-4.17") == hap_mib * 1024 + 512


def test_pool_xend_and_explicit() -> None:
    assert default_pool_kib(1024, 1, guest_type="pv", paging=None, formula="xend") == 0
    assert default_pool_kib(1024, 1, guest_type="hvm", paging="hap", formula="xend") == 9216
    assert default_pool_kib(1024, 1, guest_type="hvm", paging="hap", formula="xend",
                            configured_kib=4096) == 9216  # xend: max(default, configured)
    assert default_pool_kib(1024, 1, guest_type="hvm", paging="hap", formula="xl",
                            configured_kib=4096) == 4096  # xl: replaces
    with pytest.raises(ValueError):
        default_pool_kib(-1, 1, guest_type="hvm", paging="hap", formula="xl")
