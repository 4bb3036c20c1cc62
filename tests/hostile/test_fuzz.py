"""Every input surface, hostile: no exception escapes ``xenvmmu.cli.main``, the exit status is
a documented one, and the report is valid for its format.

Few examples per surface by default (``xenvmmu-hostile`` profile); ``make fuzz`` runs many
(``xenvmmu-fuzz``). ``--hypothesis-show-statistics`` prints how many inputs each tried.
"""

from __future__ import annotations

import argparse
import os
import stat
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from xenvmmu import xlcfg
from xenvmmu.commands.simulate import parse_size

from . import strategies as s
from .harness import HOSTILE, check_report, check_status, loads_deep, run

FORMATS = ["json", "sarif", "openvex", "prometheus", "table", "markdown"]
VERSIONS = ["4.2.5", "4.4.0", "4.4.2", "4.6.0", "4.9.0", "4.13.0", "4.17.3"]
GUEST = 'name = "g"\nbuilder = "hvm"\ntype = "hvm"\nmemory = 4096\n'


def _audit(argv: list[str], fmt: str) -> None:
    result = run(["audit", "--format", fmt, *argv])
    check_status("audit", result)
    if result.status != 2:
        check_report(fmt, result.out)


@HOSTILE
@given(data=s.cfg_bytes, version=st.sampled_from(VERSIONS), fmt=st.sampled_from(FORMATS),
       dialect=st.sampled_from(list(xlcfg.DIALECTS)))
def test_xl_cfg(data: bytes, version: str, fmt: str, dialect: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "vm.cfg")
        path.write_bytes(data)
        _audit(["--xen-version", version, str(path)], fmt)
        _audit(["--xen-version", version, d], fmt)  # the same file found by the scan
        for extra in ([], ["--json"]):
            result = run(["parse", "--dialect", dialect, *extra, str(path)])
            check_status("parse", result)
            assert result.status in (0, 1)
            result.out.encode("utf-8")
            if extra:
                assert loads_deep(result.out)["file"] == str(path)


