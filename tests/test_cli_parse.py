"""`xenvmmu parse`: output formats and exit statuses, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xenvmmu.cli import main

from .conftest import SHARED

CASES = SHARED / "conformance" / "xlcfg" / "cases"


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_human_output_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "vm.cfg", b'name = "vm"\nmemory = "0x400"\nhap = "yes"\n')
    assert main(["parse", f]) == 0
    out = capsys.readouterr().out
    assert f"{f}: ok (xl.cfg dialect 4.13, 3 settings)\n" in out
    assert '      1  name = "vm"\n' in out
    assert f"{f}:3: warning: parameter `hap' is not a valid number\n" in out
    assert '  xl reads: memory=1024 name="vm"\n' in out


def test_errors_in_xl_format_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path, "bad.cfg", b"memory = 512M\n")
    assert main(["parse", "--dialect", "4.3", f]) == 1
    out = capsys.readouterr().out
    assert out == (
        f"{f}: rejected by xl (xl.cfg dialect 4.3)\n"
        f"{f}:1: config parsing error near `M': lexical error\n"
    )


def test_json_lines_in_argument_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path, "a.cfg", b"x=1\n")
    b = str(CASES / "syn-crlf.cfg")
    assert main(["parse", "--json", "--dialect", "4.2", b, a]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["file"] for line in lines] == [b, a]
    expected = json.loads((SHARED / "conformance/xlcfg/expected/4.2/syn-crlf.json").read_text())
    assert json.loads(lines[0]) == {"file": b, **expected}


def test_unreadable_file_exit_2_and_scan_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write(tmp_path, "a.cfg", b"x=1\n")
    missing = str(tmp_path / "missing.cfg")
    assert main(["parse", missing, a, str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert f"xenvmmu parse: cannot read {missing}: No such file or directory" in captured.err
    assert (f"xenvmmu parse: cannot read {tmp_path}: not a regular file (a directory)"
            in captured.err)
    assert f"{a}: ok" in captured.out


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["parse", "--dialect", "4.1", "x.cfg"])
    assert e.value.code == 2
    assert "invalid choice: '4.1'" in capsys.readouterr().err
    assert main([]) == 2
