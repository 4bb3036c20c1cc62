"""The auditor's question, per guest: is its virtual-MMU work on this host non-preemptible
for longer than the latency budget (XSA-97), for how long, why, and what is the cheapest fix.

Chain (DESIGN.md): guest readable → x86 → HVM/PVH → effective paging mode → the operations
that can be driven against it and, for this release, which are preemptible → worst-case
non-preemptible section from the cost model → verdict against the budget.

Verdict ``affected`` means: the non-preemptible path is present and reachable for this guest
and its worst-case section is at least the budget. The verdict covers XSA-97's own
operations (log-dirty ENABLE/PEEK/CLEAN/OFF with their mode hooks, dirty-VRAM tracking);
teardown and set_allocation are reported as related operations beside it.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from ..advisories import Advisory, registry
from ..model.spec import DomainSpec
from ..severity import WATCHDOG_TIMEOUT_S, severity_for, watchdog_panic_ms
from ..toolstack import GuestSpec, HostSpec, effective_paging, paging_pool
from ..versions import Paging, Profile, Unknown
from .family import (
    ASSESSMENTS,
    GuestContext,
    advisory_finding,
    fixed_by,
    own_file,
    setting_ref,
    upgrade,
)
from .findings import (
    AdvisoryFinding,
    Finding,
    Mitigation,
    OpStall,
    Severity,
    SourceRef,
    Verdict,
    clean_text,
    format_ms_range,
)
from .mitigations import mitigations_for, op_stalls
from .operations import (
    RESIDUAL_WHY,
    PoolTooSmall,
    pool_for_estimate,
    with_pool,
    worst_case_spec,
)
from .settings import AuditSettings

CVE_HAP = "CVE-2014-5146"
CVE_SHADOW = "CVE-2014-5149"


def worst_ms(ops: tuple[OpStall, ...], low: bool = False) -> float:
    """The longest section of the verdict's operations (high cost bound, or ``low``)."""
    return max((o.worst_case_ms_low if low else o.worst_case_ms for o in ops if not o.related),
               default=0.0)


def _estimate_for_vendor(
    spec: DomainSpec, host: HostSpec, profile: Profile, settings: AuditSettings,
) -> tuple[DomainSpec, tuple[OpStall, ...], str]:
    """The operations priced for the host's CPU vendor (HAP: EPT or NPT). When the vendor is
    unknown both are evaluated and the worse is kept, with a reason saying so."""
    if spec.paging != "hap":
        return spec, op_stalls(spec, profile.paging, settings), ""
    if host.cpu_vendor is not None:
        spec = replace(spec, vendor=host.cpu_vendor)
        return spec, op_stalls(spec, profile.paging, settings), ""
    options = []
    for vendor in ("intel", "amd"):
        s = replace(spec, vendor=vendor)
        options.append((worst_ms(op_stalls(s, profile.paging, settings)), vendor, s))
    worst, vendor, chosen = max(options)
    other = min(options)[0]
    why = (f"{host.cpu_vendor_reason or 'CPU vendor unknown'}: both EPT (Intel) and NPT (AMD) "
           f"evaluated, the worse reported ({vendor}: {worst:,.1f} ms against {other:,.1f} ms); "
           "pass --cpu-vendor")
    return chosen, op_stalls(chosen, profile.paging, settings), why


def guest_pages(guest: GuestSpec) -> int | None:
    """4 KiB pages the paging operations cover: the guest's maximum memory."""
    if guest.maxmem_kib is not None:
        return guest.maxmem_kib // 4
    if guest.maxmem_mib is not None:
        return guest.maxmem_mib * 256
    return None


@functools.cache
def _registry_rank() -> dict[str, int]:
    """Each advisory's place in the registry: XSA-97 first, then by number."""
    return {a.id: i for i, a in enumerate(registry())}


def _applies(adv: Advisory, guest: GuestSpec, host: HostSpec, settings: AuditSettings) -> bool:
    """Whether the run reports ``adv`` and it concerns this guest's architecture and type."""
    if settings.advisories is not None and adv.id not in settings.advisories:
        return False
    return host.arch in adv.arch and guest.type in adv.guest_types


