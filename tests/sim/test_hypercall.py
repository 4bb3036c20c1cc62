"""Running operations: continuations, Loop analytics, the domctl lock, -EBUSY, fail-loud."""

from __future__ import annotations

from collections.abc import Generator
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simpy.events import Event

from xenvmmu.costs import CostProfile
from xenvmmu.model.constants import EBUSY, ERESTART
from xenvmmu.model.work import FIELDS, Op, PreemptCheck, Work, WorkStep
from xenvmmu.sim import (
    MS,
    Call,
    CallResult,
    HostParams,
    ProtocolError,
    SimDomain,
    first_firing_iteration,
)

from .fakes import Chunks, Looped, host, ns, one_step, run_one


def test_preemptible_op_continues_until_done() -> None:
    h = host(1)
    h.victim(0)
    op = Chunks(50, 0.5 * MS)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    m, [r] = run_one(h, v, Call("fake", op))
    assert r.rc == 0 and op.done == 50
    assert r.continuations == len(op.fired) > 0
    assert r.entries == r.continuations + 1
    # every section is one chunk plus at most the entry cost
    assert m.op("fake").max_nonpreemptible_ms == pytest.approx(0.5005, abs=1e-6)
    assert m.continuations == r.continuations


def test_check_fires_only_when_something_is_pending() -> None:
    h = host(1, params=HostParams(pcpus=1, rcu_probe_ms=None))
    op = Chunks(4, 1000.0)  # 4 us in all: no tick in between (tick phase >= 0 ... 10 ms)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    tick = h.scheds[0].ticker.deadline
    _, [r] = run_one(h, v, Call("fake", op), after_ns=0.0)
    assert tick > 5000.0 or r.continuations <= 1
    if tick > 5000.0:
        assert r.continuations == 0


def test_check_sees_an_interrupt_at_the_same_instant() -> None:
    """Hardware interrupts are URGENT: a check at time t sees a timer due at t."""
    h = host(1, params=HostParams(pcpus=1, rcu_probe_ms=None, hypercall_entry_ns=0.0))
    tick = h.scheds[0].ticker.deadline
    # one unit of work costs exactly the time to the tick: the first chunk ends on it
    h.cost = CostProfile("tick", MappingProxyType({f: tick if f == "entries_read" else 0.0
                                                   for f in FIELDS}))
    op = Chunks(2, 1.0)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    _, [r] = run_one(h, v, Call("fake", op))
    assert op.fired == [1]
    assert r.continuations == 1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), chunk=st.integers(1, 400_000), seed=st.integers(0, 50),
       victim=st.booleans())
def test_loop_is_the_same_as_its_expanded_form(n: int, chunk: int, seed: int,
                                               victim: bool) -> None:
    runs = []
    for compact in (True, False):
        h = host(2, seed=seed)
        if victim:
            h.victim(0, period_ms=0.7)
        op = Looped(n, chunk, compact=compact)
        v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
        m, [r] = run_one(h, v, Call("fake", op))
        assert op.done == n
        runs.append((op.fired, r.entries, r.continuations, r.rc, m.sim_time_ms,
                     m.max_nonpreemptible_ms, m.victim_latency))
    assert runs[0] == runs[1]


def test_first_firing_iteration() -> None:
    assert first_firing_iteration(0.0, 10.0, 0.0, 5) == 1
    assert first_firing_iteration(0.0, 10.0, 10.0, 5) == 1
    assert first_firing_iteration(0.0, 10.0, 10.5, 5) == 2
    assert first_firing_iteration(0.0, 10.0, 50.0, 5) == 5
    assert first_firing_iteration(100.0, 0.0, 150.0, 5) == 1
    assert first_firing_iteration(0.1, 0.2, 0.30000000000000004, 9) == 1


def test_loop_of_a_billion_iterations_is_cheap() -> None:
    """2^30 iterations of 1 ns with a check each: a tick fires the check analytically."""
    h = host(1, params=HostParams(pcpus=1, rcu_probe_ms=None))
    op = Looped(1 << 30, 1, compact=True)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    m, [r] = run_one(h, v, Call("fake", op))
    assert r.rc == 0 and op.done == 1 << 30
    assert r.continuations >= 100  # one per 10 ms tick over ~1.07 s
    assert m.max_nonpreemptible_ms < 0.001


def test_domctl_lock_contention_gives_a_continuation() -> None:
    h = host(2)
    a = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    b = h.vcpu("dom0.1", domain="dom0", pcpu=1)
    results: dict[str, CallResult] = {}

    def prog(v: Any, name: str, delay: float, call: Call) -> Generator[Event, Any, None]:
        yield from v.compute(delay)
        results[name] = yield from v.call(call)
        if len(results) == 2:
            h.finish()

    a.start(prog(a, "a", 1.0, Call("long", one_step(50 * MS))))
    b.start(prog(b, "b", 10 * MS, Call("short", one_step(1000.0))))
    m = h.run()
    assert results["b"].lock_busy >= 1 and results["b"].continuations >= 1
    assert results["b"].returned_ns > results["a"].returned_ns - 1000.0
    assert m.op("short").lock_busy >= 1
    assert m.domctl_lock_max_wait_ms == pytest.approx(40.0, abs=0.01)
    # non-domctl calls do not take the lock
    assert h.hv.lock.holder is None


