"""What one auditor run measures against: costs, latency budget, attack assumptions."""

from __future__ import annotations

from dataclasses import dataclass

from ..costs import CostProfile
from ..costs.estimate import DEFAULT_ATTACK, AttackAssumptions

#: One credit-scheduler timeslice (30 ms, xen/common/sched/credit.c): the longest a vCPU
#: expects to wait for its pCPU under normal scheduling.
DEFAULT_BUDGET_MS = 30.0


@dataclass(frozen=True)
class AuditSettings:
    costs: CostProfile
    budget_ms: float = DEFAULT_BUDGET_MS
    attack: AttackAssumptions = DEFAULT_ATTACK
