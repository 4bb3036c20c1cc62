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
from dataclasses import dataclass, replace

from ..costs import CostProfile
from ..model import analytic
from ..model.analytic import Estimate
from ..model.attack import DEFAULT_ATTACK, VRAM_BEGIN_GFN, AttackAssumptions
from ..model.spec import DomainSpec
from ..versions import Paging, PagingBehaviour, Vendor
from .findings import OpStall

PAGE_SHIFT = 12


@dataclass(frozen=True)
class OpEstimate:
    """One operation against the guest: who drives it, whether the release preempts it, and
    its closed form (every section; the auditor reports the longest)."""

    op: str
    started_by: tuple[str, ...]  # who can issue it (see STARTED_BY)
    sized_by: tuple[str, ...]  # who decides how much work it does (see SIZED_BY)
    preemptible: bool
    estimate: Estimate
    related: bool = False  # outside the verdict (same class: teardown, set_allocation)
    reference: str = "XSA-97"
    note: str = ""
    #: The host has the fix for the advisory this operation was once counted under, but
    #: still runs this code (the 4.4.x HAP type sweep that xsa97-hap left in place).
    residual: bool = False

    def worst_ns(self, ns_per_unit: Mapping[str, float]) -> float:
        """The longest non-preemptible section, priced."""
        return self.estimate.longest_ns(ns_per_unit)


class PoolTooSmall(ValueError):
    """The paging pool cannot hold the worst-case p2m and log-dirty bitmap of this guest."""


def worst_case_spec(pages: int, pool_pages: int, paging: Paging, vcpus: int,
                    vendor: Vendor = "intel") -> DomainSpec:
    """The guest the audit assumes, with log-dirty off: ``pages`` of RAM (its maximum
    memory), the pool, the vCPUs and the CPU vendor (EPT or NPT paging). The attacker's state
    (log-dirty on, every page written) is :func:`attacked`."""
    return DomainSpec(ram_bytes=pages << PAGE_SHIFT, vcpus=max(1, vcpus), paging=paging,
                      vendor=vendor, pool_kib=pool_pages * 4)


def attacked(guest: DomainSpec) -> DomainSpec:
    """``guest`` with log-dirty on and every page written."""
    return replace(guest, log_dirty=True, dirty="all")


def with_pool(guest: DomainSpec, pool_pages: int) -> DomainSpec:
    return replace(guest, pool_mb=None, pool_kib=pool_pages * 4)


def pool_for_estimate(guest: DomainSpec) -> int:
    """The guest's pool, or the smallest pool that holds the worst-case p2m and bitmap when
    the real one cannot: Xen would then fail the guest's p2m or bitmap allocations, so the
    attacker gets less than the full worst case; estimating as if they succeeded is an upper
    bound (the caller says so)."""
    need = analytic.min_pool_pages(attacked(with_pool(guest, 0)))
    return max(guest.pool_pages, need)


def estimate_ops(
    guest: DomainSpec, behaviour: PagingBehaviour, attack: AttackAssumptions = DEFAULT_ATTACK,
) -> tuple[OpEstimate, ...]:
    """Every operation of XSA-97's class against ``guest`` (log-dirty off, see
    :func:`worst_case_spec`) as a release with ``behaviour`` runs it: the verdict's
    (:func:`xsa97_ops`), then the related ones (:func:`related_ops`). Raises
    :class:`PoolTooSmall` when the pool cannot hold the worst-case state."""
    return xsa97_ops(guest, behaviour, attack) + related_ops(guest, behaviour)


