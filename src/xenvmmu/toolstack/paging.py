"""A guest's x86 paging mode (HAP or shadow) and its paging (shadow/HAP) pool.

``effective_paging`` decides the mode from the guest's ``hap`` setting, the hypervisor's
``hap`` option, the CPU and the release's rules, keeping the chain of reasons;
``paging_pool`` gives the pool: ``shadow_memory=``, the ``shadow_memkb`` xl recorded, or
the release's default formula (``xenvmmu.versions.default_pool_kib``). Sources:
research/xen-config.md §2, §3.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from ..versions import Paging, Profile, default_pool_kib
from .guest import GuestSpec
from .host import HostSpec


class PagingDecision(NamedTuple):
    """The guest's x86 paging mode (None: not x86 HVM/PVH, or it cannot be created)."""

    mode: Paging | None
    reasons: tuple[str, ...]
    creation_fails: bool


def _at(guest: GuestSpec, line: int | None) -> str:
    return f" ({guest.source}:{line})" if line is not None else ""


def _type_reason(guest: GuestSpec) -> str:
    """How the guest's type was decided, naming a ``type=`` that xl <=4.9 ignores."""
    if guest.origin == "xl list -l":
        return f"guest type {guest.type} (c_info.type)"
    ignored = guest.ignored_type_setting
    if ignored is not None:
        ignored += f"{_at(guest, guest.ignored_type_line)} is ignored by xl before 4.10"
    if guest.type_key:
        kind = f"guest type {guest.type} ({guest.type_key}=){_at(guest, guest.type_line)}"
        return kind if ignored is None else f"{kind}; {ignored}"
    if ignored is not None:
        return f"{ignored} (no builder=): guest type {guest.type}"
    return f"guest type {guest.type} (xl's default: no type=/builder=)"


def effective_paging(guest: GuestSpec, host: HostSpec, profile: Profile) -> PagingDecision:
    """HAP or shadow for an x86 HVM/PVH guest, and why: config ``hap``, the hypervisor's
    ``hap`` option, the CPU, and the release's rules (xen-config.md §3):

    * <=4.12: HAP iff the CPU has EPT/NPT, the command line leaves ``hap`` on and the config
      does not say ``hap=0``; otherwise shadow, silently (xen/arch/x86/domain.c @ 4.4.0);
    * >=4.13: the config default follows the host; an explicit ``hap=1`` on a host without
      HAP makes domain creation fail (xen/arch/x86/domain.c @ RELEASE-4.13.0).
    """
    if guest.status == "not_evaluated":
        return PagingDecision(None, (f"not evaluated: {guest.reason}",), False)
    if guest.status == "invalid":
        return PagingDecision(None, (f"not assessed, invalid input: {guest.reason}",), False)
    if host.arch != "x86":
        return PagingDecision(None, ("Arm host: stage-2 paging; XSA-97 is x86-only",), False)
    if guest.type is None:
        return PagingDecision(None, ("guest type unknown",), False)
    kind = _type_reason(guest)
    if guest.pvh_v1:
        return PagingDecision(None, (kind, "PVHv1 (pvh=1, Xen 4.4-4.8): an experimental PV "
                                           "guest in an HAP container; not assessed"), False)
    if guest.type == "pv":
        return PagingDecision(None, (kind, "PV guests have no HVM paging mode (not affected)"),
                              False)
    reasons = [kind]
    setting = "c_info.hap" if guest.origin == "xl list -l" else "config hap"
    if guest.hap is None:
        reasons.append(f"{setting} not set (default)")
    else:
        reasons.append(f"{setting} = {str(guest.hap).lower()}{_at(guest, guest.hap_line)}")
    reasons.extend(host.hap_reasons)
    available = bool(host.hap_available)
    if guest.hap is False:
        mode: Paging = "shadow"
        reasons.append("the guest refuses HAP (hap=0): shadow paging")
    elif available:
        mode = "hap"
        reasons.append("HAP available and not refused: HAP")
    elif profile.hap_default_follows_host and guest.hap is True:
        reasons.append(f"Xen {profile.version}: hap=1 requested but the host offers no HAP: "
                       "domain creation fails ('HAP requested but not supported')")
        return PagingDecision(None, tuple(reasons), True)
    elif profile.hap_default_follows_host:
        mode = "shadow"
        reasons.append(f"Xen {profile.version}: the hap default follows the host, which "
                       "offers no HAP: shadow paging")
    else:
        mode = "shadow"
        reasons.append(f"Xen {profile.version}: no HAP on the host, silent fallback to shadow")
    caps = host.virt_caps
    if mode == "shadow" and profile.virt_caps_reports_hap and caps is not None \
            and "shadow" not in caps:
        reasons.append("virt_caps has no shadow (Xen built without shadow paging): domain "
                       "creation fails")
        return PagingDecision(None, tuple(reasons), True)
    return PagingDecision(mode, tuple(reasons), False)


