"""pCPUs, the scheduler, the victim, RCU and the watchdog."""

from __future__ import annotations

import itertools
from collections.abc import Generator
from typing import Any

import pytest
from simpy import Environment
from simpy.events import Event

from xenvmmu.model.work import Op, PreemptCheck, WorkStep
from xenvmmu.sim import (
    MS,
    Call,
    HostParams,
    Mode,
    SchedParams,
    SimulationError,
    Softirq,
    WatchdogParams,
)
from xenvmmu.sim.softirq import Softirqs
from xenvmmu.sim.timer import Timer, TimerQueue

from .fakes import UNIT, Chunks, host, ns, one_step, run_one

# -- timers and softirqs ---------------------------------------------------------------------


def test_timer_queue_orders_and_forgets_rearmed_timers() -> None:
    q = TimerQueue()
    fired: list[str] = []
    a, b = Timer("a", lambda: fired.append("a")), Timer("b", lambda: fired.append("b"))
    q.set(a, 10.0)
    q.set(b, 5.0)
    q.set(a, 3.0)  # re-armed: the 10.0 entry is stale
    assert q.earliest() == 3.0
    while (t := q.pop_due(20.0)) is not None:
        t.fn()
    assert fired == ["a", "b"]
    q.set(a, 1.0)
    q.stop(a)
    assert q.earliest() is None and not a.active


def test_softirqs_run_lowest_first_once_per_pass() -> None:
    env = Environment()
    s = Softirqs(env)
    ran: list[str] = []
    s.on_pass(lambda: ran.append("pass"))
    s.open(Softirq.RCU, lambda: ran.append("rcu"))
    s.open(Softirq.TIMER, lambda: ran.append("timer"))
    assert s.mark(Softirq.RCU) and s.mark(Softirq.TIMER) and not s.mark(Softirq.RCU)
    assert s.process(lambda: True)
    assert ran == ["pass", "timer", "rcu"] and s.passes == 1
    assert not s.pending and s.pending_since is None
    assert not s.process(lambda: True)  # nothing pending: no pass
    s.mark(Softirq.TIMER)
    assert not s.process(lambda: False) and s.pending == {Softirq.TIMER}  # not allowed now


def test_a_softirq_without_handler_fails_loudly() -> None:
    s = Softirqs(Environment())
    s.open(Softirq.TIMER, lambda: None)
    with pytest.raises(SimulationError):
        s.open(Softirq.TIMER, lambda: None)
    s.mark(Softirq.SCHEDULE)
    with pytest.raises(SimulationError):
        s.process(lambda: True)


def test_stuck_pcpu_takes_one_timer_interrupt_and_keeps_softirqs_pending() -> None:
    h = host(1, params=HostParams(pcpus=1, rcu_probe_ms=None))
    p = h.pcpus[0]
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    seen: dict[str, Any] = {}

    def watch() -> Generator[Event, Any, None]:
        yield h.env.timeout(55 * MS)
        seen["mode"] = p.mode
        seen["pending"] = set(p.softirqs.pending)
        seen["ticks"] = h.scheds[0].ticks
        seen["since"] = p.softirqs.pending_since

    h.process(watch())
    run_one(h, v, Call("long", one_step(100 * MS)))
    assert seen["mode"] is Mode.XEN
    assert seen["pending"] == {Softirq.TIMER}
    assert seen["ticks"] == 0  # the tick's callback never ran while stuck
    assert seen["since"] < 10 * MS
    assert h.scheds[0].ticks >= 1 and not p.softirqs.pending  # ran at the exit


def test_enter_xen_twice_is_an_error() -> None:
    h = host(1)
    h.pcpus[0].enter_xen("a")
    with pytest.raises(SimulationError):
        h.pcpus[0].enter_xen("b")
    h.pcpus[0].exit_to_guest(None)
    with pytest.raises(SimulationError):
        h.pcpus[0].exit_to_guest(None)


def test_compute_outside_own_process_is_refused() -> None:
    h = host(1)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)

    def stranger() -> Generator[Event, Any, None]:
        yield from v.compute(1000.0)

    h.process(stranger())
    with pytest.raises(SimulationError):
        h.run(until_ms=1)


