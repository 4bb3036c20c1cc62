"""xl's typed getters: strtol with base 0, 64-bit long, defbool, shapes, last one wins."""

from __future__ import annotations

import pytest

from xenvmmu import xlcfg

LONG_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", (0, 1, False)),
        ("010", (8, 3, False)),
        ("08", (0, 1, False)),  # octal stops at 8
        ("0x1F", (31, 4, False)),
        ("0x", (0, 1, False)),  # "0" then "x" is left over
        (" 5", (5, 2, False)),
        ("+7", (7, 2, False)),
        ("-0x10", (-16, 5, False)),
        ("", (0, 0, False)),
        ("x", (0, 0, False)),
        (str(LONG_MAX), (LONG_MAX, 19, False)),
        (str(LONG_MAX + 1), (LONG_MAX, 19, True)),
        (str(-(2**63)), (-(2**63), 20, False)),
        (str(-(2**63) - 1), (-(2**63), 20, True)),
        ("\v\f\r\n\t 12", (12, 8, False)),
    ],
)
def test_strtol(text: str, expected: tuple[int, int, bool]) -> None:
    assert xlcfg.strtol(text) == expected


def _one(cfg: bytes, key: str, getter: str = "get_long") -> xlcfg.Lookup:
    result = xlcfg.parse(cfg, "4.13")
    assert result.ok, result.errors
    lookup: xlcfg.Lookup = getattr(xlcfg, getter)(result, key)
    return lookup


def test_long_ok_and_line() -> None:
    lk = _one(b"# c\nmemory = 0x400\n", "memory")
    assert (lk.status, lk.value, lk.line) == ("ok", 1024, 2)


def test_long_not_a_number() -> None:
    lk = _one(b'memory="5 "\n', "memory")
    assert (lk.status, lk.errno, lk.line) == ("error", "EINVAL", 1)
    assert lk.message == "warning: parameter `memory' is not a valid number"


def test_long_overflow() -> None:
    lk = _one(b"memory=99999999999999999999\n", "memory")
    assert lk.errno == "ERANGE"
    assert lk.message == (
        "warning: parameter `memory' could not be parsed as a number: Numerical result out of range"
    )


def test_long_refuses_plus_equals_even_alone() -> None:
    lk = _one(b'memory+="1"\n', "memory")
    assert lk.message == "warning: can't use += with numbers for parameter `memory'"


def test_last_assignment_wins_including_shape() -> None:
    assert _one(b"memory=[1]\nmemory=2\n", "memory").value == 2
    lk = _one(b"memory=2\nmemory=[1]\n", "memory")
    assert lk.message == "warning: parameter `memory' is a list but should be a single value"
    assert lk.line == 2


@pytest.mark.parametrize(
    ("text", "value"), [(b"hap=0", False), (b"hap=2", True), (b'hap="0"', False)]
)
def test_defbool(text: bytes, value: bool) -> None:
    assert _one(text, "hap", "get_defbool").value is value


def test_defbool_rejects_words() -> None:
    assert _one(b'hap="yes"', "hap", "get_defbool").status == "error"


def test_absent() -> None:
    assert _one(b"", "memory").status == "absent"


def test_string_and_list() -> None:
    assert _one(b"name='vm'", "name", "get_string").value == "vm"
    assert _one(b"disk=['a',['b']]", "disk", "get_list").value == ("a", ("b",))
    lk = _one(b"disk='a'", "disk", "get_list")
    assert lk.message == "warning: parameter `disk' is a single value but should be a list"


def test_non_utf8_bytes_survive() -> None:
    result = xlcfg.parse(b"name='caf\xe9'\n")
    assert result.settings[0].value == "caf\udce9"
    assert result.settings[0].value.encode("utf-8", "surrogateescape") == b"caf\xe9"


def test_strtol_huge_digit_strings_clamp_instead_of_raising() -> None:
    assert xlcfg.strtol("9" * 10_000) == (LONG_MAX, 10_000, True)
    assert xlcfg.strtol("-0x" + "f" * 5000) == (-(2**63), 5003, True)
    assert xlcfg.strtol("0" * 5000 + "7") == (7, 5001, False)
