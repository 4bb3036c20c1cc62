"""Xen versions and what each release does (``Profile``): the public import point.

``XenVersion`` parses what ``xl info`` and operators write (``4.4.1``, ``4.5-unstable``,
``4.17.3-pre``, ``4.2.5-33.el6``) and orders it (``xenvmmu._xenversion``). ``profile_for``
answers, for one version, which XSA-97-related behaviours that release has. The answers come
from ONE table, ``xenvmmu._branches.BRANCHES`` (one row per x.y branch, a source per fact);
nothing else in xenvmmu branches on version numbers.

A ``-pre``/``-rcN``/``-unstable`` build sits between releases, so its version alone often
cannot say whether a fix is in. Its ``xen_changeset`` date decides where it can; where it
cannot, the answer is ``Unknown`` with a reason: "could not assess" is a value, never an
exception.
``default_pool_kib`` is the toolstack's default paging pool for each ``PoolFormula``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, TypeAlias

from ._branches import (
    BRANCHES,
    Classification,
    Fix,
    Known,
    PoolFormula,
    Timeline,
    Unknown,
    changeset_day,
    classify,
    row_for,
)
from ._xenversion import VersionError, XenVersion

__all__ = [
    "KNOWN_PATCHES",
    "Arch",
    "Classification",
    "CmdlineRules",
    "GuestType",
    "Known",
    "Paging",
    "PagingBehaviour",
    "PoolFormula",
    "Profile",
    "Timeline",
    "Unknown",
    "Vendor",
    "VersionError",
    "XenVersion",
    "behaviour_releases",
    "default_pool_kib",
    "first_fixed_release",
    "profile_for",
    "upgrade_target",
]

GuestType: TypeAlias = Literal["hvm", "pv", "pvh"]
Paging: TypeAlias = Literal["hap", "shadow"]
Arch: TypeAlias = Literal["x86", "arm"]
Vendor: TypeAlias = Literal["intel", "amd"]  # x86 CPU vendor: EPT (Intel) or NPT (AMD) paging

KNOWN_PATCHES = frozenset({"xsa97-hap", "xsa410"})


# --------------------------------------------------------------------------------------------
# Profile


@dataclass(frozen=True)
class CmdlineRules:
    """How one release's hypervisor reads its command line (from the release table).

    ``bool_values``: ``"lenient"`` (``cmdline_parse`` before 4.10: an unrecognised value
    counts as true, a ``no-`` prefix on a custom option is ignored, numbers end at the first
    non-digit) or ``"strict"`` (``parse_params`` from 4.10: an error, and a boolean keeps its
    previous value). ``watchdog_custom``: ``watchdog`` is a custom option that understands
    ``force`` (4.4.2, 4.5.0 and later), else a plain boolean. ``token_max``: longer options
    are cut to this many characters (``char opt[100]`` before 4.10, ``opt[128]`` after).
    ``hap_option``: the hypervisor has a ``hap`` option (not in 4.0-4.2).
    ``maptrack_option``: ``gnttab_max_maptrack_frames=`` exists (from 4.5.0);
    ``nr_frames_ratio``: ``gnttab_max_nr_frames=N`` sets the maptrack limit to 8 N frames
    when ``gnttab_max_maptrack_frames`` is not given (up to 4.9; the only way before 4.5);
    ``gnttab_limit_checked``: a number with trailing junk is rejected and not stored (4.13+:
    ``parse_gnttab_limit``; 4.10-4.12 store it, then report the junk).
    """

    bool_values: Literal["lenient", "strict"] = "strict"
    watchdog_custom: bool = True
    token_max: int = 127
    hap_option: bool = True
    maptrack_option: bool = True
    nr_frames_ratio: bool = False
    gnttab_limit_checked: bool = True


@dataclass(frozen=True)
class PagingBehaviour:
    """The paging behaviours of one release that the model (``xenvmmu.model``) reads: the one
    hashable key of every per-release estimate and cache. Built only by :func:`profile_for`
    (from the table) or directly by a caller exploring a what-if.

    * ``logdirty_preemptible``: the xsa97-hap fix - the log-dirty walk and free check for
      preemption after each 64 GiB trie node;
    * ``hap_retype``: HAP ``p2m_change_entry_type_global`` is a full sweep (``"sweep"``,
      <= 4.4.x) or marks the root entries only (``"lazy"``, from 4.5.0);
    * ``pool_teardown_preemptible``: freeing the paging pool at destruction is restartable
      (the 2015 change 0174da5b79 and its backports);
    * ``p2m_free_preemptible``: XSA-410, p2m pages freed with a check every 1024 pages;
    * ``ept_flush_deferred``: Intel EPT syncs once per p2m lock hold (4.7+), not once per
      changed entry (an IPI round each, before 4.7);
    * ``evtchn_reset_preemptible``: XSA-344, the event-channel reset (the model runs it too)
      checks for preemption every 64 ports;
    * ``pod_sweep_bounded``: XSA-150, the PoD emergency sweep stops after 1024 gfns when a
      preemption is pending (and zeroed pages are reclaimed eagerly);
    * ``maptrack_bounded``: XSA-380, the release of a dying domain's grant mappings checks
      for preemption at every maptrack page, and ``mapkind()`` no longer searches the table.
    """

    logdirty_preemptible: bool = True
    hap_retype: Literal["sweep", "lazy"] = "lazy"
    pool_teardown_preemptible: bool = True
    p2m_free_preemptible: bool = True
    ept_flush_deferred: bool = True
    evtchn_reset_preemptible: bool = True
    pod_sweep_bounded: bool = True
    maptrack_bounded: bool = True


@dataclass(frozen=True)
class Profile:
    """What one Xen release does, with sources in the field comments of the table."""

    version: XenVersion
    dialect: str  # xl.cfg grammar dialect (xenvmmu.xlcfg.DIALECTS)
    paging: PagingBehaviour  # what the paging model reads (one hashable key)
    pool_formula: Literal["xend", "xl", "libxl-4.17"]  # default paging pool size formula
    hap_default_follows_host: bool  # >= 4.13: hap default = host capability; creation fails
    virt_caps_reports_hap: bool  # >= 4.13: xl info virt_caps says whether HAP exists
    patched: frozenset[str] = frozenset()  # distribution patches the operator declared
    # (name, Known|Unknown) for "logdirty_preemptible", "hap_retype_lazy",
    # "pool_teardown_preemptible", "p2m_free_preemptible"; the bool fields above hold the
    # conservative reading (not preemptible / sweep) where the answer is Unknown.
    assessments: tuple[tuple[str, Known[bool] | Unknown], ...] = ()
    cmdline: CmdlineRules = CmdlineRules()
    pool_by: Literal["xl", "libxl"] = "libxl"  # who computes the default pool (xl <=4.12)
    xl_type_key: bool = True  # xl.cfg `type=` (>= 4.10); before: only `builder`
    pvh_v1: bool = False  # xl.cfg `pvh=1` (PVHv1, 4.4-4.8)
    hw_caps_featureset: bool = True  # `xl info` hw_caps word order of 4.7+
    arm_default_type: Literal["pv", "pvh"] = "pvh"  # xl's type without type=/builder= on Arm
    #: the grant maptrack table: bytes per entry (8 before 4.6, 16 from 4.6), the hypervisor's
    #: default limit in frames, and whether xl.cfg ``max_maptrack_frames`` exists (4.10+)
    maptrack_entry_bytes: int = 16
    maptrack_default_frames: int = 1024
    xl_maptrack_key: bool = True
    libxl_maptrack_frames: int | None = None  # libxl's default request (4.10-4.12: 1024)
    supported: bool = True  # False for <= 4.1 (no XSA-97 fix ever; out of support)
    xsa97_first_fixed: XenVersion | None = None  # first fixed release of this branch
    upgrade_to: XenVersion | None = None  # smallest fixed release newer than this one
    notes: tuple[str, ...] = ()

    @property
    def logdirty_preemptible(self) -> bool:
        """The xsa97-hap fix (see :class:`PagingBehaviour`)."""
        return self.paging.logdirty_preemptible

    @property
    def hap_retype(self) -> Literal["sweep", "lazy"]:
        return self.paging.hap_retype

    @property
    def pool_teardown_preemptible(self) -> bool:
        return self.paging.pool_teardown_preemptible

    @property
    def p2m_free_preemptible(self) -> bool:
        return self.paging.p2m_free_preemptible

    def assess(self, name: str) -> Known[bool] | Unknown:
        """``Known``/``Unknown`` for one behaviour (see ``assessments``)."""
        for key, value in self.assessments:
            if key == name:
                return value
        raise KeyError(name)

    @property
    def xsa97(self) -> Known[bool] | Unknown:
        """Whether the hypervisor has the xsa97-hap fix (log-dirty walk/free preemptible)."""
        return self.assess("logdirty_preemptible")


def profile_for(
    version: XenVersion | str,
    *,
    patched: frozenset[str] = frozenset(),
    changeset_date: date | datetime | None = None,
) -> Profile:
    """The behaviour of one Xen release.

    ``patched`` names distribution patches on an otherwise unfixed build (``"xsa97-hap"``,
    ``"xsa410"``). ``changeset_date`` (``xen_changeset`` of ``xl info``) classifies
    development builds. Raises ``VersionError`` for bad input, never for "unknown".
    """
    v = XenVersion.parse(version) if isinstance(version, str) else version
    unknown_patches = set(patched) - KNOWN_PATCHES
    if unknown_patches:
        raise VersionError(f"unknown patch name(s) {sorted(unknown_patches)}; "
                           f"known: {sorted(KNOWN_PATCHES)}")
    row, prev, note = row_for(v.branch)
    notes = [note] if note else []
    if not row.supported:
        notes.append(f"Xen {v.major}.{v.minor} is out of security support and never got "
                     "the XSA-97 fix")
    when = changeset_day(changeset_date)

    def pick(fix: Fix, old: Fix | None, what: str, patch: str | None) -> Classification:
        c = classify(fix, old, v, when, what)
        if patch is not None and patch in patched and c.value is not True:
            c = Known(True, f"{what}: the build carries the {patch} patch (declared by operator)")
        return c

    xsa97 = pick(row.xsa97, prev.xsa97 if prev else None,
                 "the XSA-97 fix (preemptible log-dirty)", "xsa97-hap")
    lazy = pick(row.hap_retype, prev.hap_retype if prev else None,
                "lazy HAP type change", None)
    tear = pick(row.teardown, prev.teardown if prev else None,
                "restartable pool teardown", None)
    p2m = pick(row.xsa410, prev.xsa410 if prev else None,
               "the XSA-410 fix (preemptible p2m freeing)", "xsa410")
    evtchn = pick(row.evtchn_reset, prev.evtchn_reset if prev else None,
                  "the XSA-344 fix (preemptible evtchn_reset)", None)
    pod = pick(row.pod_sweep, prev.pod_sweep if prev else None,
               "the XSA-150 fix (bounded PoD sweep)", None)
    maptrack = pick(row.maptrack, prev.maptrack if prev else None,
                    "the XSA-380 fix (preemptible maptrack release)", None)
    deferred = classify(row.ept_flush_deferred, prev.ept_flush_deferred if prev else None, v,
                        when, "the deferred EPT sync").value is True
    # a development build of unknown date reads the command line as the branch's release does
    custom = classify(row.watchdog_custom, prev.watchdog_custom if prev else None, v, when,
                      "`watchdog=force`").value is True

    micro = v.micro or 0
    dialect = [d for m, d in row.dialects if m <= micro][-1]
    rules = CmdlineRules(
        bool_values="strict" if row.cmdline_strict else "lenient",
        watchdog_custom=custom,
        token_max=127 if row.cmdline_strict else 99,
        hap_option=row.hap_option,
        maptrack_option=row.maptrack_option,
        nr_frames_ratio=row.nr_frames_ratio,
        gnttab_limit_checked=row.gnttab_limit_checked,
    )
    return Profile(
        version=v,
        dialect=dialect,
        paging=PagingBehaviour(
            logdirty_preemptible=xsa97.value is True,
            hap_retype="lazy" if lazy.value is True else "sweep",
            pool_teardown_preemptible=tear.value is True,
            p2m_free_preemptible=p2m.value is True,
            ept_flush_deferred=deferred,
            evtchn_reset_preemptible=evtchn.value is True,
            pod_sweep_bounded=pod.value is True,
            maptrack_bounded=maptrack.value is True,
        ),
        pool_formula=row.pool_formula,
        hap_default_follows_host=row.hap_default_follows_host,
        virt_caps_reports_hap=row.virt_caps_reports_hap,
        patched=frozenset(patched),
        assessments=(("logdirty_preemptible", xsa97), ("hap_retype_lazy", lazy),
                     ("pool_teardown_preemptible", tear), ("p2m_free_preemptible", p2m)),
        cmdline=rules,
        pool_by=row.pool_by,
        xl_type_key=row.xl_type_key,
        pvh_v1=row.pvh_v1,
        hw_caps_featureset=row.hw_caps_featureset,
        arm_default_type=row.arm_default_type,
        maptrack_entry_bytes=row.maptrack_entry_bytes,
        maptrack_default_frames=row.maptrack_default_frames,
        xl_maptrack_key=row.xl_type_key,  # xl.cfg max_maptrack_frames, like type=, from 4.10
        # (tools/xl/xl_parse.c @ RELEASE-4.10.0 l.1042; absent @ RELEASE-4.9.0)
        libxl_maptrack_frames=row.libxl_maptrack_frames,
        supported=row.supported,
        xsa97_first_fixed=first_fixed_release(v.branch),
        upgrade_to=None if xsa97.value is True else upgrade_target(v),
        notes=tuple(notes),
    )


def first_fixed_release(branch: tuple[int, int]) -> XenVersion | None:
    """The first release of a branch with the XSA-97 fix (4.3 -> 4.3.4), or None (4.2)."""
    row, _, _ = row_for(branch)
    first = row.xsa97.first
    return None if first is None else XenVersion(branch[0], branch[1], first)


@functools.cache
def behaviour_releases() -> tuple[XenVersion, ...]:
    """Every release where a paging behaviour first appears on its branch (the XSA-97 fix,
    the lazy HAP type change, the restartable pool teardown, XSA-410), sorted: the releases a
    mitigation can propose as upgrades, from the table and nowhere else."""
    out: set[XenVersion] = set()
    for r in BRANCHES:
        if not r.supported:
            continue
        for fix in (r.xsa97, r.hap_retype, r.teardown, r.xsa410):
            if fix.first is not None:
                out.add(XenVersion(r.branch[0], r.branch[1], fix.first))
    return tuple(sorted(out))


def upgrade_target(version: XenVersion) -> XenVersion | None:
    """The smallest XSA-97-fixed release newer than ``version`` (4.2.5 -> 4.3.4)."""
    fixed = [XenVersion(r.branch[0], r.branch[1], r.xsa97.first)
             for r in BRANCHES if r.xsa97.first is not None]
    later = [f for f in fixed if f > version]
    return min(later) if later else None


# --------------------------------------------------------------------------------------------
# Default paging pool


def default_pool_kib(
    maxmem_mib: int,
    max_vcpus: int,
    *,
    guest_type: GuestType,
    paging: Paging | None,
    arch: Arch = "x86",
    formula: PoolFormula,
    configured_kib: int | None = None,
) -> int:
    """The toolstack's default paging (shadow/HAP) pool in KiB (xen-config.md §2).

    * ``xend`` (xm; ships through 4.4 - tools/python/xen/xend/image.py is present @
      RELEASE-4.4.0, absent @ RELEASE-4.5.0): ``1024·v + 8·M`` for HVM, 0 for PV; a configured
      ``shadow_memory`` only raises it (``max``) (tools/python/xen/xend/image.py @ 4.2.0).
    * ``xl`` (xl <=4.12, libxl 4.13-4.16): ``4·(256·v + 2·M)`` = ``1024·v + 8·M`` for every
      type (libxl_get_required_shadow_memory, tools/libxl/libxl_utils.c @ RELEASE-4.4.0).
    * ``libxl-4.17``: ``4·(256·v + ((type≠PV) + !hap)·M + EXTRA)``, EXTRA 128 on Arm
      (2c99281085): HVM/PVH shadow ``1024v+8M``, HAP and PV ``1024v+4M``, Arm ``+512``.

    ``M`` = maxmem in MiB, ``v`` = max vCPUs. With xl/libxl a configured ``shadow_memory``
    replaces the default, so ``configured_kib`` is returned as is.
    """
    if maxmem_mib < 0 or max_vcpus < 0 or (configured_kib is not None and configured_kib < 0):
        raise ValueError("pool inputs must not be negative")
    base = 1024 * max_vcpus
    if formula == "xend":
        default = 0 if guest_type == "pv" else base + 8 * maxmem_mib
        return max(default, configured_kib or 0)
    if configured_kib is not None:
        return configured_kib
    if formula == "xl":
        return base + 8 * maxmem_mib
    hap = guest_type != "pv" and (paging == "hap" or (arch == "arm" and paging is None))
    factor = (guest_type != "pv") + (not hap)
    extra = 128 if arch == "arm" else 0
    return 4 * (256 * max_vcpus + factor * maxmem_mib + extra)