def test_conflicting_paging_op_gets_ebusy() -> None:
    h = host(2)
    h.victim(0)
    target = h.domain("guest")
    a = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    b = h.vcpu("dm.0", domain="dm", pcpu=1)
    clean = Chunks(40, 0.5 * MS)
    results: dict[str, list[CallResult]] = {"a": [], "b": []}

    def prog_a() -> Generator[Event, Any, None]:
        results["a"].append((yield from a.call(
            Call("clean", clean, target=target, pause_target=True, preempt_key="clean"))))

    def prog_b() -> Generator[Event, Any, None]:
        yield from b.compute(5 * MS)
        results["b"].append((yield from b.call(
            Call("peek", Chunks(2, 1000.0), target=target, preempt_key="peek"))))
        yield from b.compute(30 * MS)  # a has finished by now
        results["b"].append((yield from b.call(
            Call("peek", Chunks(2, 1000.0), target=target, preempt_key="peek"))))
        h.finish()

    a.start(prog_a())
    b.start(prog_b())
    h.run()
    assert results["a"][0].rc == 0 and results["a"][0].continuations > 0
    assert [r.rc for r in results["b"]] == [-EBUSY, 0]
    assert target.preempt is None and not target.paused


def test_paging_op_entry_rules() -> None:
    h = host(1)
    d = h.domain("g")
    assert d.check_paging_op("dom0", "clean", False) == 0
    assert d.check_paging_op("dom0", "clean", True) == -EBUSY
    from xenvmmu.sim import PendingPagingOp
    d.preempt = PendingPagingOp("dom0", "clean")
    assert d.check_paging_op("dom0", "clean", True) == 0
    assert d.check_paging_op("dom0", "clean", False) == -EBUSY
    assert d.check_paging_op("dm", "clean", True) == -EBUSY
    assert d.check_paging_op("dom0", "peek", True) == -EBUSY


def test_target_stays_paused_across_continuations() -> None:
    h = host(1)
    h.victim(0)
    target = h.domain("guest")
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    seen: list[bool] = []
    state = {"i": 0}

    def op(resuming: bool) -> Op:
        while state["i"] < 20:
            seen.append(target.paused)
            yield WorkStep(ns(0.5 * MS), "x")
            state["i"] += 1
            if (yield PreemptCheck("x")):
                return -ERESTART
        return 0

    _, [r] = run_one(h, v, Call("clean", op, target=target, pause_target=True,
                                preempt_key="clean"))
    assert r.continuations > 0 and all(seen)
    assert not target.paused
    # paused from just after the first entry (500 ns) to the final return
    assert target.paused_ns == pytest.approx(r.elapsed_ns - 500.0, abs=1.0)


def test_eagain_restart_reissues_the_call() -> None:
    h = host(1)
    h.victim(0)
    op = Chunks(30, 0.5 * MS)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    _, [r] = run_one(h, v, Call("destroy", op, on_restart="eagain"))
    assert r.rc == 0 and op.done == 30 and r.continuations > 0


def _bad_ops() -> list[Op]:
    def yields_junk(_r: bool) -> Any:
        yield "not a step"
        return 0

    def returns_positive(_r: bool) -> Op:
        yield WorkStep(Work(), "x")
        return 5

    def raises(_r: bool) -> Op:
        yield WorkStep(Work(), "x")
        raise ValueError("model bug")

    return [yields_junk(False), returns_positive(False), raises(False)]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_failing_operation_stops_the_run_loudly(which: int) -> None:
    h = host(1)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    op = _bad_ops()[which]
    with pytest.raises((ProtocolError, ValueError)):
        run_one(h, v, Call("bad", lambda _r: op))


def test_negative_loop_count_is_a_protocol_error() -> None:
    from xenvmmu.model.work import Loop

    def op(_r: bool) -> Op:
        yield Loop(Work(), -1, PreemptCheck("x"), "x")
        return 0

    h = host(1)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    with pytest.raises(ProtocolError):
        run_one(h, v, Call("bad", op))


def test_simdomain_unpause_without_pause() -> None:
    h = host(1)
    d: SimDomain = h.domain("g")
    with pytest.raises(RuntimeError):
        d.unpause()


def test_an_event_for_the_caller_fires_its_check() -> None:
    """``hypercall_preempt_check()``'s second condition: an event for the calling vCPU."""
    seed = next(s for s in range(50) if host(1, seed=s).scheds[0].ticker.deadline > MS)
    h = host(1, seed=seed, params=HostParams(pcpus=1, rcu_probe_ms=None))
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    op = Chunks(4, 100_000.0)
    h.at(150_000.0, v.send_event)
    _, [r] = run_one(h, v, Call("fake", op))
    assert op.fired == [2] and r.continuations == 1
    assert not v.events_pending  # delivered on the way out


def test_public_api_is_importable() -> None:
    import xenvmmu.sim as sim

    for name in sim.__all__:
        assert getattr(sim, name) is not None
