"""`xenvmmu sweep`: the grid, the files, resuming, determinism and parallel runs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xenvmmu.cli import main
from xenvmmu.report.grid import Point, expand
from xenvmmu.report.results import CSV_COLUMNS
from xenvmmu.report.runpoint import RunSettings
from xenvmmu.report.store import LOCK, SweepDirError, SweepStore, load_sweep
from xenvmmu.report.sweep import run_sweep

from .conftest import REPO, sweep

GiB = 1 << 30


def rows(directory: Path) -> list[dict[str, str]]:
    with open(directory / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_twelve_points_then_four_more(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    grid = ("--memory", "1G,2G,3G", "--jobs", "2")
    assert sweep(out, *grid) == 0
    first = rows(out)
    assert len(first) == 12
    assert len((out / "results.jsonl").read_text().splitlines()) == 12
    assert "12 point(s), 0 already in" in capsys.readouterr().err
    assert sweep(out, "--memory", "1G,2G,3G,4G", "--jobs", "2") == 0
    err = capsys.readouterr().err
    assert "16 point(s), 12 already in" in err and "4 run now" in err
    second = rows(out)
    assert len(second) == 16
    assert [r for r in second if r["memory_gib"] != "4"] == first  # untouched, same order
    assert {r["memory_gib"] for r in second} == {"1", "2", "3", "4"}
    assert sweep(out, *grid) == 0  # a subset: nothing to run
    assert "0 to run" in capsys.readouterr().err


def test_csv_columns_and_values(tiny_sweep: Path) -> None:
    with open(tiny_sweep / "results.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == CSV_COLUMNS
    table = rows(tiny_sweep)
    assert len(table) == 8
    for r in table:
        assert r["scenario"] == "attack" and r["costs"] == "default" and r["seed"] == "0"
        assert float(r["max_nonpreemptible_ms"]) > 0
        assert float(r["victim_max_ms"]) >= float(r["victim_p99_ms"])
        assert r["watchdog_fired"] in ("true", "false")
        assert r["ops"] == "model" and r["error"] == ""
    by = {(r["xen"], r["paging"], r["memory_gib"]): r for r in table}
    # the fix makes the HAP log-dirty walk preemptible: a shorter section, continuations
    assert float(by[("4.5.0", "hap", "2")]["max_nonpreemptible_ms"]) < \
        float(by[("4.4.0", "hap", "2")]["max_nonpreemptible_ms"])
    records = [json.loads(line) for line in (tiny_sweep / "results.jsonl").read_text().splitlines()]
    assert [r["key"] for r in records] == [
        "|".join([r["scenario"], r["xen"], r["paging"], r["memory_bytes"], r["vcpus"],
                  r["costs"], r["seed"]]) for r in table]
    assert all(r["metrics"]["schema"] == "xenvmmu.sim/1" for r in records)


def test_same_seed_same_files_any_jobs(tiny_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    assert sweep(out, "--jobs", "2") == 0
    for name in ("results.csv", "results.jsonl"):
        assert (out / name).read_bytes() == (tiny_sweep / name).read_bytes()


def test_seeds_are_points(tmp_path: Path) -> None:
    out = tmp_path / "seeds"
    assert sweep(out, "--xen", "4.5.0", "--paging", "hap", "--memory", "1G",
                 "--seeds", "3") == 0
    assert [r["seed"] for r in rows(out)] == ["0", "1", "2"]


def test_truncated_last_line_is_redone(sweep_copy: Path, tiny_sweep: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    jsonl = sweep_copy / "results.jsonl"
    data = jsonl.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    jsonl.write_bytes(data[: last + (len(data) - last) // 2])  # killed mid-line
    csv_path = sweep_copy / "results.csv"
    csv_path.write_text("".join(csv_path.read_text().splitlines(keepends=True)[:-3]))
    assert sweep(sweep_copy) == 0
    err = capsys.readouterr().err
    assert "dropped 1 unfinished line" in err and "1 run now" in err
    for name in ("results.csv", "results.jsonl"):
        assert (sweep_copy / name).read_bytes() == (tiny_sweep / name).read_bytes()


def test_killed_sweep_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "xenvmmu.cli", "sweep", "--xen", "4.4.0", "--paging", "hap",
            "--memory", "1G", "--seeds", "40", "--duration-ms", "10", "--jobs", "1",
            "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    jsonl = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait(timeout=30)
    before = jsonl.read_bytes().count(b"\n")
    assert main(["sweep", *argv[4:]]) == 0
    err = capsys.readouterr().err
    assert f"{before} already in" in err
    assert [r["seed"] for r in rows(out)] == [str(s) for s in range(40)]


def test_failed_point_is_recorded(tmp_path: Path) -> None:
    """A point the model refuses is a result (with its error) and the exit status is 1."""
    points = expand(scenarios=["attack"], xen=["4.4.0"], paging=["hap"],
                    memory_bytes=[GiB], vcpus=[1], costs=["default"], seeds=1)

    class Refusing:
        description = "test"

        def run(self, tasks):  # type: ignore[no-untyped-def]
            for task in tasks:
                yield task, {"schema": "xenvmmu.sweep/1", "key": task.point.key,
                             "point": task.point.as_dict(), "error": "pool too small"}

    outcome = run_sweep(points, tmp_path / "f", runner=Refusing())
    assert (outcome.computed, outcome.failed) == (1, 1)
    table = rows(tmp_path / "f")
    assert table[0]["error"] == "pool too small" and table[0]["max_nonpreemptible_ms"] == ""
    again = run_sweep(points, tmp_path / "f", runner=Refusing())
    assert (again.computed, again.failed, again.skipped) == (0, 1, 1)


def test_other_settings_are_refused(sweep_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sweep(sweep_copy, "--duration-ms", "20") == 2
    assert "other settings" in capsys.readouterr().err
    costs = sweep_copy.parent / "default.toml"
    costs.write_text('schema = "xenvmmu.costs/1"\n[units.entries_read]\nns = 3.0\n')
    assert sweep(sweep_copy, "--costs", str(costs)) == 2
    assert "other prices" in capsys.readouterr().err


def test_second_cost_profile_is_an_axis(sweep_copy: Path) -> None:
    high = sweep_copy.parent / "high.toml"
    high.write_text('schema = "xenvmmu.costs/1"\nname = "high"\n'
                    '[units.entries_written]\nns = 150.0\nsource = "test: 3x"\n')
    assert sweep(sweep_copy, "--costs", "default", "--costs", str(high)) == 0
    table = rows(sweep_copy)
    assert len(table) == 16 and {r["costs"] for r in table} == {"default", "high"}
    data = load_sweep(sweep_copy)
    assert [c.label for c in data.costs] == ["default", "high"]
    assert dict(data.costs[1].sources)["entries_written"] == "test: 3x"


def test_one_sweep_per_directory(tmp_path: Path) -> None:
    settings = RunSettings(duration_ms=10.0)
    with SweepStore(tmp_path) as first:
        from xenvmmu.report.costspec import load_specs
        first.open(settings, load_specs(None), "test")
        with pytest.raises(SweepDirError, match="another sweep"):
            SweepStore(tmp_path).open(settings, load_specs(None), "test")
    assert (tmp_path / LOCK).exists()


@pytest.mark.parametrize(("argv", "message"), [
    (("--xen", "banana"), "not a Xen version"),
    (("--memory", "lots"), "not a size"),
    (("--paging", "ept"), "unknown paging mode"),
    (("--scenario", "boot"), "unknown scenario"),
    (("--vcpus", "0"), "at least 1"),
    (("--seeds", "0"), "at least 1"),
    (("--jobs", "0"), "at least 1"),
    (("--duration-ms", "-1"), "above 0"),
    (("--costs", "/nonexistent/costs.toml"), "cannot read cost file"),
])
def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      argv: tuple[str, ...], message: str) -> None:
    assert sweep(tmp_path / "u", *argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "u").exists()


def test_dask_missing_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if absent
    assert sweep(tmp_path / "d", "--scheduler", "tcp://127.0.0.1:8786") == 2
    err = capsys.readouterr().err
    assert "pip install 'xenvmmu[dask]'" in err


def test_point_round_trip() -> None:
    p = Point("attack", "4.4.0", "hap", GiB, 4, "default", 3)
    assert Point.from_dict(p.as_dict()) == p
    with pytest.raises(ValueError):
        Point.from_dict({**p.as_dict(), "extra": 1})


def test_plots_flag(sweep_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    assert sweep(sweep_copy, "--plots") == 0
    names = sorted(os.listdir(sweep_copy / "plots"))
    assert names == ["stall-attack.png", "stall-attack.svg", "victim-attack.png",
                     "victim-attack.svg"]
    capsys.readouterr()
