"""Import layering of ``xenvmmu.sim`` and ``xenvmmu.model``: no cycles, nothing imports upward.

The graph is read from the sources with :mod:`ast`, every ``import``/``from`` statement
anywhere in a module - ``TYPE_CHECKING`` blocks and function bodies included, since a cycle
hidden from the interpreter is still a cycle in the design. ``from pkg import name`` is an
edge to ``pkg`` itself - the names are looked up in its namespace, through its PEP 562
``__getattr__`` for a lazy package - and to ``pkg.name`` when that is a module. A package
``__init__`` reaching its submodules (under ``TYPE_CHECKING``, for its lazy exports) is an
edge like any other, so a submodule that imports anything ``from`` its own package - even a
sibling module, ``from xenvmmu.model import hooks`` - closes a cycle.

Run as a script to print the graph and its cycles::

    .venv/bin/python tests/sim/test_layering.py [xenvmmu.sim xenvmmu.model ...]
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
Graph = dict[str, set[str]]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(package: str = "xenvmmu") -> Graph:
    """Module -> the modules of ``package`` it imports (anywhere in its source)."""
    files = {_module_name(p): p for p in (SRC / package.replace(".", "/")).rglob("*.py")}
    graph: Graph = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                # the statement reads the names from ``base`` itself (its namespace, its
                # PEP 562 ``__getattr__``), and imports those that are submodules
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def within(graph: Graph, package: str) -> Graph:
    """The part of ``graph`` among ``package`` and its submodules."""
    def inside(m: str) -> bool:
        return m == package or m.startswith(package + ".")

    return {m: {t for t in ts if inside(t)} for m, ts in graph.items() if inside(m)}


# -- the tests -------------------------------------------------------------------------------

GRAPH = import_graph()


def test_the_graph_is_read() -> None:
    assert "xenvmmu.model.work" in GRAPH["xenvmmu.sim.hypercall"]
    assert "xenvmmu.sim.host" in GRAPH["xenvmmu.sim.scenarios"]


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_cycle_among_sim_modules() -> None:
    assert cycles(within(GRAPH, "xenvmmu.sim")) == []


def test_no_cycle_among_model_modules() -> None:
    assert cycles(within(GRAPH, "xenvmmu.model")) == []


def test_no_cycle_through_sim_or_model() -> None:
    """Not even through another package (e.g. model -> versions -> model)."""
    bad = [c for c in cycles(GRAPH)
           if any(m.startswith(("xenvmmu.sim", "xenvmmu.model")) for m in c)]
    assert bad == []


def test_model_does_not_import_sim() -> None:
    assert {m for m, ts in within(GRAPH, "xenvmmu.model").items()
            if any(t.startswith("xenvmmu.sim") for t in GRAPH[m])} == set()


def test_no_part_imports_the_host() -> None:
    """``host`` assembles the parts; only what drives whole hosts sits above it."""
    importers = {m for m, ts in GRAPH.items() if "xenvmmu.sim.host" in ts}
    assert importers <= {"xenvmmu.sim", "xenvmmu.sim.scenarios"}


#: xenvmmu.sim from the bottom up, as its package docstring lists it: a module imports only
#: modules before it. A module missing here is held only to the no-cycle tests.
SIM_ORDER = (
    "params", "errors", "kernel", "metrics",  # the kernel
    "timer", "softirq", "preempt",  # per-pCPU mechanisms
    "pcpu", "sched",
    "domain", "xenwork", "hypercall",
    "vcpu", "rcu", "watchdog", "victim",
    "host",  # assembles the parts
    "guest_ops", "model_guest", "closed_form", "scenarios",
)


def test_sim_modules_import_only_lower_layers() -> None:
    rank = {f"xenvmmu.sim.{m}": i for i, m in enumerate(SIM_ORDER)}
    upward = sorted(
        f"{m} -> {t}"
        for m, ts in within(GRAPH, "xenvmmu.sim").items() if m in rank
        for t in ts if t in rank and rank[t] >= rank[m]
    )
    assert upward == []


def test_submodules_do_not_import_their_package() -> None:
    """A package ``__init__`` imports its submodules (lazily); the reverse would cycle."""
    for pkg in ("xenvmmu.sim", "xenvmmu.model"):
        assert {m for m, ts in within(GRAPH, pkg).items() if pkg in ts} == set()


def _main(packages: list[str]) -> int:
    status = 0
    for pkg in packages or ["xenvmmu.sim", "xenvmmu.model"]:
        g = within(GRAPH, pkg)
        print(f"# {pkg}")
        def short(m: str, pkg: str = pkg) -> str:
            return "__init__" if m == pkg else m.removeprefix(pkg + ".")

        for m in sorted(g):
            print(f"  {short(m)} -> {', '.join(sorted(map(short, g[m]))) or '-'}")
        found = cycles(g)
        for c in found:
            print("  CYCLE: " + " <-> ".join(map(short, c)))
        if not found:
            print("  acyclic")
        status |= bool(found)
    return status


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
