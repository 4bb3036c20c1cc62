"""The hypervisor command line with each release's rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenvmmu.toolstack.cmdline import parse_cmdline
from xenvmmu.versions import profile_for

LENIENT = profile_for("4.4.0").cmdline  # xen/common/kernel.c @ RELEASE-4.4.0
CUSTOM = profile_for("4.5.0").cmdline  # lenient parsing, custom `watchdog` (3ea2ba980a)
STRICT = profile_for("4.17.0").cmdline  # parse_params, from 4.10


@pytest.mark.parametrize(
    ("cmdline", "lenient", "strict"),
    [
        ("", True, True),
        ("hap", True, True),
        ("hap=", True, True),
        ("hap=0", False, False),
        ("hap=off", False, False),
        ("hap=false", False, False),
        ("hap=no", False, False),
        ("hap=disable", False, False),
        ("hap=1", True, True),
        ("hap=on", True, True),
        ("hap=yes", True, True),
        ("hap=true", True, True),
        ("hap=enable", True, True),
        ("no-hap", False, False),
        ("no-hap=no", True, True),  # double negative
        ("no-hap=0", True, True),
        ("no-hap=1", False, False),
        ("no-hap=", False, False),
        ("hap=0 hap=1", True, True),  # last occurrence wins
        ("hap=1 hap=0", False, False),
        ("hap=of", True, True),  # lenient: unknown counts as true; strict: keeps default
        ("hap=0 hap=of", True, False),  # strict keeps the PREVIOUS value, not the default
        ("no-hap hap=maybe", True, False),
        ("no-hap=of", False, True),  # lenient: not a false word, so no- asserts false
        ("HAP=0", True, True),  # case-sensitive
        ("Hap=off", True, True),
        ("hap-1gb=0", True, True),
        ("placeholder dom0_mem=2048M hap=0", False, False),  # GRUB2 dummy first word
        ("dom0_mem=1G\thap=0", True, True),  # tab is not a separator
        ("  hap=0   loglvl=all ", False, False),
        ("console=vga -- hap=0", True, True),  # after " -- " belongs to dom0
        ("hap=0 -- hap=1", False, False),
        ("hap_1gb=0 no-hap_2mb", True, True),  # superpage options only
        ("hap=0=1", True, True),
    ],
)
def test_hap_spellings(cmdline: str, lenient: bool, strict: bool) -> None:
    assert parse_cmdline(cmdline, LENIENT).hap is lenient
    assert parse_cmdline(cmdline, STRICT).hap is strict


def test_hap_token_and_errors() -> None:
    opts = parse_cmdline("hap=0 hap=of", STRICT)
    assert opts.hap_token == "hap=0"
    assert opts.errors and "hap=of" in opts.errors[0]
    assert parse_cmdline("hap=0 hap=of", LENIENT).errors == ()
    assert parse_cmdline("loglvl=all", STRICT).hap_token is None


def test_superpage_options() -> None:
    opts = parse_cmdline("hap_1gb=0 no-hap_2mb", LENIENT)
    assert (opts.hap, opts.hap_1gb, opts.hap_2mb) == (True, False, False)


def test_dom0_part() -> None:
    assert parse_cmdline("hap=0 -- root=/dev/sda", STRICT).dom0_part == "root=/dev/sda"
    assert parse_cmdline("hap=0", STRICT).dom0_part == ""


@pytest.mark.parametrize(
    ("cmdline", "lenient", "strict"),
    [  # (watchdog, timeout)
        ("", (False, 5), (False, 5)),
        ("watchdog", (True, 5), (True, 5)),
        ("watchdog=1", (True, 5), (True, 5)),
        ("watchdog=", (True, 5), (True, 5)),
        ("no-watchdog", (False, 5), (False, 5)),
        ("watchdog no-watchdog", (False, 5), (False, 5)),
        ("watchdog_timeout=10", (True, 10), (True, 10)),  # non-zero also enables
        ("watchdog watchdog_timeout=10", (True, 10), (True, 10)),
        ("watchdog watchdog_timeout=0", (False, 0), (False, 0)),  # 0 disables
        ("watchdog_timeout=3 no-watchdog", (False, 3), (False, 3)),
        ("watchdog=0 watchdog_timeout=3", (True, 3), (True, 3)),
        ("watchdog_timeout=0x10", (True, 16), (True, 16)),
        ("watchdog_timeout=010", (True, 8), (True, 8)),
        ("watchdog_timeout=10s", (True, 10), (True, 10)),  # 4.10+ stores 10, then reports
        ("watchdog_timeout=abc", (False, 0), (False, 0)),
        ("no-watchdog_timeout=7", (True, 7), (False, 5)),
        ("watchdog=force", (True, 5), (True, 5)),
        ("watchdog=maybe", (True, 5), (False, 5)),
        ("no-watchdog=1", (False, 5), (False, 5)),
        ("WATCHDOG", (False, 5), (False, 5)),
    ],
)
def test_watchdog(cmdline: str, lenient: tuple[bool, int], strict: tuple[bool, int]) -> None:
    for rules, expected in ((LENIENT, lenient), (STRICT, strict)):
        opts = parse_cmdline(cmdline, rules)
        assert (opts.watchdog, opts.watchdog_timeout) == expected, rules


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ("no-watchdog", (True, 5)),  # a custom option never sees its no- prefix before 4.10
        ("watchdog=maybe", (False, 5)),  # parse_watchdog ignores an unknown value
        ("watchdog=1 watchdog=maybe", (True, 5)),
        ("watchdog=no", (False, 5)),
        ("watchdog=force", (True, 5)),
        ("no-watchdog_timeout=7", (True, 7)),
    ],
)
def test_custom_watchdog_before_4_10(cmdline: str, expected: tuple[bool, int]) -> None:
    opts = parse_cmdline(cmdline, CUSTOM)
    assert (opts.watchdog, opts.watchdog_timeout) == expected
    assert not opts.errors  # cmdline_parse reports nothing


def test_strict_watchdog_timeout_keeps_what_it_read() -> None:
    opts = parse_cmdline("watchdog_timeout=10s", STRICT)  # nmi.c @ RELEASE-4.10.0 l.79-86
    assert (opts.watchdog, opts.watchdog_timeout) == (True, 10) and opts.errors
    bare = parse_cmdline("watchdog_timeout=3 no-watchdog_timeout", STRICT)
    assert (bare.watchdog, bare.watchdog_timeout) == (False, 0) and bare.errors


def test_hap_option_ignored_before_4_3() -> None:
    old = parse_cmdline("hap=0", profile_for("4.2.5").cmdline)
    assert old.hap and old.hap_ignored == "hap=0"
    assert not parse_cmdline("hap=0", profile_for("4.3.0").cmdline).hap


def test_watchdog_force() -> None:
    assert parse_cmdline("watchdog=force", STRICT).watchdog_force
    assert not parse_cmdline("watchdog=force", LENIENT).watchdog_force
    assert not parse_cmdline("watchdog=force watchdog_timeout=0", STRICT).watchdog_force
    assert parse_cmdline("no-watchdog=1", STRICT).errors


def test_lenient_truncates_long_options() -> None:
    token = "watchdog_timeout=" + "0" * 82 + "5"  # 100 characters
    cut = parse_cmdline(token, LENIENT)  # 4.4 copies each option into char opt[100]
    assert (cut.watchdog, cut.watchdog_timeout) == (False, 0)
    whole = parse_cmdline(token, STRICT)
    assert (whole.watchdog, whole.watchdog_timeout) == (True, 5)
    assert parse_cmdline("hap=" + "0" * 200, LENIENT).hap is True  # not the word "0"


@given(st.text(alphabet=st.sampled_from(list("hap=01-no watchdog_timeoutx\t")), max_size=60))
def test_never_raises(text: str) -> None:
    for rules in (LENIENT, STRICT):
        opts = parse_cmdline(text, rules)
        assert isinstance(opts.hap, bool) and opts.watchdog_timeout >= 0


@given(st.lists(st.sampled_from(["hap=0", "hap=1", "no-hap", "hap", "hap=off", "x=1"]),
                min_size=1, max_size=6))
def test_last_occurrence_wins(tokens: list[str]) -> None:
    last = [t for t in tokens if t != "x=1"]
    expected = not last or last[-1] in ("hap=1", "hap")
    for rules in (LENIENT, STRICT):
        assert parse_cmdline(" ".join(tokens), rules).hap is expected
