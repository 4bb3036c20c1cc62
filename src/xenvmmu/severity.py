"""One severity scale for a non-preemptible section, shared by `audit`, `simulate` and
`report`: ``critical`` when it can trip Xen's NMI watchdog, ``high`` from 100 ms, ``medium``
from the latency budget.

When can a stall trip the watchdog? Xen (xen/arch/x86/nmi.c @ RELEASE-4.4.0) bumps a per-CPU
counter from a one-second software timer - which runs only when the CPU processes softirqs,
so not during the stall - and each NMI (``nmi_hz`` a second) counts an alert when the counter
has not moved, panicking after ``timeout * nmi_hz`` alerts in a row. The last tick before the
stall can be up to one timer period old, so a stall panics the host from
``timeout - timer period`` (4 s with the 5 s default), and always by ``timeout + 1 / nmi_hz``.
The simulator's watchdog follows the same rule, so both commands agree on ``critical``.
"""

from __future__ import annotations

from typing import Literal

Severity = Literal["critical", "high", "medium", "none"]

#: Xen's ``watchdog_timeout`` default, seconds (xen/arch/x86/nmi.c).
WATCHDOG_TIMEOUT_S = 5
#: The watchdog's software timer period, ms (``nmi_timer_fn`` re-arms itself every second).
WATCHDOG_TIMER_MS = 1000.0
#: From here a section is ``high`` whatever the budget (a tenth of a second of a lost CPU).
HIGH_MS = 100.0
#: One credit-scheduler timeslice (30 ms, xen/common/sched/credit.c): the longest a vCPU
#: expects to wait for its pCPU under normal scheduling; the default latency budget.
DEFAULT_BUDGET_MS = 30.0


def watchdog_panic_ms(timeout_s: float = WATCHDOG_TIMEOUT_S,
                      timer_period_ms: float = WATCHDOG_TIMER_MS) -> float:
    """The shortest non-preemptible section that can trip a watchdog of ``timeout_s``."""
    return max(0.0, timeout_s * 1000.0 - timer_period_ms)


def severity_for(stall_ms: float, budget_ms: float = DEFAULT_BUDGET_MS,
                 timeout_s: float = WATCHDOG_TIMEOUT_S) -> Severity:
    """critical: can trip a watchdog of ``timeout_s`` (whether or not it is on: a host may
    turn it on); high: >= 100 ms; medium: >= the budget; else none."""
    if stall_ms >= watchdog_panic_ms(timeout_s):
        return "critical"
    if stall_ms >= HIGH_MS:
        return "high"
    if stall_ms >= budget_ms:
        return "medium"
    return "none"
