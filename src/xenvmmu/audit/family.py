"""The advisories of XSA-97's family that are not about its paging operations: one
assessment per registry ``assess`` key (``xenvmmu.advisories``), each giving the guest's
:class:`~xenvmmu.audit.findings.AdvisoryFinding`.

* ``evtchn`` (XSA-344): the event-channel reset over ``max_event_channels`` ports;
* ``maptrack`` (XSA-380): the release of the guest's grant mappings at destruction, over its
  maptrack limit, and for a PV guest with passthrough each ``mapkind()`` search;
* ``pod_sweep`` (XSA-150): the PoD emergency sweep of a guest booted with ``memory < maxmem``;
* ``pod_livelock`` (XSA-246): the PoD retry loop when shattering a superpage finds the paging
  pool empty;
* ``present`` (XSA-409, XSA-427, XSA-428): the vulnerable code runs for this guest until the
  release has the fix; no figure (a memory exhaustion, a use-after-free, an unbounded list).

Every finding names its inputs; a fact the audit lacks makes the verdict ``unknown`` with the
missing input named, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..advisories import Advisory
from ..model import analytic
from ..model.spec import DomainSpec
from ..severity import WATCHDOG_TIMEOUT_S, severity_for
from ..toolstack import GuestSpec, HostSpec
from ..toolstack.grants import maptrack_limit
from ..versions import Paging, Profile, Vendor
from .findings import AdvisoryFinding, Severity, SourceRef, Verdict, clean_text, format_ms_range
from .settings import AuditSettings

#: The most ports a guest can use: the FIFO event-channel ABI's 131,071 channels plus port 0
#: (docs/man/xl.cfg.5.pod.in @ RELEASE-4.13.0 l.1322-1325).
EVTCHN_MAX_PORTS = 131072


@dataclass(frozen=True)
class GuestContext:
    """What the family's assessments read about one guest beyond its config: its paging
    mode (None: no HVM paging), its paging pool and the pages its paging covers (None:
    unknown), and the vCPUs the paging state is sized for."""

    guest: GuestSpec
    host: HostSpec
    profile: Profile
    settings: AuditSettings
    mode: Paging | None = None
    pool_pages: int | None = None
    pages: int | None = None
    vcpus: int = 1


def advisory_finding(
    adv: Advisory, verdict: Verdict, settings: AuditSettings, host: HostSpec, *,
    worst: float | None, low: float | None, operations: tuple[str, ...], fixed: bool | None,
    reasons: list[str] | tuple[str, ...], mitigations: list[str] | tuple[str, ...] = (),
    decisive: SourceRef | None = None, unbounded: bool = False,
) -> AdvisoryFinding:
    """One advisory's finding with what every one carries: its title and impact from the
    registry, its severity on the one scale (an affected advisory without a figure - an
    unbounded loop, a use-after-free - is "high")."""
    if verdict != "affected":
        severity: Severity = "none"
    elif worst is None:
        severity = "high"
    else:
        severity = severity_for(worst, settings.budget_ms,
                                host.watchdog_timeout or WATCHDOG_TIMEOUT_S)
    return AdvisoryFinding(
        id=adv.id, cves=adv.cves, verdict=verdict, worst_case_ms=worst, worst_case_ms_low=low,
        operations=operations, fixed=fixed, reasons=tuple(clean_text(r) for r in reasons),
        mitigations=tuple(mitigations), title=adv.title,
        impact=adv.impact,
        severity=severity, unbounded=unbounded, decisive=decisive,
    )


def fixed_by(adv: Advisory, profile: Profile) -> bool | None:
    """Whether this build has ``adv``'s fix: the release table where it carries it (it
    knows --patched and development builds), else the registry's first fixed releases."""
    if adv.behaviour:
        return bool(getattr(profile.paging, adv.behaviour))
    return adv.fixed_in(profile.version)


def upgrade(adv: Advisory, profile: Profile) -> str:
    return f"Upgrade Xen to {adv.upgrade_target(profile.version)} or later ({adv.id} fixed)."


def _head(adv: Advisory) -> str:
    return f"{adv.id} ({', '.join(adv.cves)}): {adv.title}"


