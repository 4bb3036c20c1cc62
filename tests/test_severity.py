"""One severity scale: audit and simulate agree on what can trip the watchdog."""

from __future__ import annotations

import pytest

from xenvmmu.severity import DEFAULT_BUDGET_MS, severity_for, watchdog_panic_ms
from xenvmmu.sim.scenarios import AttackParams, run_scenario

GiB = 1 << 30


def test_scale() -> None:
    assert watchdog_panic_ms(5) == 4000.0 and watchdog_panic_ms(10) == 9000.0
    assert severity_for(4500) == "critical"  # a 5 s watchdog can fire from 4 s
    assert severity_for(3999) == "high"
    assert severity_for(100) == "high" and severity_for(99) == "medium"
    assert severity_for(DEFAULT_BUDGET_MS) == "medium"
    assert severity_for(DEFAULT_BUDGET_MS - 1) == "none"
    assert severity_for(4500, timeout_s=10) == "high"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_simulated_watchdog_follows_the_same_rule(seed: int) -> None:
    """Below the shortest panicking stall the simulated watchdog never fires; a longer one
    panics the host between that bound and timeout + one NMI period (the run stops there)."""
    short = run_scenario("attack", xen_version="4.4.0", memory_bytes=800 * GiB, seed=seed,
                         watchdog=True, params=AttackParams(duration_ms=1.0))
    assert short.max_nonpreemptible_ms < watchdog_panic_ms()
    assert not short.watchdog_fired
    long = run_scenario("attack", xen_version="4.4.0", memory_bytes=2048 * GiB, seed=seed,
                        watchdog=True, params=AttackParams(duration_ms=1.0))
    assert long.watchdog_fired
    assert watchdog_panic_ms() <= long.max_nonpreemptible_ms <= 6000
    assert severity_for(long.max_nonpreemptible_ms) == "critical"
