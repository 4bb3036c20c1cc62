"""The four scenarios: releases compared, rules applied, model and closed forms alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenvmmu.model.constants import ERESTART
from xenvmmu.model.spec import DomainSpec
from xenvmmu.model.work import Loop, Op, PreemptCheck, WorkStep
from xenvmmu.sim.closed_form import ClosedFormGuest
from xenvmmu.sim.scenarios import (
    AttackParams,
    MigrationParams,
    TeardownParams,
    VramParams,
    run_scenario,
)
from xenvmmu.versions import profile_for

GiB = 1 << 30


def test_attack_hap_before_and_after_the_fix() -> None:
    old = run_scenario("attack", xen_version="4.4.0", memory_bytes=64 * GiB)
    backport = run_scenario("attack", xen_version="4.4.2", memory_bytes=64 * GiB)
    new = run_scenario("attack", xen_version="4.5.0", memory_bytes=64 * GiB)
    assert old.continuations == 0
    assert new.continuations > 0
    assert old.max_nonpreemptible_ms > 100 * new.max_nonpreemptible_ms
    # 4.4.2 has the walk preemptible but still sweeps the p2m in the CLEAN hook
    assert backport.max_nonpreemptible_ms > 100 * new.max_nonpreemptible_ms
    assert backport.op("shadow_op.clean").max_nonpreemptible_ms < \
        old.op("shadow_op.clean").max_nonpreemptible_ms
    assert new.victim_latency.max_ms < 2.0
    assert old.victim_latency.max_ms >= old.max_nonpreemptible_ms - 1.0


def test_attack_shadow_is_not_fixed_by_any_release() -> None:
    for version in ("4.4.0", "4.5.0", "4.17.0"):
        m = run_scenario("attack", xen_version=version, paging="shadow",
                         memory_bytes=16 * GiB)
        assert m.op("shadow_op.clean").max_nonpreemptible_ms > 10.0


def test_attack_scales_with_guest_size_before_the_fix() -> None:
    small = run_scenario("attack", xen_version="4.4.0", memory_bytes=4 * GiB)
    big = run_scenario("attack", xen_version="4.4.0", memory_bytes=64 * GiB)
    assert big.max_nonpreemptible_ms == pytest.approx(16 * small.max_nonpreemptible_ms,
                                                      rel=0.05)


def test_watchdog_catches_the_unfixed_attack_on_a_big_guest() -> None:
    # 1 TiB on AMD: the 4.4 NPT sweep takes a lock per entry, ~12 s at the high cost bound;
    # on Intel (EPT, ~4 s) the 5 s watchdog needs a bigger guest
    old = run_scenario("attack", xen_version="4.4.0", vendor="amd", memory_bytes=1 << 40,
                       watchdog=True)
    new = run_scenario("attack", xen_version="4.5.0", vendor="amd", memory_bytes=1 << 40,
                       watchdog=True, params=AttackParams(duration_ms=20.0))
    assert old.watchdog_fired and old.panic_cpu == 0
    assert not new.watchdog_fired
    intel = run_scenario("attack", xen_version="4.4.0", memory_bytes=1 << 40, watchdog=True)
    assert not intel.watchdog_fired and intel.max_nonpreemptible_ms > 1000
    big = run_scenario("attack", xen_version="4.4.0", memory_bytes=2 << 40, watchdog=True)
    assert big.watchdog_fired


def test_attack_params_and_progress() -> None:
    seen: list[tuple[str, float]] = []
    m = run_scenario("attack", xen_version="4.5.0", memory_bytes=2 * GiB,
                     params=AttackParams(duration_ms=5.0, ops=("peek",), max_calls=3),
                     progress=lambda msg, t: seen.append((msg, t)))
    assert m.extra["attack_calls"] == 3
    assert m.op("shadow_op.peek").calls == 3
    assert len(seen) == 3 and seen[0][0].startswith("peek #1: rc 0")
    assert [t for _, t in seen] == sorted(t for _, t in seen)


def test_migration_v2_stops_within_five_iterations() -> None:
    m = run_scenario("migration", xen_version="4.5.0", memory_bytes=16 * GiB)
    assert m.extra["migration_policy"] == "v2"
    assert 1 <= int(m.extra["migration_iterations"]) <= 5  # type: ignore[arg-type]
    clean = m.op("shadow_op.clean")
    assert clean.calls == int(m.extra["migration_iterations"]) + 1  # type: ignore[arg-type]
    assert m.op("shadow_op.off").last_rc == 0
    assert float(m.extra["migration_total_ms"]) > 10_000  # type: ignore[arg-type]


def test_migration_non_converging_guest() -> None:
    hot = dict(dirty_pages_per_s=2_000_000.0, wws_fraction=0.5)
    v2 = run_scenario("migration", xen_version="4.5.0", memory_bytes=4 * GiB,
                      params=MigrationParams(**hot))  # type: ignore[arg-type]
    legacy = run_scenario("migration", xen_version="4.5.0", memory_bytes=4 * GiB,
                          params=MigrationParams(policy="legacy", **hot))  # type: ignore[arg-type]
    assert v2.extra["migration_iterations"] == 5
    pages = (4 * GiB) >> 12
    it = int(legacy.extra["migration_iterations"])  # type: ignore[arg-type]
    sent = int(legacy.extra["migration_pages_sent"])  # type: ignore[arg-type]
    assert it == 29 or sent > 3 * pages


def test_migration_with_simulated_transfer_has_the_same_rounds() -> None:
    kw = dict(xen_version="4.5.0", memory_bytes=1 * GiB, seed=2)
    off = run_scenario("migration", **kw)  # type: ignore[arg-type]
    on = run_scenario("migration", params=MigrationParams(simulate_transfer=True),
                      **kw)  # type: ignore[arg-type]
    assert on.extra["migration_iterations"] == off.extra["migration_iterations"]
    assert on.sim_time_ms > 500.0 > off.sim_time_ms
    assert float(on.extra["migration_total_ms"]) == pytest.approx(  # type: ignore[arg-type]
        float(off.extra["migration_total_ms"]), rel=0.05)  # type: ignore[arg-type]


def test_migration_before_the_fix_stalls_the_host() -> None:
    old = run_scenario("migration", xen_version="4.4.0", memory_bytes=64 * GiB)
    new = run_scenario("migration", xen_version="4.5.0", memory_bytes=64 * GiB)
    assert old.max_nonpreemptible_ms > 5.0  # the 4.4 EPT sweep of 64 GiB: ~9 ms (high costs)
    assert old.max_nonpreemptible_ms > 20 * new.max_nonpreemptible_ms
    # some grace period started at most a tick (the running one may need only the other
    # pCPU) plus the probe's gap (10 ms) after the section did, and ended with it
    assert old.rcu_max_grace_ms >= old.max_nonpreemptible_ms - 20.0 - 1e-6
    assert old.extra["migration_iterations"] == new.extra["migration_iterations"]


def test_teardown_xsa410() -> None:
    old = run_scenario("teardown", xen_version="4.4.0", memory_bytes=256 * GiB)
    mid = run_scenario("teardown", xen_version="4.6.0", memory_bytes=256 * GiB)
    new = run_scenario("teardown", xen_version="4.17.0", memory_bytes=256 * GiB)
    # before XSA-410 the p2m pages are freed from an RCU callback, unpreemptibly
    assert old.op("rcu.paging_final_teardown").max_nonpreemptible_ms > 1.0
    assert mid.op("rcu.paging_final_teardown").max_nonpreemptible_ms > 1.0
    assert new.op("rcu.paging_final_teardown").max_nonpreemptible_ms < 0.01
    assert old.op("domctl.destroydomain").max_nonpreemptible_ms > \
        mid.op("domctl.destroydomain").max_nonpreemptible_ms
    assert new.max_nonpreemptible_ms < 1.0
    assert new.op("domctl.destroydomain").continuations > 0
    assert "teardown_ms" in new.extra


def test_teardown_without_trie() -> None:
    m = run_scenario("teardown", xen_version="4.17.0", memory_bytes=8 * GiB,
                     params=TeardownParams(log_dirty=False))
    assert m.op("domctl.destroydomain").last_rc == 0


def test_vram_hap_is_short_and_shadow_is_long() -> None:
    hap = run_scenario("vram", xen_version="4.5.0", memory_bytes=16 * GiB)
    shadow = run_scenario("vram", xen_version="4.5.0", paging="shadow", memory_bytes=4 * GiB,
                          params=VramParams(duration_ms=60.0, unknown_fraction=0.01))
    assert hap.op("hvmop.track_dirty_vram").calls >= 6
    assert hap.op("hvmop.track_dirty_vram").lock_busy == 0
    assert shadow.max_nonpreemptible_ms > hap.max_nonpreemptible_ms


def test_shadow_memory_sizes_the_pool() -> None:
    small = run_scenario("teardown", xen_version="4.4.0", paging="shadow",
                         memory_bytes=4 * GiB, shadow_memory_mib=64)
    big = run_scenario("teardown", xen_version="4.4.0", paging="shadow",
                       memory_bytes=4 * GiB, shadow_memory_mib=4096)
    assert small.extra["pool_pages"] == 64 * 256
    assert big.max_nonpreemptible_ms > 10 * small.max_nonpreemptible_ms


def test_profile_and_costs_arguments(tmp_path: Path) -> None:
    costs = tmp_path / "c.toml"
    costs.write_text("[units.entries_written]\nns = 0.0\n", encoding="utf-8")
    base = run_scenario("attack", profile=profile_for("4.4.0"), memory_bytes=8 * GiB)
    cheap = run_scenario("attack", xen_version="4.4.0", memory_bytes=8 * GiB, costs=costs)
    assert cheap.max_nonpreemptible_ms < base.max_nonpreemptible_ms / 2
    assert cheap.extra["cost_profile"] != base.extra["cost_profile"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        run_scenario("nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        run_scenario("attack", params=VramParams())
    with pytest.raises(ValueError):
        run_scenario("attack", memory_bytes=0)
    with pytest.raises(ValueError, match="too small"):  # pool smaller than the p2m
        run_scenario("attack", memory_bytes=64 * GiB, shadow_memory_mib=1, ops="model")


def test_guest_ops_hook() -> None:
    """``guest_ops`` replaces the built-in choice; here a wrapper that counts factories."""
    made: list[str] = []

    class Counting(ClosedFormGuest):
        def log_dirty(self, sub_op):  # type: ignore[no-untyped-def]
            made.append(sub_op)
            return super().log_dirty(sub_op)

    m = run_scenario("attack", xen_version="4.5.0", memory_bytes=2 * GiB,
                     params=AttackParams(max_calls=2),
                     guest_ops=lambda s, b: Counting(s, b))
    assert made == ["clean", "peek"]
    assert m.extra["ops"] == "custom"


def test_ops_choice() -> None:
    big = run_scenario("teardown", xen_version="4.17.0", memory_bytes=512 * GiB)
    small = run_scenario("teardown", xen_version="4.17.0", memory_bytes=2 * GiB)
    assert big.extra["ops"] == "closed-form" and small.extra["ops"] == "model"
    # a migrating guest's partial writes are not in closed form: the model, at any size
    mig = run_scenario("migration", xen_version="4.5.0", memory_bytes=300 * GiB)
    assert mig.extra["ops"] == "model"
    with pytest.raises(ValueError):
        run_scenario("attack", ops="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not cover"):
        run_scenario("migration", ops="closed-form")


def test_model_vram_reports_enodata_as_a_final_code() -> None:
    """Shadow VRAM tracking on the model: the first call blows the shadows and returns
    -ENODATA ("could not track this time"), later calls brute-force."""
    m = run_scenario("vram", xen_version="4.5.0", paging="shadow", memory_bytes=1 * GiB,
                     ops="model", params=VramParams(frames=64, duration_ms=70.0))
    rcs = dict(m.op("hvmop.track_dirty_vram").rc_counts)
    assert rcs.get(-61) == 1 and rcs.get(0, 0) >= 1
    assert m.op("hvmop.track_dirty_vram").calls == 1 + rcs[0]


def test_closed_form_walk_resumes_where_it_stopped() -> None:
    """Driving the replayed CLEAN by hand: preempted inside its loop of 64 GiB regions, the
    continuation resumes after the regions done, then runs the clean hook."""
    spec = DomainSpec(ram_bytes=200 * GiB + (1 << 20), vcpus=2, log_dirty=True, dirty="all")
    g = ClosedFormGuest(spec, profile_for("4.5.0").paging)
    make = g.log_dirty("clean")
    op: Op = make(False)
    steps = []
    step = op.send(None)
    while not (isinstance(step, Loop) and step.count >= 2):
        steps.append(step)
        step = op.send(False if isinstance(step, PreemptCheck) else None)
    first = step.count
    try:
        op.send(1)  # the check after the first iteration fires
        raise AssertionError("the operation went on after a fired check")
    except StopIteration as stop:
        assert stop.value == -ERESTART
    op = make(True)
    step = op.send(None)
    assert isinstance(step, Loop) and step.count == first - 1
    reply: bool | int | None = None
    whats = []
    while True:
        try:
            step = op.send(reply)
        except StopIteration as stop:
            assert stop.value == 0
            break
        reply = False if isinstance(step, PreemptCheck) else None
        if isinstance(step, WorkStep):
            whats.append(step.work)
    assert whats and whats[-1].tlb_flushes >= 1  # the clean hook ends the operation