def advisory_findings(
    guest: GuestSpec, host: HostSpec, profile: Profile, mode: Paging,
    ops: tuple[OpStall, ...], xsa97_fixes: tuple[Mitigation, ...], settings: AuditSettings,
    decisive: SourceRef | None = None,
) -> tuple[AdvisoryFinding, ...]:
    """One finding per registry advisory that applies to this guest (its arch, type and
    paging ``mode``), from the advisory's own operations. XSA-97 keeps the guest's verdict and
    mitigations; the others get theirs from their data file and this release."""
    by_op = {o.op: o for o in ops}
    out: list[AdvisoryFinding] = []
    for adv in registry():
        if (adv.assess != "paging_ops" or not _applies(adv, guest, host, settings)
                or mode not in adv.paging):
            continue
        mine = [by_op[name] for name in adv.operations if name in by_op]
        if not mine:
            continue
        worst = max(o.worst_case_ms for o in mine)
        low = max(o.worst_case_ms_low for o in mine)
        verdict: Verdict = "affected" if worst >= settings.budget_ms else "not_affected"
        fixed = fixed_by(adv, profile)
        longest = max(mine, key=lambda o: o.worst_case_ms)
        reasons = [f"{adv.id} ({', '.join(adv.cves)}): {adv.title}; longest section "
                   f"{longest.op}, {format_ms_range(low, worst)} ms"]
        fixes: list[str] = []
        if adv.id == "XSA-97":
            fixes = [m.text for m in xsa97_fixes]
        elif adv.fixed_from == "none":
            when = adv.support_change_in_branch(profile.version)
            said = ("this release's SUPPORT.md says so" if adv.support_changed_in(profile.version)
                    else f"declared from {when}" if when else "declared in later releases")
            reasons.append(f"no release makes these operations preemptible: shadow paging is "
                           f"supported, not security supported ({said})")
            if host.cpu_hap is not False:
                fixes.append("Use HAP instead of shadow paging (no hap = 0 in the config or "
                             "on the Xen command line); no upgrade fixes shadow paging.")
            fixes.append("Build Xen with CONFIG_SHADOW_PAGING=n if no guest needs it.")
        elif not fixed:
            fixes.append(upgrade(adv, profile))
        out.append(advisory_finding(
            adv, verdict, settings, host, worst=worst, low=low,
            operations=tuple(o.op for o in mine), fixed=fixed, reasons=reasons,
            mitigations=fixes if verdict == "affected" else (),
            decisive=own_file(guest, decisive if adv.id == "XSA-97" or not adv.decided_by
                              else setting_ref(guest, adv.decided_by) or decisive),
        ))
    return tuple(out)


def family_findings(guest: GuestSpec, host: HostSpec, profile: Profile,
                    settings: AuditSettings, mode: Paging | None, *, any_mode: bool,
                    pool_pages: int | None = None,
                    pages: int | None = None) -> tuple[AdvisoryFinding, ...]:
    """The registry advisories assessed by :mod:`~xenvmmu.audit.family` that concern this
    guest: with ``any_mode`` those whose operations run whatever the paging mode (event
    channels, grants, Arm's p2m); else those of an HVM paging ``mode``."""
    ctx = GuestContext(guest, host, profile, settings, mode, pool_pages, pages,
                       guest_vcpus(guest))
    out = []
    for adv in registry():
        if adv.assess == "paging_ops" or not _applies(adv, guest, host, settings):
            continue
        if any_mode != ("none" in adv.paging) or (not any_mode and mode not in adv.paging):
            continue
        out.append(ASSESSMENTS[adv.assess](adv, ctx))
    return tuple(out)


