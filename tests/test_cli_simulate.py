"""`xenvmmu simulate`: sizes, output, determinism and the advisory's difference."""

from __future__ import annotations

import argparse
import json

import pytest

from xenvmmu.cli import main
from xenvmmu.commands.simulate import parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [("256G", 256 << 30), ("1T", 1 << 40), ("512MiB", 512 << 20), ("4096", 4096 << 20),
     ("1.5G", 3 << 29)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "big", "12Q", "0", "-1G"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["simulate", *argv, "--json"]) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def test_fix_bounds_the_stall(capsys: pytest.CaptureFixture[str]) -> None:
    before = _run(capsys, "attack", "--xen", "4.4.0", "--memory", "256G")
    after = _run(capsys, "attack", "--xen", "4.5.0", "--memory", "256G")
    assert before["schema"] == after["schema"] == "xenvmmu.sim/1"
    b, a = before["max_nonpreemptible_ms"], after["max_nonpreemptible_ms"]
    assert isinstance(b, float) and isinstance(a, float)
    assert b > 100 * a
    assert after["continuations"] > 0  # type: ignore[operator]
    victim = before["victim_latency_ms"]
    assert isinstance(victim, dict) and victim["max"] >= b * 0.99


def test_same_seed_same_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("migration", "--xen", "4.5.0", "--memory", "8G", "--seed", "7")
    assert _run(capsys, *argv) == _run(capsys, *argv)


def test_human_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "attack", "--xen", "4.4.2", "--memory", "64G"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("attack on Xen 4.4.2, HAP guest of 64 GiB")
    assert "longest non-preemptible section" in out and "victim wake-up delay" in out


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "attack", "--xen", "banana"]) == 2
    assert "xenvmmu simulate: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "attack", "--memory", "lots"])
    assert "not a size" in capsys.readouterr().err


def test_development_build_warns_and_takes_a_changeset(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "attack", "--xen", "4.5-unstable", "--memory", "8G", "--json"]
    assert main(args) == 0
    assert "warning" in capsys.readouterr().err  # unknown: modelled without the fix
    assert main([*args, "--changeset", "2014-11-01"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    assert json.loads(captured.out)["extra"]["logdirty_preemptible"] is True