# -- scheduler -------------------------------------------------------------------------------


def _hogs(h: Any, n: int, ms: float) -> dict[str, float]:
    done: dict[str, float] = {}
    for i in range(n):
        v = h.vcpu(f"hog.{i}", domain=f"hog{i}", pcpu=0)

        def prog(v: Any = v) -> Generator[Event, Any, None]:
            yield from v.compute(ms * MS)
            done[v.name] = h.env.now
            if len(done) == n:
                h.finish()

        v.start(prog())
    return done


def test_two_cpu_hogs_share_a_pcpu_in_timeslices() -> None:
    h = host(1, params=HostParams(pcpus=1, trace=True, rcu_probe_ms=None))
    done = _hogs(h, 2, 90.0)
    m = h.run()
    assert m.sim_time_ms == pytest.approx(180.0)
    switches = [t for t, _, what in h.events if what.startswith("run hog")]
    gaps = [b - a for a, b in itertools.pairwise(switches)]
    assert gaps and all(g <= 30 * MS + 1e-6 for g in gaps)
    assert min(done.values()) > 90 * MS  # neither ran to completion alone


def test_rate_limit_keeps_a_freshly_scheduled_vcpu() -> None:
    params = HostParams(pcpus=1, sched=SchedParams(ratelimit_us=5000.0), rcu_probe_ms=None)
    h = host(1, params=params)
    h.victim(0, period_ms=1.0, work_us=1.0)
    _hogs(h, 1, 50.0)
    m = h.run()
    # the hog runs >= 5 ms per scheduling; the victim waits up to that long
    assert 3.0 < m.victim_latency.max_ms <= 5.0 + 1e-6


def test_victim_on_an_idle_pcpu_runs_on_time() -> None:
    h = host(1, params=HostParams(pcpus=1, rcu_probe_ms=None))
    h.victim(0)
    m = h.run(until_ms=100)
    assert m.victim_latency.samples >= 99
    assert m.victim_latency.max_ms == 0.0 and m.victim_latency.missed_wakes == 0


def test_schedparams_validation() -> None:
    with pytest.raises(ValueError):
        SchedParams(tslice_ms=0)
    with pytest.raises(ValueError):
        SchedParams(acct_ticks=0)
    with pytest.raises(ValueError):
        HostParams(pcpus=0)
    with pytest.raises(ValueError):
        WatchdogParams(timeout_s=0)


# -- the victim ------------------------------------------------------------------------------


@pytest.mark.parametrize("length_ms", [3.0, 20.0, 77.0])
def test_victim_delay_reaches_the_longest_section_on_its_pcpu(length_ms: float) -> None:
    h = host(2, seed=int(length_ms))
    h.victim(0, period_ms=1.0)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    m, _ = run_one(h, v, Call("long", one_step(length_ms * MS)), after_ns=2.3 * MS)
    longest = m.max_nonpreemptible_by_pcpu_ms[0]
    assert longest == pytest.approx(length_ms + 0.0005)
    # it may have woken up to one period before the section started
    assert m.victim_latency.max_ms >= longest - 1.0
    assert m.victim_latency.max_ms <= longest + 1.0 + 1e-6
    assert m.victim_latency.missed_wakes >= int(length_ms) - 2


def test_victim_parameters_are_checked_before_anything_is_built() -> None:
    h = host(1)
    with pytest.raises(ValueError):
        h.victim(0, period_ms=0.0)
    assert "victim" not in h.domains


def test_victim_on_another_pcpu_is_not_delayed() -> None:
    h = host(2)
    h.victim(1)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    m, _ = run_one(h, v, Call("long", one_step(50 * MS)))
    assert m.max_nonpreemptible_by_pcpu_ms[0] == pytest.approx(50.0005)
    assert m.max_nonpreemptible_by_pcpu_ms[1] == 0.0
    assert m.victim_latency.max_ms == 0.0