def _at(guest: GuestSpec, key: str, line: int | None) -> SourceRef:
    """A setting of the guest's own file (path ``""``: see ``AdvisoryFinding.decisive``)."""
    return SourceRef("", line, key if line is not None else None)


def own_file(guest: GuestSpec, ref: SourceRef | None) -> SourceRef | None:
    """``ref`` with the guest's own file as ``""`` (``AdvisoryFinding.decisive``)."""
    if ref is not None and ref.path == clean_text(guest.source):
        return SourceRef("", ref.line, ref.key)
    return ref


#: The guest's settings an advisory may be decided by (registry ``decided_by``), and where
#: GuestSpec keeps their lines.
_SETTING_LINES = {"hap": "hap_line", "shadow_memory": "shadow_memory_line",
                  "maxmem": "maxmem_line", "memory": "memory_line",
                  "max_event_channels": "max_event_channels_line",
                  "max_maptrack_frames": "max_maptrack_frames_line", "pci": "pci_line"}


def setting_ref(guest: GuestSpec, keys: tuple[str, ...]) -> SourceRef | None:
    """The first of ``keys`` the guest's config sets, as a location (None if none is set)."""
    for key in keys:
        line = getattr(guest, _SETTING_LINES[key], None) if key in _SETTING_LINES else None
        if line is not None:
            return _at(guest, key, line)
    return None


def _ms(ns: float) -> float:
    return round(ns / 1e6, 3)


def _priced(ctx: GuestContext, est: analytic.Estimate) -> tuple[float, float]:
    """An estimate's longest section, ms, at the high and low end of the cost ranges."""
    costs = ctx.settings.costs
    return _ms(est.longest_ns(costs.ns_per_unit)), _ms(est.longest_ns(costs.low_ns))


def _verdict(ctx: GuestContext, worst: float) -> Verdict:
    return "affected" if worst >= ctx.settings.budget_ms else "not_affected"


def _within(ctx: GuestContext, low: float, worst: float) -> str:
    budget = ctx.settings.budget_ms
    text = (f"{format_ms_range(low, worst)} ms, {'at least' if worst >= budget else 'within'} "
            f"the {budget:g} ms budget")
    if low < budget <= worst:
        text += (" at the high end of the cost ranges (within it at the low end: it depends "
                 "on the hardware; measure it with `xenvmmu calibrate`)")
    return text


# -- XSA-344 ---------------------------------------------------------------------------------
def evtchn(adv: Advisory, ctx: GuestContext) -> AdvisoryFinding:
    """The event-channel reset of a guest that uses every port ``max_event_channels`` allows
    (the guest's choice)."""
    guest, beh = ctx.guest, ctx.profile.paging
    ports = min(max(guest.max_event_channels, 1), EVTCHN_MAX_PORTS)
    est = analytic.evtchn_reset(ports, beh)
    worst, low = _priced(ctx, est)
    verdict = _verdict(ctx, worst)
    fixed = beh.evtchn_reset_preemptible
    where = (f" (line {guest.max_event_channels_line})" if guest.max_event_channels_line
             else " (the default)")
    reasons = [f"{_head(adv)}; max_event_channels = {guest.max_event_channels}{where}: "
               f"resetting {ports:,} ports takes {format_ms_range(low, worst)} ms "
               f"{'in sections of 64 ports' if fixed else 'without a preemption point'}"]
    fixes: list[str] = []
    if verdict == "affected":
        per_port = est.longest_ns(ctx.settings.costs.ns_per_unit) / ports
        under = int(ctx.settings.budget_ms * 1e6 / per_port) if per_port else ports
        if 1 <= under < ports:
            fixes.append(f"Set max_event_channels = {min(under, 1023):,} or less (the default "
                         "is 1023; a guest needing more channels needs the fix).")
        if not fixed:
            fixes.append(upgrade(adv, ctx.profile))
    return advisory_finding(adv, verdict, ctx.settings, ctx.host, worst=worst, low=low,
                            operations=("evtchn_reset",), fixed=fixed, reasons=reasons,
                            mitigations=fixes, decisive=_at(guest, "max_event_channels",
                                                            guest.max_event_channels_line))