def cve_for(mode: Paging, profile: Profile) -> str | None:
    """The CVE whose vulnerable code this host still runs for a guest in ``mode``: shadow
    paging's operations were never made preemptible (CVE-2014-5149); HAP's log-dirty walk
    is fixed by xsa97-hap (CVE-2014-5146), whatever else still runs."""
    if mode == "shadow":
        return CVE_SHADOW
    return None if profile.logdirty_preemptible else CVE_HAP


def _who(parties: tuple[str, ...]) -> str:
    names = [p.replace("_", " ") for p in parties]
    return " or ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " or " + names[-1]


def guest_vcpus(guest: GuestSpec) -> int:
    """vCPUs the paging state is sized for: the maximum, else the boot count, else 1."""
    return guest.maxvcpus or guest.vcpus or 1


def assess(guest: GuestSpec, host: HostSpec, profile: Profile, settings: AuditSettings) -> Finding:
    """The Finding for one guest on one host."""
    base = _facts(guest, host, profile)
    decision = effective_paging(guest, host, profile)
    reasons = list(decision.reasons)
    if guest.status != "ok":
        return _finish(base, "unknown", reasons, paging_reasons=decision.reasons)
    early = family_findings(guest, host, profile, settings, None, any_mode=True)
    base["advisories"] = early
    if decision.mode is None:
        verdict: Verdict = "not_affected"
        if decision.creation_fails:
            reasons.append("xl cannot create this guest on this host, so nothing runs")
        elif guest.pvh_v1:
            verdict = "unknown"
        return _finish(base, verdict, reasons, paging_reasons=decision.reasons)
    mode = decision.mode
    base = {**base, "paging": mode, "cve": cve_for(mode, profile)}
    pool = paging_pool(guest, host, profile, decision)
    base["pool_kib"] = pool.kib
    pages = guest_pages(guest)
    known_pool = (pool.applied_kib or pool.kib or 0) // 4 if pool.kib is not None else None
    family = early + family_findings(guest, host, profile, settings, mode, any_mode=False,
                                     pool_pages=known_pool, pages=pages)
    base["advisories"] = family
    if mode == "hap" and isinstance(profile.xsa97, Unknown):
        reasons.append(f"release cannot be classified: {profile.xsa97.reason}")
        return _finish(base, "unknown", reasons, paging_reasons=decision.reasons)
    if pages is None or (mode == "shadow" and pool.kib is None):
        reasons.append(pool.reason if pool.kib is None else "guest memory size unknown")
        return _finish(base, "unknown", reasons, paging_reasons=decision.reasons)
    pool_pages = known_pool or 0
    reasons.append(pool.reason)
    spec = worst_case_spec(pages, pool_pages, mode, guest_vcpus(guest))
    needed = pool_for_estimate(spec)
    if needed > pool_pages:
        reasons.append(
            f"the paging pool ({pool_pages * 4:,} KiB) cannot hold this guest's whole p2m and "
            f"log-dirty bitmap ({needed * 4:,} KiB): Xen would fail some of their allocations; "
            "estimated as if they succeeded (an upper bound)"
        )
        spec = with_pool(spec, needed)
    try:
        spec, ops, vendor_reason = _estimate_for_vendor(spec, host, profile, settings)
    except PoolTooSmall as e:  # a state the closed forms do not cover
        reasons.append(f"not estimated: {e}")
        return _finish(base, "unknown", reasons, paging_reasons=decision.reasons)
    if vendor_reason:
        reasons.append(vendor_reason)
    worst = worst_ms(ops)
    worst_op = max((o for o in ops if not o.related), key=lambda o: o.worst_case_ms)
    worst_low = worst_ms(ops, low=True)
    verdict = "affected" if worst >= settings.budget_ms else "not_affected"
    budget = f"{settings.budget_ms:g} ms budget"
    if verdict == "affected":
        reasons.append(
            f"{worst_op.op} can hold a CPU for {format_ms_range(worst_low, worst)} ms without a "
            f"preemption point (above the {budget} at the high end); started by the "
            f"{_who(worst_op.started_by)}, made long by the {_who(worst_op.sized_by)}"
        )
        if worst_op.residual:
            reasons.append(f"residual exposure, not CVE-2014-5146: {RESIDUAL_WHY[worst_op.op]}")
    else:
        reasons.append(
            f"longest non-preemptible section {format_ms_range(worst_low, worst)} ms, within "
            f"the {budget}"
        )
    if verdict == "affected" and worst_low < settings.budget_ms:
        reasons.append(
            f"depends on the hardware: at the low end of the cost ranges it is "
            f"{format_ms_range(worst_low, worst_low)} ms, within the budget (measure this host "
            "with `xenvmmu calibrate` and give the result with --costs)"
        )
    panic_ms = watchdog_panic_ms(host.watchdog_timeout or WATCHDOG_TIMEOUT_S)
    if host.watchdog and worst >= panic_ms:
        reasons.append(
            f"the watchdog is on ({host.watchdog_timeout} s): a stall from about "
            f"{panic_ms:,.0f} ms can panic the host (its timer ticks once a second)"
        )
    fixes = mitigations_for(guest, host, profile, spec, settings) if verdict == "affected" else ()
    order = _registry_rank()
    decisive = _decisive(guest, host, mode, pool.how)
    advisories = tuple(sorted(advisory_findings(guest, host, profile, mode, ops, fixes, settings,
                                                decisive) + family, key=lambda a: order[a.id]))
    return _finish(
        {**base, "worst_case_ms": round(worst, 3), "worst_case_ms_low": round(worst_low, 3),
         "advisories": advisories},
        verdict,
        reasons,
        severity=severity_for(worst, settings.budget_ms,
                              host.watchdog_timeout or WATCHDOG_TIMEOUT_S)
        if verdict == "affected"
        else "none",
        mitigations=fixes,
        ops=ops,
        paging_reasons=decision.reasons,
        decisive=decisive,
    )