def test_preemptible_op_bounds_the_victim_delay() -> None:
    h = host(1)
    h.victim(0)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    m, _ = run_one(h, v, Call("split", Chunks(200, 0.25 * MS)))
    # a section (0.25 ms) plus at most the 1 ms rate limit
    assert m.victim_latency.max_ms <= 0.2505 + 1.0 + 1e-6


# -- RCU -------------------------------------------------------------------------------------


def test_rcu_grace_period_is_stretched_by_a_nonpreemptible_section() -> None:
    h = host(2)
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    m, _ = run_one(h, v, Call("long", one_step(200 * MS)), after_ns=5 * MS)
    assert m.rcu_max_grace_ms >= 190.0

    h2 = host(2)
    v2 = h2.vcpu("dom0.0", domain="dom0", pcpu=0)
    m2, _ = run_one(h2, v2, Call("split", Chunks(800, 0.25 * MS)), after_ns=5 * MS)
    assert m2.rcu_max_grace_ms <= 20.0 + 1e-6
    assert m2.rcu_grace_periods > m.rcu_grace_periods


def test_rcu_callback_work_runs_unpreemptibly_in_softirq_context() -> None:
    h = host(2)
    h.victim(0)
    fired: list[bool] = []

    def op() -> Op:
        for _ in range(10):
            yield WorkStep(ns(5 * MS), "final_teardown")
            fired.append(bool((yield PreemptCheck("never"))))
        return 0

    def driver() -> Generator[Event, Any, None]:
        yield h.env.timeout(3 * MS)
        yield h.rcu.call_rcu(0, op=op, name="rcu.final")
        h.finish()

    h.process(driver())
    m = h.run()
    assert fired == [False] * 10
    assert m.op("rcu.final").max_nonpreemptible_ms == pytest.approx(50.0)
    assert m.victim_latency.max_ms >= 49.0


def test_rcu_synchronize_waits_for_every_pcpu() -> None:
    h = host(3, params=HostParams(pcpus=3, rcu_probe_ms=None))
    v = h.vcpu("dom0.0", domain="dom0", pcpu=2)
    got: list[float] = []

    def driver() -> Generator[Event, Any, None]:
        yield h.env.timeout(1 * MS)
        yield h.rcu.synchronize()
        got.append(h.env.now)

    h.process(driver())
    run_one(h, v, Call("long", one_step(40 * MS)))
    assert got and got[0] >= 40 * MS


# -- the watchdog ----------------------------------------------------------------------------


def test_watchdog_panics_on_a_long_nonpreemptible_op() -> None:
    h = host(2, params=HostParams(pcpus=2, watchdog=WatchdogParams()))
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    m, results = run_one(h, v, Call("long", one_step(8000 * MS)))
    assert m.watchdog_fired and m.panic_cpu == 0
    # 5 consecutive NMIs (1 s apart) without a soft tick: 4-6 s after the stall began,
    # depending on where the last soft tick fell between two NMIs
    assert m.panic_at_ms is not None and 4000.0 <= m.panic_at_ms <= 6000.0
    assert results == []  # the host died before the call returned
    assert m.max_nonpreemptible_ms == pytest.approx(m.panic_at_ms, abs=1e-3)


def test_the_same_work_split_with_checks_does_not_panic() -> None:
    h = host(2, params=HostParams(pcpus=2, watchdog=WatchdogParams()))
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    m, [r] = run_one(h, v, Call("split", Chunks(800, 10 * MS)))
    assert not m.watchdog_fired and r.rc == 0
    assert m.sim_time_ms > 8000.0


def test_watchdog_is_off_by_default() -> None:
    h = host(1)
    assert h.watchdog is None
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    m, [r] = run_one(h, v, Call("long", one_step(6000 * MS)))
    assert not m.watchdog_fired and r.rc == 0


def test_panic_can_be_recorded_without_stopping() -> None:
    wd = WatchdogParams(timeout_s=1.0, stop_on_panic=False)
    h = host(1, params=HostParams(pcpus=1, watchdog=wd))
    v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
    m, [r] = run_one(h, v, Call("long", one_step(3000 * MS)))
    assert m.watchdog_fired and r.rc == 0


def test_unit_profile_is_exact() -> None:
    assert UNIT.ns(ns(12345)) == 12345.0
