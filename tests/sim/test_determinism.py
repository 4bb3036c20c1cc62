"""Same seed, same run - event for event; and the JSON form of the metrics."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest
from simpy.events import Event

from xenvmmu.sim import SCHEMA, Call, Host, HostParams
from xenvmmu.sim.metrics import percentile
from xenvmmu.sim.scenarios import run_scenario

from .fakes import UNIT, Chunks, one_step


def _traced_run(seed: int) -> tuple[list[tuple[float, int, str]], str]:
    h = Host(HostParams(pcpus=2, trace=True), cost=UNIT, seed=seed)
    h.victim(0)
    h.victim(1, name="victim.1")
    a = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    b = h.vcpu("dom0.1", domain="dom0", pcpu=1)
    target = h.domain("guest")
    done: list[int] = []

    def prog(v: Any, call: Call) -> Generator[Event, Any, None]:
        yield from v.compute(1.5e6)
        r = yield from v.call(call)
        done.append(r.rc)
        if len(done) == 2:
            h.finish()

    a.start(prog(a, Call("clean", Chunks(60, 3e5), target=target, pause_target=True,
                          preempt_key="clean")))
    b.start(prog(b, Call("long", one_step(2.2e7))))
    m = h.run()
    return h.events, m.to_json()


def test_same_seed_gives_the_same_events_and_json() -> None:
    ev1, js1 = _traced_run(11)
    ev2, js2 = _traced_run(11)
    assert ev1 == ev2 and js1 == js2
    assert len(ev1) > 100


def test_another_seed_changes_the_phases() -> None:
    ev1, _ = _traced_run(11)
    ev3, _ = _traced_run(12)
    assert ev1 != ev3


def test_trace_is_time_ordered() -> None:
    ev, _ = _traced_run(5)
    times = [t for t, _, _ in ev]
    assert times == sorted(times)


@pytest.mark.parametrize("name", ["attack", "migration", "vram", "teardown"])
def test_scenario_json_is_reproducible(name: str) -> None:
    kw: dict[str, Any] = {"xen_version": "4.5.0", "memory_bytes": 8 << 30, "seed": 3}
    a = run_scenario(name, **kw)  # type: ignore[arg-type]
    b = run_scenario(name, **kw)  # type: ignore[arg-type]
    assert a.to_json() == b.to_json()
    assert a == b


def test_json_has_the_schema_and_keys() -> None:
    m = run_scenario("attack", xen_version="4.4.0", memory_bytes=4 << 30, seed=1)
    d = json.loads(m.to_json())
    assert d["schema"] == SCHEMA == "xenvmmu.sim/1"
    for key in ("max_nonpreemptible_ms", "victim_latency_ms", "watchdog_fired",
                "continuations", "sim_time_ms"):
        assert key in d
    assert set(d["victim_latency_ms"]) >= {"p50", "p99", "max"}
    assert isinstance(d["watchdog_fired"], bool)
    assert d["max_nonpreemptible_ms"] == max(d["max_nonpreemptible_by_pcpu_ms"])
    assert d["extra"]["ops"] == "model"  # the real model: a small guest
    assert m.to_json(indent=2) != m.to_json()


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0], 99) == 3.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(list(reversed(values)), 1) == 1.0