#: Who can issue each operation. The same under the default (dummy) XSM policy and under
#: FLASK with a stub-domain device model (xen-fidelity-review.md §2.7):
#: log-dirty ops - XEN_DOMCTL_shadow_op needs XSM_PRIV (xen/include/xsm/dummy.h @
#: RELEASE-4.5.0 l.116-128), FLASK's device_model macro grants no shadow permission
#: (tools/flask/policy/policy/modules/xen/xen.if @ RELEASE-4.4.0 l.135-147), and
#: paging_domctl refuses a domain acting on itself (xen/arch/x86/mm/paging.c @ RELEASE-4.5.0
#: l.665); dirty-VRAM tracking - the device model (FLASK grants it trackdirtyvram);
#: destruction and pool resizing - the toolstack.
STARTED_BY: dict[str, tuple[str, ...]] = {
    "logdirty": ("toolstack",),
    "vram": ("device_model",),
    "teardown": ("toolstack",),
    "set_allocation": ("toolstack",),
}
#: Who decides how much work one call does: the guest by writing its memory (bitmap leaves,
#: p2m entries to retype, superpages shattered) and by its page tables (shadows); the device
#: model by HVMOP_modified_memory (pages marked dirty) and the VRAM range (<= 1 GiB); the
#: toolstack by the guest's memory and shadow_memory.
SIZED_BY: dict[str, tuple[str, ...]] = {
    "walk": ("guest", "device_model"),
    "hap_sweep": ("guest", "toolstack"),
    "shadow_blow": ("guest", "toolstack"),
    "vram": ("device_model", "guest"),
    "teardown": ("guest", "toolstack"),
    "set_allocation": ("toolstack",),
}
XSA97 = "XSA-97"
HAP_SWEEP_REF = ("HAP global p2m type sweep (p2m_change_entry_type_global): not part of the "
                 "xsa97-hap fix; root marking only from 4.5.0 (90ac32559b EPT, 9e52ad4f4d NPT)")
HAP_LAZY_REF = "HAP global p2m type change: root marking since 4.5.0 (90ac32559b, 9e52ad4f4d)"
#: Why a residual operation is not the CVE it was once counted under, for the reasons.
RESIDUAL_WHY = {
    "hap_global_retype": (
        "this host has the xsa97-hap fix (the log-dirty walk is preemptible) but still runs "
        "the HAP global p2m type sweep on ENABLE, after every CLEAN and on OFF, which that fix "
        "does not cover; Xen 4.5.0 replaced it by root marking (90ac32559b EPT, 9e52ad4f4d "
        "NPT)"
    ),
}
SHADOW_REF = ("XSA-97 (CVE-2014-5149): shadow_blow_tables, never made preemptible; XSA-495 "
              "(2026) declares shadow paging not security supported")


