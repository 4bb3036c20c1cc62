"""The cheapest ways to bring an affected guest under the latency budget, in order.

Each candidate is checked by re-running the estimate with the change applied; only changes
that actually bring the worst-case section under the budget are offered. Order (cheapest
first for an operator): run the guest as PV; switch shadow paging to HAP; shrink the guest
(HAP: maximum memory) or its shadow pool (``shadow_memory``); upgrade Xen to the first
release that fixes it; apply the xsa97-hap patch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

from ..costs.estimate import estimate_ops
from ..toolstack import GuestSpec, HostSpec
from ..versions import Profile, XenVersion, profile_for
from .findings import Mitigation
from .settings import AuditSettings

Paging = Literal["hap", "shadow"]
#: The first release whose HAP log-dirty CLEAN no longer sweeps the whole p2m (lazy retype).
LAZY_RETYPE_RELEASE = XenVersion(4, 5, 0)
#: Shadow pool floor (pages): 128 per vCPU plus one (xen/arch/x86/mm/shadow/common.c @
#: RELEASE-4.4.0, shadow_min_acceptable_pages) plus one page per MiB of guest RAM.
SHADOW_FLOOR_PAGES_PER_VCPU = 128


def worst_section_ms(
    pages: int, pool_pages: int, mode: Paging, profile: Profile, settings: AuditSettings
) -> float:
    """The longest non-preemptible section of XSA-97's own operations, in ms (cached)."""
    # Only these Profile fields shape the estimate; hashing the whole Profile is slow.
    key = (pages, pool_pages, mode, profile.logdirty_preemptible, profile.hap_retype)
    ms = settings.cache.get(key)
    if ms is None:
        ops = estimate_ops(pages, pool_pages, mode, profile, settings.attack)
        ms = max(settings.costs.ms(o.section) for o in ops if not o.related)
        settings.cache[key] = ms
    assert isinstance(ms, float)
    return ms


@functools.cache
def _profile(version: XenVersion) -> Profile:
    return profile_for(version)


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
    mode: Paging,
    pages: int,
    pool_pages: int,
    settings: AuditSettings,
) -> tuple[Mitigation, ...]:
    """Effective mitigations for an affected guest of ``pages`` pages and ``pool_pages``."""
    budget = settings.budget_ms
    out: list[Mitigation] = [
        Mitigation(
            "pv",
            'Run it as a PV guest (type = "pv"), if its operating system supports PV: '
            "PV guests have no HVM paging mode and are not exposed.",
        )
    ]

    hap_pool = max(pool_pages, 256)  # hap_enable() gives an empty pool 256 pages
    if mode == "shadow" and host.cpu_hap is not False:
        where = (
            f"remove hap = 0 (line {guest.hap_line})"
            if guest.hap is False
            else "remove hap=0 / no-hap from the Xen command line"
        )
        if worst_section_ms(pages, hap_pool, "hap", profile, settings) < budget:
            out.append(Mitigation("hap_on", f"Use HAP instead of shadow paging: {where}."))
        else:
            later = _first_fixing_release(host, profile, pages, hap_pool, "hap", settings)
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
            lambda m: worst_section_ms(m * 256, pool_pages, "hap", profile, settings) < budget,
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
        floor = (
            SHADOW_FLOOR_PAGES_PER_VCPU * ((guest.maxvcpus or guest.vcpus or 1) + 1) + pages // 256
        )
        max_pool = _largest_under(
            pool_pages, lambda p: worst_section_ms(pages, p, "shadow", profile, settings) < budget
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

    if mode == "hap":
        later = _first_fixing_release(host, profile, pages, pool_pages, "hap", settings)
        if later is not None:
            out.append(Mitigation("upgrade", f"Upgrade Xen to {later} or later."))
        if not profile.logdirty_preemptible:
            patched = profile_for(
                host.xen_version,
                patched=frozenset({"xsa97-hap"}),
                changeset_date=host.changeset_date,
            )
            if worst_section_ms(pages, pool_pages, "hap", patched, settings) < budget:
                out.append(
                    Mitigation("patch", f"Apply the xsa97-hap patch to Xen {host.xen_version}.")
                )
    if len(out) == 1:
        out.append(
            Mitigation(
                "restrict",
                "No configuration change or release brings it under the budget: do "
                "not let untrusted parties drive its log-dirty or VRAM operations (no untrusted "
                "device model or stub domain, no live migration of it while latency matters).",
            )
        )
    return tuple(out)


def _first_fixing_release(
    host: HostSpec,
    profile: Profile,
    pages: int,
    pool_pages: int,
    mode: Paging,
    settings: AuditSettings,
) -> XenVersion | None:
    candidates = [
        v
        for v in (profile.upgrade_to, LAZY_RETYPE_RELEASE)
        if v is not None and v > host.xen_version
    ]
    for v in sorted(set(candidates)):
        if worst_section_ms(pages, pool_pages, mode, _profile(v), settings) < settings.budget_ms:
            return v
    return None
