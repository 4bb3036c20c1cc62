"""Where sweep points run: in this process, in a local process pool, or on a Dask cluster.

A runner takes :class:`~xenvmmu.report.runpoint.PointTask` objects and yields each task's
record as soon as it is done (in completion order); the sweep stores it at once. At most a
few tasks per worker are in flight, so an interrupted sweep has little work under way and
memory stays flat however large the grid.

* :class:`LocalRunner` - ``jobs == 1`` runs in this process; more use
  ``concurrent.futures.ProcessPoolExecutor`` (the standard library; enough for one machine);
* :class:`DaskRunner` - Dask distributed (optional extra ``dask``), for sweeps that need more
  than one machine: ``--scheduler tcp://HOST:8786``. The workers need xenvmmu installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from .runpoint import PointTask, run_point

Done = tuple[PointTask, dict[str, Any]]
#: tasks in flight per worker
IN_FLIGHT_PER_WORKER = 2


class RunnerError(Exception):
    """The runner cannot start (Dask missing, scheduler unreachable)."""


class Runner(Protocol):
    def run(self, tasks: Iterable[PointTask]) -> Iterator[Done]:
        """Each task's record, as tasks finish."""
        ...  # pragma: no cover

    @property
    def description(self) -> str:
        ...  # pragma: no cover


class LocalRunner:
    """``jobs`` worker processes (1: none, the points run here)."""

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ValueError("--jobs must be at least 1")
        self.jobs = jobs

    @property
    def description(self) -> str:
        return "in this process" if self.jobs == 1 else f"{self.jobs} local processes"

    def run(self, tasks: Iterable[PointTask]) -> Iterator[Done]:
        if self.jobs == 1:
            for task in tasks:
                yield task, run_point(task)
            return
        pending = iter(tasks)
        limit = self.jobs * IN_FLIGHT_PER_WORKER
        with ProcessPoolExecutor(max_workers=self.jobs) as pool:
            running: dict[Future[dict[str, Any]], PointTask] = {}
            try:
                while True:
                    for task in pending:
                        running[pool.submit(run_point, task)] = task
                        if len(running) >= limit:
                            break
                    if not running:
                        return
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        task = running.pop(future)
                        yield task, future.result()
            finally:  # interrupted, or a point raised: drop what has not started
                for future in running:
                    future.cancel()
                pool.shutdown(wait=True, cancel_futures=True)


class DaskRunner:
    """Points as tasks of a Dask distributed cluster."""

    def __init__(self, address: str, connect_timeout_s: float = 10.0) -> None:
        self.address = address
        self.connect_timeout_s = connect_timeout_s
        self._distributed = load_distributed()

    @property
    def description(self) -> str:
        return f"Dask scheduler {self.address}"

    def run(self, tasks: Iterable[PointTask]) -> Iterator[Done]:
        distributed = self._distributed
        try:
            client = distributed.Client(self.address, timeout=f"{self.connect_timeout_s}s")
        except (OSError, TimeoutError, ValueError) as e:
            raise RunnerError(f"cannot reach the Dask scheduler at {self.address}: {e}") \
                from None
        try:
            workers = max(1, sum(client.nthreads().values()))
            limit = workers * IN_FLIGHT_PER_WORKER
            pending = iter(tasks)
            by_key: dict[str, PointTask] = {}
            queue = distributed.as_completed()
            in_flight = 0

            def submit_more() -> int:
                n = 0
                for task in pending:
                    future = client.submit(run_point, task, pure=False)
                    by_key[future.key] = task
                    queue.add(future)
                    n += 1
                    if in_flight + n >= limit:
                        break
                return n

            in_flight += submit_more()
            while in_flight:
                future = next(queue)
                in_flight -= 1
                task = by_key.pop(future.key)
                record: dict[str, Any] = future.result()
                future.release()
                yield task, record
                in_flight += submit_more()
        finally:
            client.close()


def load_distributed() -> Any:
    """The ``distributed`` module; :class:`RunnerError` saying how to install it if absent."""
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise RunnerError("--scheduler needs Dask distributed, which is not installed: "
                          "pip install 'xenvmmu[dask]'") from None
