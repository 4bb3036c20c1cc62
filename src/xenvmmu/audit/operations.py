"""The operations of XSA-97's class that can be driven against one guest, as the model's closed
forms (:mod:`xenvmmu.model.analytic`) describe them.

This module holds no formula: it picks, per operation, the closed form and the guest state it
runs on (the attacker's worst case), and says who can drive it and whether the release preempts
it. Pricing is :meth:`OpEstimate.worst_ns` with a cost profile. The simulator replays the same
closed forms, so the auditor's figure for an operation is the simulator's section for the same
guest, host and costs.

Worst case (research note xen-paging.md §3-§7): log-dirty is on and the guest has written every
page (every p2m superpage shattered to 4 KiB, every log-dirty leaf present); under shadow
paging its page tables fill the shadow pool. Dirty-VRAM tracking and the pool resize run on a
guest with log-dirty off, as a device model meets it. The workload choices that are not Xen
facts are the parameters of :class:`~xenvmmu.model.attack.AttackAssumptions`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from ..model import analytic
from ..model.analytic import Estimate
from ..model.attack import DEFAULT_ATTACK, VRAM_BEGIN_GFN, AttackAssumptions
from ..model.spec import DomainSpec
from ..versions import Paging, PagingBehaviour

PAGE_SHIFT = 12


@dataclass(frozen=True)
class OpEstimate:
    """One operation against the guest: who drives it, whether the release preempts it, and
    its closed form (every section; the auditor reports the longest)."""

    op: str
    triggers: tuple[str, ...]
    preemptible: bool
    estimate: Estimate
    related: bool = False  # outside XSA-97's verdict (same class: teardown, set_allocation)
    reference: str = "XSA-97"
    note: str = ""

    def worst_ns(self, ns_per_unit: Mapping[str, float]) -> float:
        """The longest non-preemptible section, priced."""
        return self.estimate.longest_ns(ns_per_unit)


class PoolTooSmall(ValueError):
    """The paging pool cannot hold the worst-case p2m and log-dirty bitmap of this guest."""


def pool_for_estimate(pages: int, pool_pages: int, paging: Paging, vcpus: int) -> int:
    """``pool_pages``, or the smallest pool that holds the worst-case p2m and bitmap when the
    real one cannot: Xen would then fail the guest's p2m or bitmap allocations, so the
    attacker gets less than the full worst case; estimating as if they succeeded is an upper
    bound (the caller says so)."""
    need = analytic.min_pool_pages(worst_case_spec(pages, 0, paging, vcpus))
    return max(pool_pages, need)


def worst_case_spec(pages: int, pool_pages: int, paging: Paging, vcpus: int,
                    log_dirty: bool = True) -> DomainSpec:
    """The guest state the audit assumes: ``pages`` of RAM, the pool, every page written."""
    return DomainSpec(
        ram_bytes=pages << PAGE_SHIFT, vcpus=max(1, vcpus), paging=paging,
        pool_kib=pool_pages * 4, log_dirty=log_dirty, dirty="all" if log_dirty else "none",
    )


def estimate_ops(
    pages: int,
    pool_pages: int,
    paging: Paging,
    behaviour: PagingBehaviour,
    vcpus: int = 1,
    attack: AttackAssumptions = DEFAULT_ATTACK,
) -> tuple[OpEstimate, ...]:
    """Every operation of XSA-97's class against an HVM guest of ``pages`` 4 KiB pages (its
    maximum memory) with a paging pool of ``pool_pages``, as a release with ``behaviour``
    runs it: XSA-97's own (:func:`xsa97_ops`), then the related ones (:func:`related_ops`).
    Raises :class:`PoolTooSmall` when the pool cannot hold the worst-case state."""
    key = (pages, pool_pages, paging, behaviour, vcpus)
    return xsa97_ops(*key, attack) + related_ops(*key)


def _specs(pages: int, pool_pages: int, paging: Paging,
           vcpus: int) -> tuple[DomainSpec, DomainSpec]:
    return (worst_case_spec(pages, pool_pages, paging, vcpus),
            worst_case_spec(pages, pool_pages, paging, vcpus, log_dirty=False))


@functools.lru_cache(maxsize=1 << 15)
def xsa97_ops(
    pages: int, pool_pages: int, paging: Paging, behaviour: PagingBehaviour, vcpus: int,
    attack: AttackAssumptions,
) -> tuple[OpEstimate, ...]:
    """The operations of XSA-97's verdict: log-dirty ENABLE / PEEK / CLEAN / OFF with their
    mode hooks, and dirty-VRAM tracking."""
    dirty, clean = _specs(pages, pool_pages, paging, vcpus)
    b = behaviour
    try:
        enable = analytic.enable(clean, b)
        peek = analytic.clean(dirty, b, peek=True)
        clean_op = analytic.clean(dirty, b)
        off = analytic.disable(dirty, b)
        vram = analytic.track_vram(clean, b, min(attack.vram_frames, pages), VRAM_BEGIN_GFN,
                                   unknown_frames=attack.vram_unknown_frames)
    except ValueError as e:
        raise PoolTooSmall(str(e)) from None
    fixed = b.logdirty_preemptible
    if paging == "hap":
        hook_preemptible = b.hap_retype == "lazy"
        hook_name = "HAP global p2m retype"
    else:
        hook_preemptible = False
        hook_name = "shadow blow-tables"
    ld = ("toolstack", "device_model", "guest")
    walk_note = "guest dirtying one page per 128 MiB makes every bitmap leaf exist"
    return (
        OpEstimate("logdirty_enable", ld, hook_preemptible, enable,
                   note=f"runs the {hook_name} once"),
        OpEstimate("logdirty_peek", ld, fixed, peek, note=walk_note),
        OpEstimate("logdirty_clean", ld, fixed and hook_preemptible, clean_op,
                   note=f"bitmap walk, then the {hook_name}; {walk_note}"),
        OpEstimate("logdirty_off", ld, fixed and hook_preemptible, off,
                   note=f"{hook_name}, then the bitmap is freed"),
        OpEstimate("vram_track", ("device_model",), False, vram,
                   note=f"{vram_frames_note(attack, paging)}; never preemptible"),
    )


@functools.lru_cache(maxsize=1 << 14)
def related_ops(
    pages: int, pool_pages: int, paging: Paging, behaviour: PagingBehaviour, vcpus: int,
) -> tuple[OpEstimate, ...]:
    """Same-class operations reported beside the verdict: teardown and pool resizing."""
    dirty, clean = _specs(pages, pool_pages, paging, vcpus)
    b = behaviour
    try:
        teardown = analytic.teardown(dirty, b)
        grow = analytic.set_allocation(clean, b, 2 * (pool_pages >> 8) + 1)
    except ValueError as e:
        raise PoolTooSmall(str(e)) from None
    return (
        OpEstimate(
            "teardown_relinquish", ("toolstack", "guest"),
            b.pool_teardown_preemptible and b.logdirty_preemptible, teardown.call(0),
            related=True,
            reference="2015 paging-pool teardown fix (0174da5b79); XSA-410 (CVE-2022-33746)",
            note="domain destruction frees the paging pool, the log-dirty bitmap and (with "
            "XSA-410) the p2m; a guest with on_reboot=restart triggers it by rebooting",
        ),
        OpEstimate(
            "teardown_final", ("toolstack", "guest"), b.p2m_free_preemptible, teardown.call(1),
            related=True, reference="XSA-410 (CVE-2022-33746)",
            note="the RCU callback after destruction; before XSA-410 it frees every p2m page "
            "with no preemption point",
        ),
        OpEstimate(
            "set_allocation", ("toolstack",), True, grow, related=True,
            reference="paging pool resize",
            note="checks for preemption after every page in every release",
        ),
    )


def vram_frames_note(attack: AttackAssumptions, paging: Paging) -> str:
    if paging == "hap":
        return f"the device model tracks {attack.vram_frames} frames: one lookup and retype each"
    return (f"the device model tracks {attack.vram_frames} frames; "
            f"{attack.vram_unknown_frames} of them searched over every L1 shadow "
            "(assumed worst case)")
