"""Light start: short commands and light imports do not load numpy, SimPy or the heavy layers.

Each check runs in a fresh interpreter (this test process has imported everything already)
and looks at ``sys.modules`` afterwards: a real assertion, not a timing
(``benchmarks/bench_startup.py`` measures the time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO

GUEST = REPO / "examples" / "guests" / "web-01.cfg"
HEAVY = ("numpy", "simpy", "xenvmmu.model", "xenvmmu.sim", "xenvmmu.costs")

_REPORT = """
import json, sys
print(json.dumps(sorted(m for m in sys.modules
                        if m.split(".")[0] in ("numpy", "simpy") or m.startswith("xenvmmu"))))
"""

_CLI = """
import contextlib, io, sys
from xenvmmu.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        status = main(sys.argv[1:])
    except SystemExit as e:
        status = e.code
assert status == 0, (status, out.getvalue())
assert out.getvalue(), "the command printed nothing"
"""


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter on this working tree's sources."""
    env = dict(os.environ)
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else src
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True, text=True, cwd=REPO, env=env, check=False, timeout=120,
    )


def _loaded(code: str, *argv: str) -> set[str]:
    """The numpy, simpy and xenvmmu modules loaded after running ``code`` in a new process."""
    res = _python("-c", code + _REPORT, *argv)
    assert res.returncode == 0, res.stderr
    modules = json.loads(res.stdout.splitlines()[-1])
    assert isinstance(modules, list)
    return set(modules)


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith(HEAVY)}


@pytest.mark.parametrize(
    "argv",
    [["--version"], ["--help"], ["parse", str(GUEST)], ["parse", "--json", str(GUEST)]],
    ids=["version", "help", "parse", "parse-json"],
)
def test_short_commands_stay_light(argv: list[str]) -> None:
    modules = _loaded(_CLI, *argv)
    assert _heavy(modules) == set()
    assert "xenvmmu.commands.audit" not in modules  # only the command that runs is imported
    assert "xenvmmu.commands.simulate" not in modules


def test_audit_help_shows_every_argument_without_numpy() -> None:
    modules = _loaded(_CLI + "assert '--budget-ms N' in out.getvalue()\n", "audit", "--help")
    assert not {m for m in modules if m.startswith(("numpy", "simpy", "xenvmmu.sim"))}


def test_model_work_does_not_load_numpy() -> None:
    modules = _loaded("import xenvmmu.model.work")
    assert "numpy" not in modules
    assert {m for m in modules if m.startswith("xenvmmu.model")} == {
        "xenvmmu.model", "xenvmmu.model.work",
    }


@pytest.mark.parametrize("package", ["xenvmmu.model", "xenvmmu.sim", "xenvmmu.audit"])
def test_packages_import_none_of_their_submodules(package: str) -> None:
    modules = _loaded(f"import {package}")
    assert {m for m in modules if m.startswith(package + ".")} == set()
    assert _heavy(modules) <= {package}


@pytest.mark.parametrize("package", ["xenvmmu.model", "xenvmmu.sim", "xenvmmu.audit"])
def test_lazy_exports_resolve(package: str) -> None:
    """Every name in ``__all__`` loads from its submodule, once, and shows in ``dir()``."""
    code = f"""
import importlib
pkg = importlib.import_module({package!r})
for name in pkg.__all__:
    value = getattr(pkg, name)
    assert value is not None and getattr(pkg, name) is value, name
    assert name in vars(pkg), name  # cached: no second trip through __getattr__
    assert name in dir(pkg), name
try:
    pkg.no_such_name
except AttributeError as e:
    assert "no_such_name" in str(e)
else:
    raise AssertionError("unknown names must raise AttributeError")
"""
    _loaded(code)


def test_from_import_works() -> None:
    code = """
from xenvmmu.model import Work, hooks
from xenvmmu.sim import Host, Metrics
from xenvmmu.audit import AuditReport, Finding, run_audit
import xenvmmu.model.work, xenvmmu.sim.metrics, xenvmmu.audit.findings, xenvmmu.audit.api
assert Work is xenvmmu.model.work.Work and hooks.__name__ == "xenvmmu.model.hooks"
assert Metrics is xenvmmu.sim.metrics.Metrics and Host.__module__ == "xenvmmu.sim.host"
assert AuditReport is xenvmmu.audit.findings.AuditReport
assert run_audit is xenvmmu.audit.api.run_audit
"""
    _loaded(code)


def test_python_m_cli() -> None:
    res = _python("-m", "xenvmmu.cli", "--version")
    assert res.returncode == 0 and res.stdout.startswith("xenvmmu "), res.stderr