# -- XSA-380 ---------------------------------------------------------------------------------
def maptrack(adv: Advisory, ctx: GuestContext) -> AdvisoryFinding:
    """The release of every grant mapping the guest can make (its maptrack limit, all in
    use: mapping its own grants suffices), and each ``mapkind()`` of a PV guest with
    passthrough (Xen keeps its IOMMU mappings of grants)."""
    guest, host, profile = ctx.guest, ctx.host, ctx.profile
    beh = profile.paging
    lim = maptrack_limit(guest, host, profile)
    decisive = (_at(guest, "max_maptrack_frames", lim.line) if lim.line is not None
                else SourceRef(clean_text(host.source), host.line_of("xen_commandline"),
                               "xen_commandline") if lim.from_host and host.source
                else _at(guest, "max_maptrack_frames", None))
    fixed = beh.maptrack_bounded
    if lim.creation_fails:
        return advisory_finding(
            adv, "not_affected", ctx.settings, host, worst=None, low=None, operations=(),
            fixed=fixed, reasons=[f"{_head(adv)}; {lim.reason}: nothing runs"],
            decisive=decisive)
    ops = [("maptrack_release", analytic.maptrack_release(lim.entries, lim.per_frame, beh))]
    if guest.type == "pv" and guest.pci_devices:
        ops.append(("maptrack_mapkind", analytic.mapkind(lim.entries, beh)))
    priced = [(name, *_priced(ctx, est)) for name, est in ops]
    _, worst, low = max(priced, key=lambda p: p[1])
    verdict = _verdict(ctx, worst)
    release_worst, release_low = priced[0][1], priced[0][2]
    sections = ("in one section" if not fixed
                else f"in sections of one maptrack page ({lim.per_frame} mappings)")
    reasons = [f"{_head(adv)}; maptrack limit {lim.frames:,} frames = {lim.entries:,} "
               f"mappings ({lim.reason}): releasing them all when the guest is destroyed "
               f"takes, {sections}, {_within(ctx, release_low, release_worst)}"]
    if len(priced) > 1:
        reasons.append(f"the guest is PV with {guest.pci_devices} passthrough device(s): each "
                       "grant map or unmap searches its maptrack table (mapkind) "
                       + ("no more after the fix" if fixed else
                          f"for {format_ms_range(priced[1][2], priced[1][1])} ms"))
    if not fixed and lim.frames <= 1024:
        reasons.append("the advisory believes the default limit (1024 frames) not vulnerable "
                       "and recommends 256 as low enough for all hardware (CVE-2021-28698)")
    fixes: list[str] = []
    if verdict == "affected":
        per_entry = max(est.longest_ns(ctx.settings.costs.ns_per_unit) for _, est in ops) / max(
            lim.entries, 1)
        frames = int(ctx.settings.budget_ms * 1e6 / per_entry) // lim.per_frame if per_entry else 0
        if frames >= 1:
            frames = min(frames, 256)
            knob = ("max_maptrack_frames = {n} in the guest's config (or "
                    "gnttab_max_maptrack_frames={n} on the Xen command line)"
                    if profile.xl_maptrack_key else
                    "gnttab_max_maptrack_frames={n} on the Xen command line")
            if profile.cmdline.maptrack_option:
                fixes.append(f"Set {knob.format(n=frames)}; 0 for a guest that maps no "
                             "grants (no backend drivers).")
        if not fixed:
            fixes.append(upgrade(adv, profile))
    return advisory_finding(adv, verdict, ctx.settings, host, worst=worst, low=low,
                            operations=tuple(n for n, _ in ops), fixed=fixed, reasons=reasons,
                            mitigations=fixes, decisive=decisive)


# -- XSA-150 / XSA-246 (populate on demand) --------------------------------------------------
def _pod(guest: GuestSpec) -> tuple[int, int] | None:
    """(gfns swept, RAM pages) of an HVM guest on populate-on-demand, else None: xl builds
    an HVM guest with PoD when its target is below its maximum (``memory < maxmem``)."""
    if guest.type != "hvm" or guest.memory_mib is None or guest.maxmem_mib is None:
        return None
    if guest.memory_mib >= guest.maxmem_mib:
        return None
    maxmem_pages = guest.maxmem_kib // 4 if guest.maxmem_kib is not None else (
        guest.maxmem_mib * 256)
    return maxmem_pages, guest.memory_mib * 256


