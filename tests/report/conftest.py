"""Fixtures of the sweep and report tests: one tiny sweep shared by the session (1 GiB and
2 GiB guests, 10 ms scenarios, so it takes about a second) and headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xenvmmu.cli import main

from .cdp import find_chromium

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TINY = ("--xen", "4.4.0,4.5.0", "--paging", "hap,shadow", "--memory", "1G,2G",
        "--duration-ms", "10", "--no-progress")


def sweep(out: Path, *argv: str) -> int:
    """``xenvmmu sweep`` on the tiny grid (``argv`` added or overriding)."""
    return main(["sweep", *TINY, "--out", str(out), "--jobs", "1", *argv])


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 8-point sweep (read it; copy it to change it)."""
    out = tmp_path_factory.mktemp("sweep") / "tiny"
    assert sweep(out) == 0
    return out


@pytest.fixture
def sweep_copy(tiny_sweep: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_sweep, copy)
    return copy


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium: found, or installed with apt-get when running as root."""
    path, why = find_chromium()
    if path is None:
        pytest.skip(why)
    return path
