"""Simulator figures: the XSA-97 attack across guest sizes, releases and paging modes.

For each (guest size, Xen release, paging mode) the ``attack`` scenario runs with the
watchdog armed but not stopping the run (``stop_on_panic=False``), so the table shows the
real length of the longest non-preemptible section *and* whether a 5 s watchdog would have
fired. Operations are the paging model's up to 256 GiB and a replay of its closed forms
above (the ``ops`` column says which ran). Wall time is process CPU time of one run.

A second figure times the analytic handling of ``Loop`` steps against the expanded form.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from simpy.events import Event

from xenvmmu.model.work import Loop, Op, PreemptCheck, Work, WorkStep
from xenvmmu.sim import Call, Host, HostParams, WatchdogParams
from xenvmmu.sim.scenarios import AttackParams, run_scenario

GiB = 1 << 30
SIZES = (1 * GiB, 16 * GiB, 256 * GiB, 1024 * GiB, 4096 * GiB, 16384 * GiB)
RELEASES = ("4.4.0", "4.4.2", "4.5.0", "4.17.0")
PAGING = ("hap", "shadow")


def _size(b: int) -> str:
    return f"{b >> 40} TiB" if b >= 1 << 40 else f"{b >> 30} GiB"


def attack_table(sizes: tuple[int, ...] = SIZES, releases: tuple[str, ...] = RELEASES,
                 paging: tuple[str, ...] = PAGING) -> None:
    wd = WatchdogParams(stop_on_panic=False)
    print(f"{'guest':>8} {'xen':>7} {'paging':>6} {'max_np_ms':>12} {'victim_max':>11} "
          f"{'victim_p99':>10} {'rcu_max':>11} {'wd':>3} {'cont':>6} {'sim_s':>9} "
          f"{'wall_ms':>8} ops")
    total = 0.0
    for size in sizes:
        for rel in releases:
            for mode in paging:
                t0 = time.process_time()
                m = run_scenario("attack", xen_version=rel, paging=mode,  # type: ignore[arg-type]
                                 memory_bytes=size, watchdog=wd, seed=1,
                                 params=AttackParams(duration_ms=50.0))
                wall = (time.process_time() - t0) * 1e3
                total += wall
                v = m.victim_latency
                print(f"{_size(size):>8} {rel:>7} {mode:>6} {m.max_nonpreemptible_ms:12.3f} "
                      f"{v.max_ms:11.3f} {v.p99_ms:10.3f} {m.rcu_max_grace_ms:11.3f} "
                      f"{'yes' if m.watchdog_fired else 'no':>3} {m.continuations:6d} "
                      f"{m.sim_time_ms / 1e3:9.3f} {wall:8.1f} {m.extra['ops']}")
    print(f"attack table: {len(sizes) * len(releases) * len(paging)} runs, "
          f"{total / 1e3:.2f} s CPU")


def _loop_op(n: int, compact: bool, fired: list[int]) -> Op:
    work = Work(entries_read=1)
    if compact:
        k = yield Loop(work, n, PreemptCheck("bench"), "bench")
        fired.append(n if k is None else int(k))
        return 0
    for i in range(1, n + 1):
        yield WorkStep(work, "bench")
        if (yield PreemptCheck("bench")):
            fired.append(i)
            return 0
    fired.append(n)
    return 0


def loop_figure() -> None:
    """CPU time to run a loop of n iterations (one entries_read each, default cost) with a check
    after each, until its first tick fires a check: expanded steps vs one ``Loop``."""
    for n, compact in ((1 << 16, False), (1 << 16, True), (1 << 30, True)):
        h = Host(HostParams(pcpus=1, rcu_probe_ms=None), seed=0)
        v = h.vcpu("dom0.0", domain="dom0", pcpu=0)
        fired: list[int] = []

        def prog(h: Host = h, v: Any = v, n: int = n, compact: bool = compact,
                 fired: list[int] = fired) -> Generator[Event, Any, None]:
            yield from v.call(Call("loop", lambda _r: _loop_op(n, compact, fired)))
            h.finish()

        v.start(prog())
        t0 = time.process_time()
        h.run()
        wall = (time.process_time() - t0) * 1e3
        form = "Loop    " if compact else "expanded"
        print(f"loop: {form} n=2^{n.bit_length() - 1:<2}: {fired[0]:>10} iterations "
              f"({h.env.now / 1e6:7.3f} ms simulated) in {wall:8.2f} ms CPU")


def main() -> None:
    attack_table()
    print()
    loop_figure()


if __name__ == "__main__":
    main()
