"""`xenvmmu calibrate`: shape kernels compiled at run time, a cost profile that audit accepts.

The compiled runs need a C compiler (gcc is on CI); ``--quick`` keeps them to seconds. The
full run (about 30 s) is marked slow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from xenvmmu.cli import main
from xenvmmu.costs import default_profile, load_profile
from xenvmmu.costs.calibrate import (
    FLOOR_NS,
    Calibration,
    CalibrationError,
    Machine,
    Measurement,
    find_compiler,
    make_plan,
    profile_toml,
)
from xenvmmu.model.work import FIELDS, Work

from ..conftest import REPO

#: The units the compiled kernels measure; --no-compiler measures only the sequential ones.
COMPILED = {"entries_read", "entries_written", "lock_round_trips", "bytes_copied",
            "bytes_zeroed", "bytes_scanned", "hash_hops", "refcount_drops", "pages_allocated",
            "pages_freed"}
SEQUENTIAL = {"bytes_copied", "bytes_zeroed"}
MEASURED = "measured by xenvmmu calibrate on "

needs_cc = pytest.mark.skipif(find_compiler() is None, reason="no C compiler on this machine")


@pytest.fixture(scope="module")
def quick_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `calibrate --quick --output FILE` run, shared by the tests that read it."""
    if find_compiler() is None:
        pytest.skip("no C compiler on this machine")
    path = tmp_path_factory.mktemp("calibrate") / "costs.toml"
    assert main(["calibrate", "--quick", "--output", str(path)]) == 0
    return path


def _check_profile(path: Path, measured: set[str]) -> None:
    p, d = load_profile(path), default_profile()
    assert p.low_sources is not None and d.low_sources is not None
    for unit in FIELDS:
        if unit in measured:
            assert p.low_ns[unit] == p.ns_per_unit[unit], unit
            assert 0 < p.ns_per_unit[unit] < 1e5, (unit, p.ns_per_unit[unit])
            assert p.sources[unit].startswith(MEASURED), unit
            assert p.low_sources[unit] == p.sources[unit]
            assert "median of" in p.sources[unit]
        else:  # not measurable from dom0: the default range and its sources, unchanged
            assert (p.low_ns[unit], p.ns_per_unit[unit]) == (d.low_ns[unit],
                                                             d.ns_per_unit[unit]), unit
            assert p.sources[unit] == d.sources[unit], unit
            assert p.low_sources[unit] == d.low_sources[unit], unit


@needs_cc
def test_quick_run_writes_a_profile_load_profile_accepts(quick_profile: Path) -> None:
    _check_profile(quick_profile, COMPILED)
    data = tomllib.loads(quick_profile.read_text(encoding="utf-8"))
    assert data["schema"] == "xenvmmu.costs/1"
    assert "calibrated" in data["name"] and os.uname().nodename in data["name"]
    p = load_profile(quick_profile)
    assert p.name == data["name"]
    # the kernels' shapes keep their order: a locked rewrite costs more than a scan, a
    # dependent pointer hop or an atomic drop more than a sequential entry load
    assert p.ns_per_unit["lock_round_trips"] > p.ns_per_unit["entries_read"] / 10
    assert p.ns_per_unit["refcount_drops"] > FLOOR_NS
    assert p.ns_per_unit["bytes_copied"] < p.ns_per_unit["entries_read"]  # per byte vs entry
    assert p.ns(Work(entries_written=2**28)) > 0


