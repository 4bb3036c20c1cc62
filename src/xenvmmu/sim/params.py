"""Named parameters of the simulated host, each with its default and where it comes from.

Simulated time is in **nanoseconds** (floats) everywhere in :mod:`xenvmmu.sim`; ``MS`` and
``US`` convert. Defaults marked *Xen* were read in xen-project/xen (paths below); defaults
marked *ASSUMED* are order-of-magnitude choices that a caller should vary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

US: Final = 1e3
MS: Final = 1e6
S: Final = 1e9


@dataclass(frozen=True)
class SchedParams:
    """A credit-like scheduler (Xen's credit1; credit2 is the default since 4.12).

    ``tslice_ms``
        Timeslice: 30 ms (Xen: ``sched_credit_tslice_ms``, xen/common/sched_credit.c
        @ RELEASE-4.4.0). The s_timer raises SCHEDULE_SOFTIRQ when it expires.
    ``ratelimit_us``
        A vCPU that has run for less than this is not preempted: 1000 us (Xen:
        ``sched_ratelimit_us``, introduced in 4.2). 0 disables.
    ``tick_ms``
        Per-pCPU accounting tick: 10 ms (credit1 ``CSCHED_MSECS_PER_TICK``). The tick
        timer is what makes an idle or guest-running pCPU pass through softirq processing.
    ``acct_ticks``
        Ticks per credit accounting period: 3 (credit1 ``CSCHED_TICKS_PER_ACCT``).
    ``boost_on_wake``
        A waking vCPU that is UNDER its fair share gets BOOST priority and preempts the
        running vCPU (credit1 ``csched_vcpu_wake``).
    """

    tslice_ms: float = 30.0
    ratelimit_us: float = 1000.0
    tick_ms: float = 10.0
    acct_ticks: int = 3
    boost_on_wake: bool = True

    def __post_init__(self) -> None:
        if self.tslice_ms <= 0 or self.tick_ms <= 0 or self.ratelimit_us < 0:
            raise ValueError("tslice_ms and tick_ms must be > 0, ratelimit_us >= 0")
        if self.acct_ticks < 1:
            raise ValueError("acct_ticks must be >= 1")

    @property
    def tslice_ns(self) -> float:
        return self.tslice_ms * MS

    @property
    def ratelimit_ns(self) -> float:
        return self.ratelimit_us * US

    @property
    def tick_ns(self) -> float:
        return self.tick_ms * MS


@dataclass(frozen=True)
class WatchdogParams:
    """Xen's NMI watchdog (xen/arch/x86/nmi.c @ RELEASE-4.4.0): off unless ``watchdog`` or a
    non-zero ``watchdog_timeout`` is on the command line.

    A per-pCPU software timer bumps a counter every ``timer_period_ms`` (1000 ms, Xen); it
    runs only when the pCPU processes softirqs. Each NMI compares the counter with the
    value it saw last time; after ``timeout_s * nmi_hz`` consecutive NMIs without a change
    the host panics ("Watchdog timer detects that CPU%d is stuck!").

    ``timeout_s``: 5 s (Xen ``watchdog_timeout`` default). ``nmi_hz``: 1 NMI per second
    (ASSUMED: the perf-counter NMI rate Xen programs for the watchdog). ``stop_on_panic``:
    end the run at the panic, as the real host would reboot.
    """

    timeout_s: float = 5.0
    nmi_hz: float = 1.0
    timer_period_ms: float = 1000.0
    stop_on_panic: bool = True

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.nmi_hz <= 0 or self.timer_period_ms <= 0:
            raise ValueError("watchdog timeout, NMI rate and timer period must be > 0")

    @property
    def alert_threshold(self) -> int:
        """Consecutive unchanged NMIs before the panic (``opt_watchdog_timeout*nmi_hz``)."""
        return max(1, round(self.timeout_s * self.nmi_hz))


@dataclass(frozen=True)
class HostParams:
    """The simulated machine.

    ``pcpus``
        Physical CPUs. Every vCPU is pinned to one of them (no load balancing).
    ``sched`` / ``watchdog``
        See :class:`SchedParams` and :class:`WatchdogParams`; ``watchdog=None`` = off, Xen's
        default.
    ``hypercall_entry_ns``
        Non-preemptible cost of entering the hypervisor for one hypercall or continuation
        (trap, argument copy, domctl checks): 500 ns, ASSUMED. It must be > 0 for another
        pCPU spinning on the domctl lock to win it between two continuations, as it does
        on real hardware.
    ``rcu_probe_ms``
        A background RCU user (its callbacks on the last pCPU) starts a grace period this
        long after its previous one ended, so the longest grace period is always measured;
        ``None`` disables it.
    ``trace``
        Keep a list of (time, pCPU, what) transitions (tests of event order).
    """

    pcpus: int = 2
    sched: SchedParams = field(default_factory=SchedParams)
    watchdog: WatchdogParams | None = None
    hypercall_entry_ns: float = 500.0
    rcu_probe_ms: float | None = 10.0
    trace: bool = False

    def __post_init__(self) -> None:
        if self.pcpus < 1:
            raise ValueError("a host needs at least one pCPU")
        if self.hypercall_entry_ns < 0:
            raise ValueError("hypercall_entry_ns must be >= 0")
        if self.rcu_probe_ms is not None and self.rcu_probe_ms < 0:
            raise ValueError("rcu_probe_ms must be >= 0 or None")