@functools.lru_cache(maxsize=1 << 15)
def xsa97_ops(
    guest: DomainSpec, behaviour: PagingBehaviour, attack: AttackAssumptions = DEFAULT_ATTACK,
) -> tuple[OpEstimate, ...]:
    """The operations of the verdict, one mechanism each: the log-dirty bitmap walk and
    free (XSA-97's own code), the paging mode's hooks that ENABLE / CLEAN / OFF run (HAP:
    the global p2m type change; shadow: blow-tables), and dirty-VRAM tracking.

    Where the release does not preempt the walk (or free), the hook that follows runs in the
    same non-preemptible section, so the walk's figure includes it; once the walk is
    preemptible the hook is a section of its own and only the hook's operation carries it."""
    dirty, clean = attacked(guest), guest
    paging, pages = guest.paging, guest.ram_bytes >> PAGE_SHIFT
    b = behaviour
    fixed = b.logdirty_preemptible
    try:
        peek = analytic.clean(dirty, b, peek=True)
        clean_op = analytic.clean(dirty, b, hook=not fixed)
        off = analytic.disable(dirty, b, hook=not fixed)
        hooks = analytic.mode_hooks(dirty, clean, b)
        vram = analytic.track_vram(clean, b, min(attack.vram_frames, pages), VRAM_BEGIN_GFN,
                                   unknown_frames=attack.vram_unknown_frames)
    except ValueError as e:
        raise PoolTooSmall(str(e)) from None
    ld = STARTED_BY["logdirty"]
    walk_note = ("started by live migration, save or checkpointing; the guest makes it long "
                 "by touching every 128 MiB region (one bitmap leaf each)")
    with_hook = "" if fixed else ", with the mode hook that follows it in the same section"
    if paging == "hap":
        sweep = b.hap_retype == "sweep"
        hook = OpEstimate(
            "hap_global_retype", ld, SIZED_BY["hap_sweep"], not sweep, hooks,
            reference=HAP_SWEEP_REF if sweep else HAP_LAZY_REF,
            note=("run by log-dirty ENABLE, after every CLEAN and by OFF: every p2m entry of "
                  "the guest rewritten, no preemption point" if sweep else
                  "run by log-dirty ENABLE, CLEAN and OFF: at most 512 root entries marked"),
            residual=sweep and fixed,
        )
    else:
        hook = OpEstimate(
            "shadow_blow_tables", ld, SIZED_BY["shadow_blow"], False, hooks,
            reference=SHADOW_REF,
            note="run by log-dirty ENABLE and after every CLEAN: every shadow destroyed; the "
            "guest's page tables fill the shadow pool (shadow_memory)",
        )
    return (
        OpEstimate("logdirty_peek", ld, SIZED_BY["walk"], fixed, peek, reference=XSA97,
                   note=walk_note),
        OpEstimate("logdirty_clean", ld, SIZED_BY["walk"], fixed, clean_op, reference=XSA97,
                   note=f"bitmap walk and clear{with_hook}; {walk_note}"),
        OpEstimate("logdirty_off", ld, SIZED_BY["walk"], fixed, off, reference=XSA97,
                   note=f"bitmap freed{with_hook}"),
        hook,
        OpEstimate("vram_track", STARTED_BY["vram"], SIZED_BY["vram"], False, vram,
                   reference="dirty-VRAM tracking (never preemptible; capped at 1 GiB of "
                   "frames by XSA-27)",
                   note=f"{vram_frames_note(attack, paging)}; on every display refresh"),
    )


@functools.lru_cache(maxsize=1 << 14)
def related_ops(guest: DomainSpec, behaviour: PagingBehaviour) -> tuple[OpEstimate, ...]:
    """Same-class operations reported beside the verdict: teardown and pool resizing."""
    dirty, clean = attacked(guest), guest
    pool_pages = guest.pool_pages
    b = behaviour
    try:
        teardown = analytic.teardown(dirty, b)
        grow = analytic.set_allocation(clean, b, 2 * (pool_pages >> 8) + 1)
    except ValueError as e:
        raise PoolTooSmall(str(e)) from None
    return (
        OpEstimate(
            "teardown_relinquish", STARTED_BY["teardown"], SIZED_BY["teardown"],
            b.pool_teardown_preemptible and b.logdirty_preemptible, teardown.call(0),
            related=True,
            reference="2015 paging-pool teardown fix (0174da5b79); XSA-410 (CVE-2022-33746)",
            note="domain destruction frees the paging pool, the log-dirty bitmap and (with "
            "XSA-410) the p2m; a guest with on_reboot=restart triggers it by rebooting",
        ),
        OpEstimate(
            "teardown_final", STARTED_BY["teardown"], SIZED_BY["teardown"],
            b.p2m_free_preemptible, teardown.call(1),
            related=True, reference="XSA-410 (CVE-2022-33746)",
            note="the RCU callback after destruction; before XSA-410 it frees every p2m page "
            "with no preemption point",
        ),
        OpEstimate(
            "set_allocation", STARTED_BY["set_allocation"], SIZED_BY["set_allocation"], True,
            grow, related=True,
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


def stalls(ops: tuple[OpEstimate, ...], costs: CostProfile) -> tuple[OpStall, ...]:
    """The operations priced with ``costs``: each one's longest non-preemptible section."""
    return tuple(
        OpStall(
            op=o.op,
            started_by=o.started_by,
            preemptible=o.preemptible,
            worst_case_ms=round(o.worst_ns(costs.ns_per_unit) / 1e6, 3),
            worst_case_ms_low=round(o.worst_ns(costs.low_ns) / 1e6, 3),
            related=o.related,
            reference=o.reference,
            sized_by=o.sized_by,
            residual=o.residual,
        )
        for o in ops
    )
