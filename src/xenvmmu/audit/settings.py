"""What one auditor run measures against: costs, latency budget, attack assumptions."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..costs import CostProfile
from ..model.attack import DEFAULT_ATTACK, AttackAssumptions
from ..severity import DEFAULT_BUDGET_MS as DEFAULT_BUDGET_MS  # re-exported


@dataclass(frozen=True)
class AuditSettings:
    costs: CostProfile
    budget_ms: float = DEFAULT_BUDGET_MS
    attack: AttackAssumptions = DEFAULT_ATTACK
    #: the registry advisories to report per guest (ids as ``XSA-410``); None: all of them
    advisories: frozenset[str] | None = None
    #: Priced operations of this run, keyed by the (hashable, cached) estimates they price:
    #: fleets repeat sizes, and mitigations re-estimate many sizes per guest.
    cache: dict[object, object] = field(default_factory=dict, compare=False, repr=False)
