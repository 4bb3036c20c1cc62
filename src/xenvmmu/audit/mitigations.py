"""The cheapest ways to bring an affected guest under the latency budget, in order.

Each candidate is checked by re-running the estimate with the change applied; only changes
that actually bring the worst-case section under the budget are offered. Order: the
configuration fixes (switch shadow paging to HAP; shrink the guest's maximum memory (HAP) or
its shadow pool (``shadow_memory``)); run it PV, where the config suggests a PV-capable OS;
upgrade Xen to the first release that brings it under the budget; apply the xsa97-hap patch;
if nothing helps, restrict who can drive its operations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace

from ..model.spec import DomainSpec
from ..toolstack import GuestSpec, HostSpec
from ..versions import PagingBehaviour, Profile, Vendor, XenVersion, behaviour_releases, profile_for
from .findings import Mitigation, OpStall
from .operations import PoolTooSmall, estimate_ops, stalls, with_pool, xsa97_ops
from .settings import AuditSettings

#: Shadow pool floor (pages): 128 per vCPU plus one (xen/arch/x86/mm/shadow/common.c @
#: RELEASE-4.4.0, shadow_min_acceptable_pages) plus one page per MiB of guest RAM.
SHADOW_FLOOR_PAGES_PER_VCPU = 128


def op_stalls(
    guest: DomainSpec, behaviour: PagingBehaviour, settings: AuditSettings,
) -> tuple[OpStall, ...]:
    """Every operation against ``guest``, priced with the run's costs (cached per run on the
    inputs; the estimates are cached on them too)."""
    key = ("stalls", guest, behaviour)
    priced = settings.cache.get(key)
    if priced is None:
        priced = stalls(estimate_ops(guest, behaviour, settings.attack), settings.costs)
        settings.cache[key] = priced
    assert isinstance(priced, tuple)
    return priced


def _worst_ms(
    guest: DomainSpec, behaviour: PagingBehaviour, settings: AuditSettings,
) -> float:
    """The longest non-preemptible section of the verdict's operations at the high cost
    bound, in ms (cached per run). A pool too small for the worst-case state holds no
    shadows to flush: 0."""
    key = ("worst", guest, behaviour)
    ms = settings.cache.get(key)
    if ms is None:
        try:
            ops = xsa97_ops(guest, behaviour, settings.attack)
            ns = settings.costs.ns_per_unit
            ms = round(max(o.worst_ns(ns) for o in ops) / 1e6, 3)
        except PoolTooSmall:
            ms = 0.0
        settings.cache[key] = ms
    assert isinstance(ms, float)
    return ms


def _largest_under(limit: int, fits: Callable[[int], bool]) -> int:
    """Largest n in [0, limit] with fits(n) true (fits is monotone decreasing), or -1."""
    if not fits(0):
        return -1
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def mitigations_for(
    guest: GuestSpec,
    host: HostSpec,
    profile: Profile,
    spec: DomainSpec,
    settings: AuditSettings,
) -> tuple[Mitigation, ...]:
    """Effective mitigations for an affected guest whose paging state ``spec`` describes.
    With the host's CPU vendor unknown, a change counts only if it works on both (EPT and
    NPT)."""
    budget = settings.budget_ms
    beh = profile.paging
    mode, pages, pool_pages = spec.paging, spec.ram_bytes >> 12, spec.pool_pages
    vendors: tuple[Vendor, ...] = (host.cpu_vendor,) if host.cpu_vendor else ("intel", "amd")

    def worst_section_ms(s: DomainSpec, b: PagingBehaviour, st: AuditSettings) -> float:
        return max(_worst_ms(replace(s, vendor=v), b, st) for v in vendors)

    vcpus = spec.vcpus
    out: list[Mitigation] = []
    # hap_enable() gives an empty pool 256 pages
    hap = replace(with_pool(spec, max(pool_pages, 256)), paging="hap")
    if mode == "shadow" and host.cpu_hap is not False:
        where = (
            f"remove hap = 0 (line {guest.hap_line})"
            if guest.hap is False
            else "remove hap=0 / no-hap from the Xen command line"
        )
        if worst_section_ms(hap, beh, settings) < budget:
            out.append(Mitigation("hap_on", f"Use HAP instead of shadow paging: {where}."))
        else:
            later = _first_fixing_release(host, hap, settings, worst_section_ms)
            if later is not None:
                out.append(
                    Mitigation(
                        "hap_on",
                        f"Use HAP instead of shadow paging ({where}) together with an "
                        f"upgrade to Xen {later} or later.",
                    )
                )

    if mode == "hap":
        mib = _largest_under(
            pages // 256,
            lambda m: worst_section_ms(replace(spec, ram_bytes=m << 20), beh, settings) < budget,
        )
        if mib >= 256:
            out.append(
                Mitigation(
                    "shrink",
                    f"Reduce the guest's maximum memory (maxmem/memory) to at most "
                    f"{mib:,} MiB, the largest size whose worst case stays under {budget:g} ms on "
                    f"Xen {profile.version}.",
                )
            )
    else:
        floor = SHADOW_FLOOR_PAGES_PER_VCPU * (vcpus + 1) + pages // 256
        max_pool = _largest_under(
            pool_pages,
            lambda p: worst_section_ms(with_pool(spec, p), beh, settings) < budget,
        )
        if max_pool >= floor:
            out.append(
                Mitigation(
                    "shadow_memory",
                    f"Set shadow_memory = {max_pool // 256} (MiB) or less: the "
                    "shadow pool bounds the shadow flushes (a small pool costs performance; Xen's "
                    f"floor for this guest is about {-(-floor // 256)} MiB).",
                )
            )

    pv = _pv_mitigation(guest, profile)
    if pv is not None:
        out.append(pv)

    if mode == "hap":
        later = _first_fixing_release(host, spec, settings, worst_section_ms)
        if later is not None:
            out.append(Mitigation("upgrade", f"Upgrade Xen to {later} or later."))
        if not profile.logdirty_preemptible:
            patched = profile_for(
                host.xen_version,
                patched=frozenset({"xsa97-hap"}),
                changeset_date=host.changeset_date,
            )
            if worst_section_ms(spec, patched.paging, settings) < budget:
                out.append(
                    Mitigation("patch", f"Apply the xsa97-hap patch to Xen {host.xen_version}.")
                )
    if not out:
        out.append(
            Mitigation(
                "restrict",
                "No configuration change or release brings it under the budget: do "
                "not let untrusted parties drive its log-dirty or VRAM operations (no untrusted "
                "device model or stub domain, no live migration of it while latency matters).",
            )
        )
    return tuple(out)


def _pv_mitigation(guest: GuestSpec, profile: Profile) -> Mitigation | None:
    """Running the guest PV, offered only where the config suggests a PV-capable OS (a PV
    boot path), after the configuration fixes, in the words this release's xl understands:
    xl reads ``type=`` from 4.10 only (before, ``builder=`` decides and anything that is not
    a prefix of "hvm" means PV)."""
    if guest.os_hint != "linux":
        return None
    edit = ('type = "pv"' if profile.xl_type_key
            else 'builder = "generic" (xl before 4.10 ignores type=)')
    return Mitigation(
        "pv",
        f"Run it as a PV guest ({edit}): its config names a PV boot path "
        f"({guest.os_hint_why}); PV guests have no HVM paging mode and are not exposed.",
    )


@functools.cache
def _behaviour(version: XenVersion) -> PagingBehaviour:
    return profile_for(version).paging


def _first_fixing_release(
    host: HostSpec, spec: DomainSpec, settings: AuditSettings,
    worst: Callable[[DomainSpec, PagingBehaviour, AuditSettings], float],
) -> XenVersion | None:
    """The oldest newer release (among those where a paging behaviour changes) that brings
    this guest under the budget."""
    for v in behaviour_releases():
        if v <= host.xen_version:
            continue
        if worst(spec, _behaviour(v), settings) < settings.budget_ms:
            return v
    return None
