"""`xenvmmu sweep --scheduler`: a Dask cluster gives the same files as the local run."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenvmmu.report.grid import expand
from xenvmmu.report.runners import DaskRunner, RunnerError
from xenvmmu.report.sweep import run_sweep

from .conftest import sweep


def test_local_cluster_same_results(tiny_sweep: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip(
        "distributed", reason="Dask distributed is not installed (pip install 'xenvmmu[dask]')")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  host="127.0.0.1", protocol="tcp", dashboard_address=None,
                                  silence_logs=40) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        out = tmp_path / "dask"
        assert sweep(out, "--scheduler", address) == 0
    for name in ("results.csv", "results.jsonl"):
        assert (out / name).read_bytes() == (tiny_sweep / name).read_bytes()


def test_unreachable_scheduler(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="Dask distributed is not installed")
    runner = DaskRunner("tcp://127.0.0.1:9", connect_timeout_s=0.5)
    points = expand(scenarios=["attack"], xen=["4.5.0"], paging=["hap"],
                    memory_bytes=[1 << 30], vcpus=[1], costs=["default"], seeds=1)
    with pytest.raises(RunnerError, match="cannot reach the Dask scheduler"):
        run_sweep(points, tmp_path / "x", runner=runner)
