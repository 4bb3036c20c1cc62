"""Hostile inputs give errors or settings: never an exception, a RecursionError or a hang.

No timing assertions (machines are noisy); each input is sized so that quadratic behaviour
would take far longer than the test-suite timeout.
"""

from __future__ import annotations

import pytest

from xenvmmu import xlcfg

DIALECTS = list(xlcfg.DIALECTS)


def _depth(value: object) -> int:
    depth = 0
    while isinstance(value, tuple):
        depth += 1
        value = value[0] if value else None
    return depth


@pytest.mark.parametrize("dialect", DIALECTS)
def test_hundred_thousand_open_brackets(dialect: str) -> None:
    r = xlcfg.parse(b"v=" + b"[" * 100_000, dialect)
    assert not r.ok
    expected = "memory exhausted" if xlcfg.DIALECTS[dialect].nested_lists else "expecting ']'"
    assert r.errors[0].message.endswith(expected)


def test_deep_but_valid_nesting_is_kept_without_recursion() -> None:
    n = 4000  # bison's stack holds 10000 states: two per level
    r = xlcfg.parse(b"v=" + b"[" * n + b'"x"' + b"]" * n + b"\n", "4.13")
    assert r.ok
    assert _depth(r.settings[0].value) == n
    obj = xlcfg.to_json(r)
    v = obj["settings"][0]["value"]
    for _ in range(n - 1):
        v = v[0]
    assert v == ["x"]


def test_ten_megabytes() -> None:
    line = b'disk = [ "phy:/dev/vg/guest-disk-0001,xvda,w", "file:/srv/iso/x.iso,hdc:cdrom,r" ]\n'
    data = line * (10_000_000 // len(line))
    r = xlcfg.parse(data, "4.13")
    assert r.ok and len(r.settings) == len(data) // len(line)
    # The same size of garbage, on the full replay.
    junk = b"x=(1)+[2]:\x00\xff\r\n" * (10_000_000 // 16)
    r = xlcfg.parse(junk, "4.13", fast=False)
    assert not r.ok and r.python_warning


def test_ten_megabyte_single_token_and_unclosed_list() -> None:
    assert not xlcfg.parse(b'name="' + b"a" * 10_000_000, "4.13").ok
    big_list = b"v=[" + b'"a",' * 500_000  # 2 MB of tokens on the full replay
    r = xlcfg.parse(big_list, "4.13")
    assert r.errors[-1].message.endswith("unexpected $end, expecting ']'")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_nul_and_invalid_utf8(dialect: str) -> None:
    r = xlcfg.parse(b"\x00\xff\xfe name='\xc3\x28'\nmemory=1\x00\n", dialect)
    assert not r.ok
    assert r.errors[0].line == 1
    r = xlcfg.parse(b"name='\xc3\x28\xff'\n", dialect)
    assert r.ok and r.settings[0].value == "\udcc3(\udcff"