def _no_pod_fix(g: GuestSpec) -> str:
    return (f"Set maxmem = memory ({g.memory_mib} MiB) so the guest does not use "
            "populate-on-demand.")


def _no_pod(adv: Advisory, ctx: GuestContext) -> AdvisoryFinding:
    return advisory_finding(
        adv, "not_affected", ctx.settings, ctx.host, worst=None, low=None, operations=(),
        fixed=fixed_by(adv, ctx.profile),
        reasons=[f"{_head(adv)}; not on populate-on-demand (memory = maxmem)"],
        decisive=_at(ctx.guest, "maxmem", ctx.guest.maxmem_line))


def _vendors(ctx: GuestContext) -> tuple[Vendor, ...]:
    """The p2m flavours to price: shadow mode uses the page-table p2m (priced like NPT: a
    lock per entry written); HAP the host's vendor, else both (the worse is reported)."""
    if ctx.mode == "shadow":
        return ("amd",)
    return (ctx.host.cpu_vendor,) if ctx.host.cpu_vendor is not None else ("intel", "amd")


def pod_sweep(adv: Advisory, ctx: GuestContext) -> AdvisoryFinding:
    """The emergency sweep of a PoD guest whose pages all look almost zero."""
    pod = _pod(ctx.guest)
    if pod is None:
        return _no_pod(adv, ctx)
    gfns, ram = pod
    beh = ctx.profile.paging
    priced = [(*_priced(ctx, analytic.pod_sweep(gfns, ram, v, beh)), v) for v in _vendors(ctx)]
    worst, low, vendor = max(priced)
    verdict = _verdict(ctx, worst)
    fixed = beh.pod_sweep_bounded
    g = ctx.guest
    reasons = [f"{_head(adv)}; populate-on-demand (memory {g.memory_mib:,} MiB < maxmem "
               f"{g.maxmem_mib:,} MiB): when its PoD cache is empty the guest makes Xen sweep "
               f"{gfns:,} gfns and read {ram:,} pages it filled to look almost zero: "
               f"{_within(ctx, low, worst)} "
               + ("(the fix bounds a sweep to 1024 gfns when a preemption is pending)" if fixed
                  else "without a preemption point")]
    if len(priced) > 1:
        reasons.append("CPU vendor unknown: EPT and NPT both priced, the worse reported "
                       f"({vendor}); pass --cpu-vendor")
    fixes: list[str] = []
    if verdict == "affected":
        fixes.append(_no_pod_fix(g))
        if not fixed:
            fixes.append(upgrade(adv, ctx.profile))
    return advisory_finding(adv, verdict, ctx.settings, ctx.host, worst=worst, low=low,
                            operations=("pod_sweep",), fixed=fixed, reasons=reasons,
                            mitigations=fixes, decisive=_at(g, "maxmem", g.maxmem_line))


