"""Whole error reports over a folder of inputs (tomli-style): ``errors/<case>.cfg`` with
``errors/<case>.<dialect>.out`` holding exactly what ``ParseResult.messages`` prints.

These cover what the conformance suite does not: libxlu's crash on a NUL inside a string
(reported instead of crashing, and not reached after an earlier error, as in libxlu), bison's
stack limit ("memory exhausted"), ``+=`` type errors and Python-looking files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xenvmmu import xlcfg

HERE = Path(__file__).parent / "errors"
OUTS = sorted(HERE.glob("*.out"))


def test_folder_is_populated() -> None:
    assert len(OUTS) >= 12


@pytest.mark.parametrize("out", OUTS, ids=[p.name for p in OUTS])
def test_error_report(out: Path) -> None:
    case, dialect = out.name[: -len(".out")].split(".", 1)
    cfg = HERE / f"{case}.cfg"
    result = xlcfg.parse(cfg.read_bytes(), dialect)
    expected = out.read_bytes().decode("utf-8", "surrogateescape")
    assert "".join(m + "\n" for m in result.messages(cfg.name)) == expected
    assert result.ok is False
    assert result.settings == ()


def test_loads_raises_with_line() -> None:
    with pytest.raises(xlcfg.XlCfgError) as info:
        xlcfg.loads(b"memory=1\nvcpus=\n", source="vm.cfg")
    assert info.value.lineno == 1  # libxlu reports an error at a newline one line early
    assert str(info.value) == (
        "vm.cfg:1: config parsing error near <newline>: syntax error, "
        "unexpected NEWLINE, expecting STRING or NUMBER or '['"
    )


def test_unknown_dialect_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"unknown xl\.cfg dialect '4\.1'"):
        xlcfg.parse(b"", "4.1")