class PoolSize(NamedTuple):
    """The guest's paging pool. ``how``: explicit (``shadow_memory=``), recorded (printed by
    ``xl list -l``), default (computed), not_applicable, unknown. ``applied_kib``: what Xen
    gets (whole MiB, rounded up, before 4.17). ``default_kib``: the default for comparison."""

    kib: int | None
    how: Literal["explicit", "recorded", "default", "not_applicable", "unknown"]
    reason: str
    applied_kib: int | None = None
    default_kib: int | None = None


def paging_pool(guest: GuestSpec, host: HostSpec, profile: Profile,
                decision: PagingDecision | None = None) -> PoolSize:
    """The paging (shadow/HAP) pool of an HVM/PVH guest (xen-config.md §2)."""
    if decision is None:
        decision = effective_paging(guest, host, profile)
    if guest.status != "ok" or guest.type is None:
        return PoolSize(None, "not_applicable", decision.reasons[0])
    arm = host.arch == "arm"
    if arm and profile.pool_formula != "libxl-4.17":
        return PoolSize(None, "not_applicable", "Arm before 4.17: no per-domain P2M pool")
    if not arm and decision.mode is None:
        return PoolSize(None, "not_applicable", "no HVM paging pool: " + decision.reasons[-1])
    default, why = _default_pool(guest, host, profile, decision.mode)
    mib_granular = profile.pool_formula != "libxl-4.17"  # SET_ALLOCATION takes MiB (<=4.16)

    def applied(kib: int) -> int:
        return -(-kib // 1024) * 1024 if mib_granular else kib

    if guest.shadow_memory_mib is not None:
        kib = guest.shadow_memory_mib * 1024
        return PoolSize(kib, "explicit", f"shadow_memory={guest.shadow_memory_mib} replaces the "
                        f"default{_at(guest, guest.shadow_memory_line)}", applied(kib), default)
    if guest.recorded_pool_kib is not None:
        kib = guest.recorded_pool_kib
        return PoolSize(kib, "recorded", "shadow_memkb as recorded by xl", applied(kib), default)
    if default is None:
        return PoolSize(None, "unknown", why)
    return PoolSize(default, "default", why, applied(default), default)


def _default_pool(guest: GuestSpec, host: HostSpec, profile: Profile,
                  mode: Paging | None) -> tuple[int | None, str]:
    assert guest.type is not None and guest.maxmem_kib is not None and guest.maxvcpus
    vcpus, maxmem = guest.maxvcpus, guest.maxmem_kib // 1024
    note = ""
    # The default is computed from b_info as xl set it, before libxl's own defaults: by xl up
    # to 4.12, by libxl from 4.13 to master, with the same inputs (libxl_create.c @
    # RELEASE-4.13.0 l.1038 vs l.1052, @ master l.1229 vs 1243; xl_parse.c @ master l.1354,
    # 1601-1604): max_vcpus is 0 without vcpus=/maxvcpus=, and without memory=/maxmem=
    # max_memkb is the ~0 sentinel.
    if {"memory", "maxmem"} <= guest.defaulted:
        return None, (f"{profile.pool_by} computes the default pool from xl's unset max_memkb "
                      "sentinel (no memory=/maxmem=): Xen <=4.16 gets a truncated size, 4.17+ "
                      "fails the creation (read from the code, not run; xen-fidelity-review "
                      "§2.4)")
    if {"vcpus", "maxvcpus"} <= guest.defaulted and guest.origin == "xl.cfg":
        vcpus, note = 0, "; no vcpus=/maxvcpus=, so the pool counts 0 vCPUs"
    kib = default_pool_kib(maxmem, vcpus, guest_type=guest.type, paging=mode, arch=host.arch,
                           formula=profile.pool_formula)
    return kib, (f"default pool ({profile.pool_formula} formula, computed by "
                 f"{profile.pool_by}): {vcpus} vCPUs, {maxmem} MiB{note}")