def pod_livelock(adv: Advisory, ctx: GuestContext) -> AdvisoryFinding:
    """The PoD retry loop (XSA-246): unbounded once the paging pool cannot supply a page
    table to shatter a superpage; possible when the pool cannot hold a fully 4 KiB-mapped
    p2m."""
    pod = _pod(ctx.guest)
    if pod is None:
        return _no_pod(adv, ctx)
    fixed = fixed_by(adv, ctx.profile)
    g = ctx.guest
    head = (f"{_head(adv)}; populate-on-demand (memory {g.memory_mib:,} MiB < maxmem "
            f"{g.maxmem_mib:,} MiB)")
    at = _at(g, "maxmem", g.maxmem_line)
    if fixed:
        return advisory_finding(adv, "not_affected", ctx.settings, ctx.host, worst=None,
                                low=None, operations=(), fixed=fixed, decisive=at,
                                reasons=[f"{head}: this release fails the fault instead of "
                                         "retrying forever"])
    if ctx.pool_pages is None or ctx.pages is None or ctx.mode is None:
        return advisory_finding(adv, "unknown", ctx.settings, ctx.host, worst=None, low=None,
                                operations=(), fixed=fixed, decisive=at,
                                reasons=[f"{head}: the paging pool size is unknown"])
    need = p2m_pool_pages(ctx.pages, ctx.mode, ctx.vcpus)  # only a PoD guest pays for it
    if ctx.pool_pages >= need:
        return advisory_finding(
            adv, "not_affected", ctx.settings, ctx.host, worst=None, low=None, operations=(),
            fixed=fixed, decisive=at,
            reasons=[f"{head}: the paging pool ({ctx.pool_pages * 4:,} KiB) holds a fully "
                     f"4 KiB-mapped p2m ({need * 4:,} KiB), so shattering "
                     "cannot run out of pages"])
    return advisory_finding(
        adv, "affected", ctx.settings, ctx.host, worst=None, low=None,
        operations=("pod_shatter_retry",), fixed=fixed, unbounded=True, decisive=at,
        reasons=[f"{head}: the paging pool ({ctx.pool_pages * 4:,} KiB) is smaller than a "
                 f"fully 4 KiB-mapped p2m ({need * 4:,} KiB); once it runs "
                 "out while a superpage is shattered, the guest's fault is retried forever "
                 "on a physical CPU"],
        mitigations=[_no_pod_fix(g), upgrade(adv, ctx.profile)])


# -- XSA-409 / XSA-427 / XSA-428 -------------------------------------------------------------
def present(adv: Advisory, ctx: GuestContext) -> AdvisoryFinding:
    """The vulnerable code runs for this guest until the release has the fix; an advisory
    that needs a deprivileged device model (``requires = ["dm_deprivileged"]``) concerns
    only guests that have one."""
    fixed = fixed_by(adv, ctx.profile)
    g = ctx.guest
    if "dm_deprivileged" in adv.requires and not g.dm_deprivileged:
        return advisory_finding(
            adv, "not_affected", ctx.settings, ctx.host, worst=None, low=None, operations=(),
            fixed=fixed, reasons=[f"{_head(adv)}; the device model runs in dom0 with dom0's "
                                  "privileges (no stub domain, no dm_restrict): the interface "
                                  "gives it nothing it does not already have"],
            decisive=_at(g, "dm_restrict", None))
    if fixed:
        return advisory_finding(adv, "not_affected", ctx.settings, ctx.host, worst=None,
                                low=None, operations=(), fixed=True,
                                reasons=[f"{_head(adv)}; fixed in Xen {ctx.profile.version}"])
    verdict: Verdict = "unknown" if fixed is None else "affected"
    why = adv.present_why or adv.title
    reasons = [f"{_head(adv)}; {why}"]
    if fixed is None:
        reasons.append(f"whether development build {ctx.profile.version} has the fix is "
                       "unknown (give --changeset or the release)")
    decisive = (_at(g, "dm_restrict", g.dm_deprivileged_line) if g.dm_deprivileged_line
                else _at(g, "hap", g.hap_line) if ctx.mode == "shadow" else None)
    return advisory_finding(
        adv, verdict, ctx.settings, ctx.host, worst=None, low=None,
        operations=adv.operations, fixed=fixed, reasons=reasons, unbounded=adv.unbounded,
        mitigations=[*adv.mitigations, upgrade(adv, ctx.profile)] if verdict == "affected"
        else (), decisive=decisive)


ASSESSMENTS: dict[str, Callable[[Advisory, GuestContext], AdvisoryFinding]] = {
    "evtchn": evtchn,
    "maptrack": maptrack,
    "pod_sweep": pod_sweep,
    "pod_livelock": pod_livelock,
    "present": present,
}


def p2m_pool_pages(pages: int, mode: Paging, vcpus: int) -> int:
    """The paging pool a fully 4 KiB-mapped p2m of ``pages`` needs (with nothing else)."""
    spec = DomainSpec(ram_bytes=pages << 12, vcpus=max(1, vcpus), paging=mode,
                      superpages="4k", pool_kib=0)
    return analytic.min_pool_pages(spec)
