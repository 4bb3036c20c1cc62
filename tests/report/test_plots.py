"""The figures: PNG and SVG, what they draw and what their captions say."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xenvmmu.audit.findings import Finding, SourceRef
from xenvmmu.report import plots
from xenvmmu.report.store import load_sweep

from .conftest import sweep

pytest.importorskip("matplotlib", reason="matplotlib is not installed (xenvmmu[report])")

PNG = b"\x89PNG\r\n\x1a\n"


def finding(name: str, maxmem_mib: int | None, worst: float | None) -> Finding:
    return Finding(source=SourceRef(f"{name}.cfg"), name=name, guest_type="hvm",
                   paging="hap", memory_mib=maxmem_mib, maxmem_mib=maxmem_mib, vcpus=2,
                   pool_kib=None, xen_version="4.4.0", xsa97_fixed=False, cve=None,
                   worst_case_ms=worst, verdict="affected", severity="high")


def test_figures_of_a_sweep(tiny_sweep: Path) -> None:
    fleet = plots.fleet_from_findings(
        [finding("big$name_$x^2$", 2048, 120.0), finding("pv", None, None),
         finding("zero", 1024, 0.0)], "fleet")
    assert [p.name for p in fleet.points] == ["big$name_$x^2$"] and fleet.omitted == 2
    figures = plots.make_figures(load_sweep(tiny_sweep), fleet)
    assert [f.name for f in figures] == ["stall-attack", "victim-attack"]
    for fig in figures:
        assert fig.png.startswith(PNG)
        root = ET.fromstring(fig.svg)
        assert root.tag.endswith("svg")
    stall, victim = figures
    assert "no cost band is drawn" in stall.caption
    assert "2 guest(s) without a size" in stall.caption
    assert "step approximation" in victim.caption and "p99" in victim.caption


def test_same_data_same_svg(tiny_sweep: Path) -> None:
    a = plots.make_figures(load_sweep(tiny_sweep), None)
    b = plots.make_figures(load_sweep(tiny_sweep), None)
    assert [f.svg for f in a] == [f.svg for f in b]


def test_band_with_two_cost_profiles(sweep_copy: Path) -> None:
    high = sweep_copy.parent / "high.toml"
    high.write_text('schema = "xenvmmu.costs/1"\n[units.entries_written]\nns = 150.0\n')
    assert sweep(sweep_copy, "--costs", "default", "--costs", str(high)) == 0
    stall = plots.make_figures(load_sweep(sweep_copy), None)[0]
    assert "shaded band spans the cost profiles 'default', 'high'" in stall.caption


def test_fleet_alone(tmp_path: Path) -> None:
    fleet = plots.fleet_from_findings([finding("a", 4096, 50.0), finding("b", 1 << 20, 9e3)],
                                      "fleet")
    figures = plots.make_figures(None, fleet)
    assert [f.name for f in figures] == ["fleet"]
    written = plots.save_figures(figures, tmp_path / "p")
    assert sorted(p.name for p in written) == ["fleet.png", "fleet.svg"]
    assert plots.make_figures(None, None) == []