@HOSTILE
@given(data=s.xl_list_bytes, fmt=st.sampled_from(FORMATS), version=st.sampled_from(VERSIONS))
def test_xl_list(data: bytes, fmt: str, version: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        Path(d, "list.json").write_bytes(data)
        Path(d, "copy.json").write_bytes(data)  # the same domains listed twice
        _audit(["--xen-version", version, d], fmt)


@HOSTILE
@given(text=s.xl_info_text, fmt=st.sampled_from(FORMATS))
def test_xl_info(text: str, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        host = Path(d, "xl-info.txt")
        host.write_text(text, encoding="utf-8", errors="surrogatepass")
        guest = Path(d, "g.cfg")
        guest.write_text(GUEST)
        _audit(["--host", str(host), str(guest)], fmt)


@HOSTILE
@given(cmdline=s.cmdline_text, version=st.sampled_from(VERSIONS), fmt=st.sampled_from(FORMATS))
def test_hypervisor_cmdline(cmdline: str, version: str, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        guest = Path(d, "g.cfg")
        guest.write_text(GUEST)
        _audit(["--xen-version", version, f"--cmdline={cmdline}", str(guest)], fmt)


@HOSTILE
@given(version=s.version_text, fmt=st.sampled_from(FORMATS))
def test_version_strings(version: str, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        guest = Path(d, "g.cfg")
        guest.write_text(GUEST)
        _audit([f"--xen-version={version}", str(guest)], fmt)
        with Path(d, "xl-info.txt").open("w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(f"xen_version            : {version}\nmachine                : x86_64\n")
        _audit(["--host", str(Path(d, "xl-info.txt")), str(guest)], fmt)
    result = run(["simulate", "attack", f"--xen={version}", "--memory", "1G", "--json"])
    check_status("simulate", result)


_AUDIT_FLAGS = ["--budget-ms", "--watchdog-timeout", "--format", "--patched", "--arch",
                "--xen-version", "--cmdline", "--output", "--costs", "--host"]
_BARE = ["--cpu-hap", "--no-cpu-hap", "--watchdog", "--no-watchdog", "--color"]
_SIMULATE_FLAGS = ["--memory", "--vcpus", "--pcpus", "--shadow-memory", "--seed", "--xen",
                   "--paging", "--costs"]
_SIZES = ["1G", "512M", "1.5G", "4096", "0", "-1G", "17T", "99999T", "1e9", "nan", "inf",
          "1" * 30 + "T", "16.000000000000000001T", "1P", "0.0000001G", "2g", "1 G", ""]


def _flag_value(flag: str, d: str) -> st.SearchStrategy[str]:
    paths = st.sampled_from([os.path.join(d, "out.json"), d, os.path.join(d, "fifo"),
                             os.path.join(d, "link"), os.path.join(d, "missing", "x"),
                             "/dev/null", os.path.join(d, "g.cfg")])
    return {
        "--format": st.sampled_from([*FORMATS, "xml", ""]),
        "--patched": st.sampled_from(["xsa97-hap", "xsa410", "bogus"]),
        "--arch": st.sampled_from(["x86", "arm", "ppc"]),
        "--xen-version": s.version_text,
        "--xen": s.version_text,
        "--cmdline": s.cmdline_text,
        "--paging": st.sampled_from(["hap", "shadow", "ept"]),
        "--output": paths, "--costs": paths, "--host": paths,
        "--memory": st.one_of(st.sampled_from(_SIZES), s.number_text),
    }.get(flag, s.number_text)


@HOSTILE
@given(data=st.data(), fmt=st.sampled_from(FORMATS))
def test_audit_flags(data: st.DataObject, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        Path(d, "g.cfg").write_text(GUEST)
        os.mkfifo(Path(d, "fifo"))
        os.symlink(Path(d, "target.json"), Path(d, "link"))
        flags = data.draw(st.lists(st.sampled_from(_AUDIT_FLAGS + _BARE), max_size=6))
        argv = ["audit", "--format", fmt, "--xen-version", "4.4.0"]
        for flag in flags:
            argv.append(flag)
            if flag not in _BARE:
                argv.append(data.draw(_flag_value(flag, d)))
        argv.append(os.path.join(d, "g.cfg"))
        result = run(argv)
        check_status("audit", result)
        if result.status != 2 and "--output" not in flags and "--format" not in flags:
            check_report(fmt, result.out)
        assert Path(d, "fifo").is_fifo()  # never replaced by a report
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def _bytes(size: str) -> int:
    try:
        return parse_size(size)
    except argparse.ArgumentTypeError:
        return 0


@HOSTILE
@given(data=st.data())
def test_simulate_flags(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d:
        scenario = data.draw(st.sampled_from(["attack", "migration", "vram", "teardown", "x"]))
        argv = ["simulate", scenario, "--memory", "1G", "--json"]
        for flag in data.draw(st.lists(st.sampled_from(_SIMULATE_FLAGS), max_size=4)):
            value = data.draw(_flag_value(flag, d))
            if flag == "--memory" and _bytes(value) > 64 << 30:
                value = "64G"  # valid huge sizes are slow on purpose; their bound is tested
            argv += [flag, value]
        result = run(argv)
        check_status("simulate", result)


@HOSTILE
@given(text=s.cost_toml)
def test_cost_toml(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        costs = Path(d, "costs.toml")
        costs.write_text(text, encoding="utf-8", errors="surrogatepass")
        guest = Path(d, "g.cfg")
        guest.write_text(GUEST)
        _audit(["--xen-version", "4.4.0", "--costs", str(costs), str(guest)], "json")
        result = run(["simulate", "attack", "--memory", "1G", "--costs", str(costs), "--json"])
        check_status("simulate", result)