def _facts(guest: GuestSpec, host: HostSpec, profile: Profile) -> dict[str, object]:
    return {
        "source": SourceRef(clean_text(guest.source), guest.error_line),
        "name": clean_text(guest.name) if guest.name is not None else None,
        "guest_type": guest.type,
        "paging": None,
        "memory_mib": guest.memory_mib,
        "maxmem_mib": guest.maxmem_mib,
        "vcpus": guest.vcpus,
        "pool_kib": None,
        "xen_version": str(host.xen_version),
        "xsa97_fixed": profile.logdirty_preemptible
        if not isinstance(profile.xsa97, Unknown) else None,
        "cve": None,
        "worst_case_ms": None,
    }


def _finish(
    facts: dict[str, object],
    verdict: Verdict,
    reasons: list[str],
    *,
    severity: Severity = "none",
    mitigations: tuple[Mitigation, ...] = (),
    ops: tuple[OpStall, ...] = (),
    paging_reasons: tuple[str, ...] = (),
    decisive: SourceRef | None = None,
) -> Finding:
    return Finding(
        verdict=verdict,
        severity=severity,
        reasons=tuple(clean_text(r) for r in reasons if r),
        mitigations=mitigations,
        ops=ops,
        paging_reasons=tuple(clean_text(r) for r in paging_reasons),
        decisive=decisive,
        **facts,  # type: ignore[arg-type]
    )


def _decisive(guest: GuestSpec, host: HostSpec, mode: str, pool_how: str) -> SourceRef:
    """The setting that decides the exposure, for SARIF locations."""
    if mode == "shadow":
        if guest.hap is False and guest.hap_line is not None:
            return SourceRef(clean_text(guest.source), guest.hap_line, "hap")
        if not host.hap_enabled and host.source:
            return SourceRef(
                clean_text(host.source), host.line_of("xen_commandline"), "xen_commandline"
            )
        if pool_how == "explicit" and guest.shadow_memory_line is not None:
            return SourceRef(clean_text(guest.source), guest.shadow_memory_line, "shadow_memory")
    line, key = guest.maxmem_line, "maxmem"
    if line is None:
        line, key = guest.memory_line, "memory"
    return SourceRef(clean_text(guest.source), line, key if line is not None else None)
