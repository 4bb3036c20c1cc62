"""The auditor as a library: :func:`run_audit` is what ``xenvmmu audit`` runs.

``xenvmmu audit`` only parses its arguments, calls :func:`run_audit`, formats the
:class:`~xenvmmu.audit.findings.AuditReport` and chooses the exit status::

    from xenvmmu.audit import audit_settings, run_audit
    from xenvmmu.toolstack import host_from_flags

    report = run_audit(["/etc/xen"], host_from_flags("4.4.1"), audit_settings())
    affected = [f.name for f in report.findings if f.verdict == "affected"]
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import replace

from .. import __version__, xlcfg
from ..costs import CostProfile, default_profile, load_profile
from ..toolstack import (
    GuestSpec,
    HostSpec,
    InputFileError,
    guest_from_xlcfg,
    guests_from_xl_list,
)
from ..toolstack.guest import XL_IGNORES
from ..versions import Profile
from .findings import AuditReport, Finding, InputError, clean_text
from .rules import assess
from .scan import Input, file_ids, scan
from .settings import DEFAULT_BUDGET_MS, AuditSettings

__all__ = ["audit_settings", "run_audit"]


def run_audit(
    inputs: Sequence[str | os.PathLike[str]],
    host: HostSpec,
    settings: AuditSettings,
    *,
    patched: frozenset[str] = frozenset(),
    profile: Profile | None = None,
    exclude: Sequence[str | os.PathLike[str]] = (),
) -> AuditReport:
    """Assess every guest found under ``inputs`` on ``host``.

    ``inputs`` are xl.cfg files, ``xl list -l`` JSON files or directories of them (searched
    recursively, as ``xenvmmu audit`` does). ``host`` comes from
    :func:`xenvmmu.toolstack.load_host` (``xl info`` output) or
    :func:`xenvmmu.toolstack.host_from_flags`; ``settings`` from :func:`audit_settings` or
    :class:`~xenvmmu.audit.settings.AuditSettings`. ``patched`` names distribution patches
    the hypervisor carries on an unfixed release (``xenvmmu.versions.KNOWN_PATCHES``, e.g.
    ``"xsa97-hap"``); ``profile`` replaces the release profile derived from ``host`` and
    ``patched`` (give one or the other).

    Returns the :class:`~xenvmmu.audit.findings.AuditReport`: one
    :class:`~xenvmmu.audit.findings.Finding` per guest, in input order (a guest that cannot
    be assessed, such as an xm-era Python config, is a finding with verdict ``unknown``), and
    one :class:`~xenvmmu.audit.findings.InputError` per input that could not be read or
    understood (missing or unreadable path, invalid JSON, symbolic link loop...): bad inputs
    never raise. ``report.inputs_read`` counts the input files read.

    A file reached twice (a symbolic link, a path given twice) is read once, a domain
    listed twice (same ``uuid`` in ``xl list -l`` files, same ``domid`` in one file) is
    assessed once, and the files in ``exclude`` (e.g. the report being written) are not read.
    An xl.cfg that xl rejects and that is not plausibly a config (binary data, not UTF-8, or
    reached through a symbolic link leaving the scanned directory) is an ``InputError`` that
    names the file and the kind of problem only: none of its content is repeated.

    Raises ``VersionError`` for an unknown patch name and ``ValueError`` when both
    ``patched`` and ``profile`` are given.
    """
    if profile is None:
        profile = host.profile(patched=frozenset(patched))
    elif patched:
        raise ValueError("give patched or profile, not both (a profile carries its patches)")
    items, errors = scan([os.fspath(p) for p in inputs], exclude=file_ids(exclude))
    findings: list[Finding] = []
    domains: dict[str, str] = {}  # uuid -> the listing it was first seen in
    for item in items:
        findings.extend(_assess_input(item, host, profile, settings, errors, domains))
    return AuditReport(
        findings=tuple(findings), errors=tuple(errors), host=_host_facts(host, profile),
        budget_ms=settings.budget_ms, tool_version=__version__, inputs_read=len(items),
    )


def audit_settings(
    *,
    budget_ms: float = DEFAULT_BUDGET_MS,
    costs: CostProfile | str | os.PathLike[str] | None = None,
) -> AuditSettings:
    """:class:`~xenvmmu.audit.settings.AuditSettings` from plain values.

    ``budget_ms``: the latency budget (default one credit-scheduler timeslice, 30 ms); a
    guest whose worst-case stall reaches it is affected. ``costs``: a cost profile, the path
    of a TOML cost profile (as ``xenvmmu audit --costs``), or ``None`` for the shipped
    default. Raises ``ValueError`` for a budget that is not a finite positive number and
    ``CostProfileError`` for a bad cost file.
    """
    if not (isinstance(budget_ms, int | float) and math.isfinite(budget_ms) and budget_ms > 0):
        raise ValueError(f"the latency budget must be a finite positive number of ms, "
                         f"not {budget_ms!r}")
    if costs is None:
        costs = default_profile()
    elif not isinstance(costs, CostProfile):
        costs = load_profile(os.fspath(costs))
    return AuditSettings(costs=costs, budget_ms=budget_ms)


def _host_facts(host: HostSpec, profile: Profile) -> dict[str, object]:
    """What a report shows about the host (``AuditReport.host``)."""
    return {
        "source": host.source,
        "xen_version": str(host.xen_version),
        "arch": host.arch,
        "cpu_hap": host.cpu_hap,
        "cpu_hap_assumed": host.cpu_hap_assumed,
        "hap_enabled": host.hap_enabled,
        "watchdog": host.watchdog,
        "watchdog_timeout_s": host.watchdog_timeout,
        "xsa97_fixed": profile.logdirty_preemptible,
        "hap_retype": profile.hap_retype,
        "patched": sorted(profile.patched),
    }


def _assess_input(item: Input, host: HostSpec, profile: Profile, settings: AuditSettings,
                  errors: list[InputError], domains: dict[str, str]) -> list[Finding]:
    if item.kind == "xlcfg":
        guest = guest_from_xlcfg(item.data, profile, source=item.path, arch=host.arch)
        if guest.status != "ok":
            why = _not_a_config(item)
            if why is not None and not xlcfg.parse(item.data, profile.dialect,
                                                       max_errors=1).ok:
                errors.append(InputError(item.path, None, f"not an xl.cfg file ({why}): xl "
                                         "rejects it; its content is not shown"))
                return []
        return [_with_xl_warnings(assess(guest, host, profile, settings), guest)]
    try:
        listing = guests_from_xl_list(item.data, source=item.path)
    except InputFileError as e:
        errors.append(InputError(e.path, e.line, e.message))
        return []
    found: list[Finding] = []
    for guest, uuid in zip(listing.guests, listing.uuids, strict=True):
        if uuid is not None:
            if uuid in domains:
                continue  # the same domain in another listing: assessed already
            domains[uuid] = item.path
        found.append(assess(guest, host, profile, settings))
    return found


def _not_a_config(item: Input) -> str | None:
    """Why a file is not plausibly an xl.cfg (so its content must not be repeated), if so."""
    if b"\0" in item.data:
        return "binary data: a NUL byte"
    try:
        item.data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if item.leaves_tree():
        return f"a symbolic link to {clean_text(item.real_path())}, outside the scanned directory"
    return None


def _with_xl_warnings(finding: Finding, guest: GuestSpec) -> Finding:
    """The finding with the warnings xl prints for this guest (a number out of range, a
    list where a number belongs...) added to its reasons: xl ignores those settings, and so
    does the assessment, so the report says why."""
    said = tuple(f"xl warns: {clean_text(w)}" for w in guest.warnings
                 if w.endswith(XL_IGNORES))
    return replace(finding, reasons=finding.reasons + said) if said else finding