@needs_cc
def test_audit_takes_the_calibrated_profile(quick_profile: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    guests = str(REPO / "examples" / "guests")
    status = main(["audit", "--xen-version", "4.4.0", "--costs", str(quick_profile),
                   "--format", "json", guests])
    out, err = capsys.readouterr()
    assert status in (0, 1, 3), err
    assert main(["audit", "--xen-version", "4.4.0", "--format", "json", guests]) == status
    default_out = capsys.readouterr().out
    assert '"worst_case_ms"' in out and out != default_out  # the measured prices were used
    # the same in a subprocess, as an operator runs it
    done = subprocess.run(
        [str(REPO / ".venv" / "bin" / "xenvmmu"), "audit", "--xen-version", "4.4.0",
         "--costs", str(quick_profile), guests],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert done.returncode in (0, 1, 3), done.stderr
    assert "analytics" in done.stdout


@needs_cc
def test_quick_run_to_stdout_with_progress_on_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--quick", "--repeat", "1"]) == 0
    out, err = capsys.readouterr()
    data = tomllib.loads(out)
    assert set(data["units"]) == set(FIELDS)
    assert "compiling the shape kernels" in err and "[5/5]" in err and "done in" in err
    assert "median of 1" in data["units"]["hash_hops"]["source_high"]


def test_no_compiler_is_a_clear_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no cc, gcc or clang
    monkeypatch.delenv("CC", raising=False)
    out_file = tmp_path / "costs.toml"
    assert main(["calibrate", "--quick", "--output", str(out_file)]) == 2
    err = capsys.readouterr().err
    assert "no C compiler found" in err and "cc, gcc or clang" in err
    assert "--no-compiler" in err
    assert not out_file.exists()


def test_no_compiler_mode_measures_the_sequential_units_with_numpy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    out_file = tmp_path / "costs.toml"
    assert main(["calibrate", "--quick", "--repeat", "1", "--no-compiler",
                 "--output", str(out_file)]) == 0
    _check_profile(out_file, SEQUENTIAL)
    assert "numpy" in load_profile(out_file).sources["bytes_copied"]


def test_a_failing_compiler_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("false") is None:
        pytest.skip("no `false` command")
    monkeypatch.setenv("CC", "false")
    assert main(["calibrate", "--quick", "--output", str(tmp_path / "c.toml")]) == 2
    assert "the C compiler failed on the shape kernels" in capsys.readouterr().err


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--repeat", "0"]) == 2
    assert "--repeat must be in 1..100" in capsys.readouterr().err
    assert main(["calibrate", "--quick", "--output", str(tmp_path)]) == 2  # a directory
    assert "cannot write" in capsys.readouterr().err


def test_plan_sizes() -> None:
    quick = make_plan(quick=True)
    assert quick.repeat == 3 and quick.sweep_bytes == 64 << 20 and not quick.reduced
    full = make_plan(llc_bytes=32 << 20)
    assert full.repeat == 5 and full.sweep_bytes == 256 << 20
    assert full.hash_records == 1 << 19  # a full 2 GiB shadow pool
    assert make_plan(llc_bytes=480 << 20).sweep_bytes == 960 << 20
    assert make_plan(llc_bytes=4 << 30).sweep_bytes == 1 << 30
    small = make_plan(mem_available=512 << 20)  # a small dom0: a quarter of what it has
    assert small.reduced and small.sweep_bytes <= 128 << 20
    assert small.ref_frames * 44 <= 128 << 20
    assert make_plan(quick=True, repeat=7).repeat == 7
    with pytest.raises(ValueError):
        make_plan(repeat=0)


def _calibration(hostname: str) -> Calibration:
    machine = Machine(hostname=hostname, cpu='Weird "CPU" \\ 9000', environment="Xen dom0 (PV)",
                      xen_dom0=True, date="2024-01-02T03:04Z", kernel="Linux 6.1 x86_64",
                      llc_bytes=None, mem_available=None)
    measured = {
        "entries_read": Measurement("entries_read", 1.23456, (1.2, 1.23456, 1.3), "scan"),
        "entries_written": Measurement("entries_written", FLOOR_NS, (-0.1, 0.0, 0.005),
                                       "rewrite", floored=True),
        "hash_hops": Measurement("hash_hops", 25.0, (25.0,), "hops"),
    }
    return Calibration(machine, make_plan(quick=True), measured, "/usr/bin/cc", 1.5)


def test_profile_toml_quotes_what_the_machine_says(tmp_path: Path) -> None:
    cal = _calibration('evil"host\n[units.vm_exits]\nlow = 0\x7f')
    text = profile_toml(cal)
    f = tmp_path / "p.toml"
    f.write_text(text, encoding="utf-8")
    p, d = load_profile(f), default_profile()
    assert p.ns_per_unit["vm_exits"] == d.ns_per_unit["vm_exits"]  # not injected
    assert p.name.startswith('evil"host\n[units.vm_exits]') and 'Weird "CPU"' in p.name
    assert p.ns_per_unit["entries_read"] == p.low_ns["entries_read"] == 1.235
    assert p.ns_per_unit["entries_written"] == FLOOR_NS
    assert "not above the noise" in p.sources["entries_written"]
    assert "median of 3" in p.sources["entries_read"]
    assert "Xen dom0 (PV)" in p.sources["hash_hops"]
    assert "NOTE: not measured on a Xen dom0" not in text
    for line in text.splitlines():  # comments stay comments
        assert not line or line.startswith(("#", "[", "schema", "name", "low", "high",
                                            "source_low", "source_high")), line


def test_an_implausible_figure_is_refused() -> None:
    cal = _calibration("host")
    stalled = dict(cal.measured, hash_hops=Measurement("hash_hops", 2e6, (2e6,), "hops"))
    with pytest.raises(CalibrationError, match="not usable"):
        profile_toml(Calibration(cal.machine, cal.plan, stalled, cal.compiler, cal.seconds))


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_kernels_compile_without_warnings(tmp_path: Path) -> None:
    src = REPO / "src" / "xenvmmu" / "costs" / "shapes.c"
    done = subprocess.run(["gcc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o",
                           str(tmp_path / "shapes"), str(src)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    bad = subprocess.run([str(tmp_path / "shapes"), "nonsense", "1", "1", "1"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "unknown kernel" in bad.stderr


@pytest.mark.slow
@needs_cc
def test_full_run(tmp_path: Path) -> None:
    """The issue's acceptance run: `calibrate --output costs.toml` on the CI machine (about
    30 s on 2 cores)."""
    out_file = tmp_path / "costs.toml"
    assert main(["calibrate", "--output", str(out_file)]) == 0
    _check_profile(out_file, COMPILED)
    assert "median of 5" in load_profile(out_file).sources["entries_read"]
