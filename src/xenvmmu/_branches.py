"""The per-branch table: which XSA-97-related fixes and rules each Xen x.y branch has.

``BRANCHES`` holds one ``Branch`` row per x.y branch, a source per fact in the comments;
nothing else in xenvmmu branches on version numbers. A ``Fix`` says from which point release
a fix is in, and on which dates its commits reached the stable and development branches, so
that ``classify`` can answer for ``-pre``/``-rcN``/``-unstable`` builds from their changeset
date. The answer is ``Known`` (a value and why) or ``Unknown`` (why not): "could not assess"
is a value, never an exception.

Commit ids are xen-project/xen commits (first 10 hex digits), from
``shared/research/xen-paging.md`` and ``xen-config.md``. Used by ``xenvmmu.versions``
(``profile_for``), which is the public import point for ``Known``/``Unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import ClassVar, Generic, Literal, TypeAlias, TypeVar

from ._xenversion import VersionError, XenVersion

T = TypeVar("T")

PoolFormula: TypeAlias = Literal["xend", "xl", "libxl-4.17"]


# --------------------------------------------------------------------------------------------
# "Known or not" results


@dataclass(frozen=True)
class Known(Generic[T]):
    """An answer, and why."""

    value: T
    reason: str
    known: ClassVar[bool] = True


@dataclass(frozen=True)
class Unknown:
    """No answer can be given; ``reason`` says why (and what would decide it)."""

    reason: str
    known: ClassVar[bool] = False
    value: ClassVar[None] = None


Classification: TypeAlias = "Known[bool] | Unknown"


# --------------------------------------------------------------------------------------------
# The per-branch table

Timeline: TypeAlias = tuple[tuple[date, "bool | None"], ...]
"""Commits on one line of development: from each date on the state is the bool (None: a
version that was later reverted, so a tree from then cannot be classified)."""


@dataclass(frozen=True)
class Fix:
    """When one fix reached one branch.

    ``first`` is the first x.y.z release that has it: 0 = every release of the branch,
    None = no release. ``stable`` are its commits on stable-x.y (for ``x.y.z-pre`` builds),
    ``dev`` its commits on the development branch before x.y.0 (``x.y-unstable``, ``-rcN``).
    """

    first: int | None
    note: str
    stable: Timeline = ()
    dev: Timeline = ()


# XSA-97 commits (xen-paging.md §1, xen-config.md §4): the August fix and its revert on every
# branch ("discovered to cause regressions"), then the October re-fix.
_AUG_FIX, _AUG_REVERT = date(2014, 8, 12), date(2014, 8, 19)


def _xsa97_line(refix: date) -> Timeline:
    return ((_AUG_FIX, None), (_AUG_REVERT, False), (refix, True))


_NEVER = Fix(None, "no release of this branch has it")
_ALWAYS = Fix(0, "every release of this branch has it")


@dataclass(frozen=True)
class Branch:
    """What one x.y branch does. Defaults are the newest behaviour; old rows override."""

    branch: tuple[int, int]
    xsa97: Fix = _ALWAYS
    dialects: tuple[tuple[int, str], ...] = ((0, "4.13"),)  # (first micro, xl.cfg dialect)
    hap_retype: Fix = _ALWAYS  # fixed = lazy (O(512)) global p2m type change
    teardown: Fix = _ALWAYS  # paging pool freeing at teardown restartable
    xsa410: Fix = _ALWAYS  # p2m pages freed preemptibly
    pool_formula: PoolFormula = "libxl-4.17"
    pool_by: Literal["xl", "libxl"] = "libxl"
    hap_default_follows_host: bool = True
    virt_caps_reports_hap: bool = True
    xl_type_key: bool = True
    pvh_v1: bool = False
    arm_default_type: Literal["pv", "pvh"] = "pvh"
    supported: bool = True
    hap_option: bool = True  # the hypervisor has a `hap` command-line option
    cmdline_strict: bool = True  # parse_params rejects bad values (keeps the old value)
    watchdog_custom: Fix = _ALWAYS  # `watchdog` is a custom option that knows `force`
    ept_flush_deferred: Fix = _ALWAYS  # EPT: one sync per p2m lock hold, not per entry
    hw_caps_featureset: bool = True  # `xl info` hw_caps in the 4.7+ featureset word order
    evtchn_reset: Fix = _ALWAYS  # XSA-344: evtchn_reset() checks for preemption every 64 ports
    pod_sweep: Fix = _ALWAYS  # XSA-150: the PoD emergency sweep is bounded
    maptrack: Fix = _ALWAYS  # XSA-380: maptrack release preemptible, mapkind() replaced
    maptrack_entry_bytes: int = 16  # sizeof(struct grant_mapping)
    maptrack_default_frames: int = 1024  # the hypervisor's default maptrack limit
    maptrack_option: bool = True  # `gnttab_max_maptrack_frames=` (4.5+)
    nr_frames_ratio: bool = False  # `gnttab_max_nr_frames=N` gives 8 N maptrack frames (<=4.9)
    gnttab_limit_checked: bool = True  # 4.13+: a number with junk is not stored
    libxl_maptrack_frames: int | None = None  # libxl's own default request (4.10-4.12: 1024)


_SWEEP = Fix(None, "HAP global type change walks the whole p2m (before Xen 4.5)")
_NO_TEARDOWN = Fix(None, "pool teardown not restartable (fix 0174da5b79 is from 2015)")
_NO_XSA410 = Fix(None, "no release of this branch has the XSA-410 fix (nothing on "
                       "stable-4.12 or older)")
#: XSA-410 backports: the five x86 commits of 2022-10-11 on each stable branch; the
#: ``preempted && !(++i % 1024)`` test is in xen/arch/x86/mm/p2m.c @ RELEASE-4.13.5 l.772,
#: @ RELEASE-4.14.6 l.772, @ RELEASE-4.15.4 l.776, @ RELEASE-4.16.3 l.784 and absent
#: @ RELEASE-4.13.4 and @ RELEASE-4.16.2.
_XSA410_DAY = ((date(2022, 10, 11), True),)


def _xsa344(micro: int, commit: str) -> Fix:
    return Fix(micro, f"XSA-344 backported (evtchn_reset preemption {commit}, 2020-09-22)",
               stable=((date(2020, 9, 22), True),))


def _xsa150(micro: int, commit: str) -> Fix:
    return Fix(micro, f"XSA-150 backported (eager PoD reclaim {commit}, 2015-10-29)",
               stable=((date(2015, 10, 29), True),))


def _xsa380(micro: int, commit: str) -> Fix:
    return Fix(micro, f"XSA-380 backported (maptrack release preemption {commit}, 2021-08-25)",
               stable=((date(2021, 8, 25), True),))


def _xsa410_backport(micro: int, commit: str) -> Fix:
    return Fix(micro, f"XSA-410 backported (p2m_teardown preemption {commit}, 2022-10-11)",
               stable=_XSA410_DAY)


_UNSUPPORTED = Fix(None, "Xen <=4.1 never got the fix (out of security support in 2014)")

# Before 4.10 (sources at the rows that change something): xl computes the pool, `builder`
# only, hap default true with silent fallback, virt_caps silent about HAP.
# The command line before 4.10: cmdline_parse (xen/common/kernel.c @ RELEASE-4.4.0 l.52-165)
# counts an unknown boolean value as true and cuts options to 99 characters (char opt[100]);
# strict parse_params (63e8a1e5ff, 94dfb8bf8d, 2017-08-28) and char opt[128] are first in
# RELEASE-4.10.0. `watchdog` is a boolean before the custom `force` option (3ea2ba980a).
_LEGACY = Branch(
    (0, 0), _NEVER, ((0, "4.3"),), _SWEEP, _NO_TEARDOWN, _NO_XSA410, pool_formula="xl",
    pool_by="xl", hap_default_follows_host=False, virt_caps_reports_hap=False,
    xl_type_key=False, arm_default_type="pv", cmdline_strict=False,
    watchdog_custom=Fix(None, "`watchdog` is a boolean option (no `force`)"),
    # EPT set_entry syncs (an IPI round) for each changed present entry up to 4.6
    # (xen/arch/x86/mm/p2m-ept.c @ RELEASE-4.4.0 l.351, 444); deferred to the p2m unlock by
    # 09fc40ed30 (2016-04-12), first in RELEASE-4.7.0.
    ept_flush_deferred=Fix(None, "EPT syncs once per changed entry (before 4.7)"),
    # hw_caps = boot_cpu_data.x86_capability: VMX at word 4 bit 5, SVM at word 6 bit 2
    # (xen/include/asm-x86/cpufeature.h @ RELEASE-4.6.0 l.79, l.120); from 4.7 the featureset
    # order puts them at word 1 bit 5 and word 3 bit 2 (xen/include/public/arch-x86/
    # cpufeatureset.h @ RELEASE-4.7.0 l.127, l.166; xen/arch/x86/sysctl.c @ RELEASE-4.7.0 l.78).
    hw_caps_featureset=False,
    # XSA-344: evtchn_reset() closes every port with no preemption point (xen/common/
    # event_channel.c @ RELEASE-4.13.0 l.1008-1030); 2785b2a9e0 (2020-09-22) checks every 64
    # ports, first in RELEASE-4.15.0; backports first in 4.12.4, 4.13.2, 4.14.1; the
    # stable-4.10/4.11 commits reached no release.
    evtchn_reset=Fix(None, "evtchn_reset() is not preemptible (no release of this branch has "
                           "the XSA-344 fix)"),
    # XSA-150: p2m_pod_emergency_sweep() walks max_gfn..1 with no stop until something is
    # reclaimed (xen/arch/x86/mm/p2m-pod.c @ RELEASE-4.6.0); 101ce53266 (2015-10-29) first in
    # RELEASE-4.7.0; backports 3638ff0e71 4.4.4, 0b12f70dfc 4.5.2, 4a32fbd95a 4.6.1 (git tag
    # --contains); the stable-4.3 commit 2d330c121e reached no release.
    pod_sweep=Fix(None, "the PoD emergency sweep is unbounded (no release of this branch has "
                        "the XSA-150 fix)"),
    # XSA-380: gnttab_release_mappings() walks every maptrack handle in one go and mapkind()
    # searches the whole table (xen/common/grant_table.c @ RELEASE-4.15.0 l.981-1010,
    # 3695-3790); b1ee10be56 / 9781b51efd (2021-08-25) first in RELEASE-4.16.0; backports
    # 4.13.4 (9d954c8c1a, 4d65fe936a), 4.14.3 (29aeeda345, b81187fc40), 4.15.1 (9bfbde40bc,
    # 2f6ebcec02); the stable-4.11/4.12 commits reached no release.
    maptrack=Fix(None, "the maptrack release is not preemptible (no release of this branch "
                       "has the XSA-380 fix)"),
    # struct grant_mapping {ref, flags, domid} = 8 bytes before the vcpu/pad fields of 4.6
    # (xen/include/xen/grant_table.h @ RELEASE-4.5.0; grant_table.c @ RELEASE-4.6.0); the
    # limit is 8 x gnttab_max_nr_frames (default 32) = 256 frames up to 4.4
    # (max_nr_maptrack_frames, grant_table.c @ RELEASE-4.4.0 l.105), the
    # gnttab_max_maptrack_frames default 256 in 4.5 and 1024 from 4.6 (DEFAULT_MAX_MAPTRACK_
    # FRAMES @ RELEASE-4.5.0 l.60, @ RELEASE-4.6.0 l.60); gnttab_max_nr_frames (deprecated
    # from 4.5) still scales the maptrack limit through 4.9 and is gone @ RELEASE-4.10.0.
    maptrack_entry_bytes=8, maptrack_default_frames=256, maptrack_option=False,
    nr_frames_ratio=True, gnttab_limit_checked=False,
)
# 4.0-4.2: the hypervisor `hap` option was removed by 302b8a7c00 (2008-03-05) and re-added by
# bf56007693 (2013-02-12), first in RELEASE-4.3.0 (no boolean_param("hap") in
# xen/arch/x86/hvm/hvm.c @ RELEASE-4.0.0, 4.1.0, 4.2.0, 4.2.5).
_NO_HAP_OPTION = replace(_LEGACY, hap_option=False)
# 4.7-4.12: the legacy toolstack on a hypervisor with the three fixes in every release and
# the 4.7 xl.cfg dialect (rows below say what else changes).
_FIXED_LEGACY = replace(_LEGACY, xsa97=_ALWAYS, hap_retype=_ALWAYS, teardown=_ALWAYS,
                        watchdog_custom=_ALWAYS, dialects=((0, "4.7"),),
                        ept_flush_deferred=_ALWAYS, hw_caps_featureset=True,
                        pod_sweep=_ALWAYS, maptrack_entry_bytes=16,
                        maptrack_default_frames=1024, maptrack_option=True)
#: 4.10-4.12: gnttab_max_nr_frames gone; integer_runtime_param stores a number, then reports
#: trailing junk (xen/common/kernel.c @ RELEASE-4.10.0, OPT_UINT).
#: libxl 4.10-4.12 asks for LIBXL_MAX_MAPTRACK_FRAMES_DEFAULT (1024, tools/libxl/libxl.h @
#: RELEASE-4.10.0 l.332) unless the guest sets max_maptrack_frames; from 4.13 for the
#: hypervisor's limit (LIBXL_MAX_GRANT_DEFAULT, libxl_types.idl @ RELEASE-4.13.0 l.515).
_FIXED_410 = replace(_FIXED_LEGACY, xl_type_key=True, cmdline_strict=True,
                     nr_frames_ratio=False, libxl_maptrack_frames=1024)

BRANCHES: tuple[Branch, ...] = (
    # <=4.1: the same non-preemptible loops (paging.c @ RELEASE-4.1.0), never fixed, out of
    # security support in 2014. xl.cfg dialect not covered by the conformance suite: "4.2".
    replace(_NO_HAP_OPTION, branch=(4, 0), xsa97=_UNSUPPORTED, dialects=((0, "4.2"),),
            supported=False),
    replace(_NO_HAP_OPTION, branch=(4, 1), xsa97=_UNSUPPORTED, dialects=((0, "4.2"),),
            supported=False),
    # 4.2: fix 6fbd99d7cc, revert 09a293a57f, re-fix c844974caf (2014-10-31) after 4.2.5, the
    # last 4.2 release. libxlu @ RELEASE-4.2.0; 4.2.1 has backport d619b628a2.
    replace(_NO_HAP_OPTION, branch=(4, 2), dialects=((0, "4.2"), (1, "4.2.1")), xsa97=Fix(
        None, "no 4.2 release has it (re-fix c844974caf came after 4.2.5; distributions "
              "shipped the xsa97-hap patch)", stable=_xsa97_line(date(2014, 10, 31)))),
    # 4.3: fix b497ecca35, revert ffd7f8db50, re-fix 425e9039b6 (2014-10-17): first in 4.3.4.
    replace(_LEGACY, branch=(4, 3), xsa97=Fix(
        4, "first fixed 4.3.4 (re-fix 425e9039b6); 4.3.3 and older lack it",
        stable=_xsa97_line(date(2014, 10, 17)))),
    # 4.4: fix 89f167e04e, revert 1f161c7d40 (both in 4.4.1), re-fix c8ed54edda (2014-10-17):
    # first in 4.4.2. Teardown backport e19042ffbd first in 4.4.4. PVHv1 (pvh=1) 4.4-4.8.
    # `watchdog=force`: backport ae5c3023da (2014-10-01), custom_param("watchdog") in
    # xen/arch/x86/nmi.c @ RELEASE-4.4.2, not @ RELEASE-4.4.1.
    replace(_LEGACY, branch=(4, 4), pvh_v1=True, xsa97=Fix(
        2, "first fixed 4.4.2 (re-fix c8ed54edda); 4.4.1 ships the August fix 89f167e04e "
           "and its revert 1f161c7d40, so it is unfixed",
        stable=_xsa97_line(date(2014, 10, 17))),
        teardown=Fix(4, "restartable teardown backported to 4.4.4 (e19042ffbd)"),
        watchdog_custom=Fix(2, "`watchdog=force` backported to 4.4.2 (ae5c3023da)",
                            stable=((date(2014, 10, 1), True),)),
        pod_sweep=_xsa150(4, "3638ff0e71")),
    # 4.5: master re-fix 070493dfd2 (2014-10-06), first release 4.5.0. Lazy type change:
    # 90ac32559b (EPT), 9e52ad4f4d (NPT), 2014-05-02, first in 4.5.0, never backported.
    # Restartable teardown: backport 9e6379ed39 (2015-09-10), hap_teardown(d, preempted) in
    # xen/arch/x86/mm/hap/hap.c @ RELEASE-4.5.2, hap_teardown(d) @ RELEASE-4.5.1.
    # `watchdog=force`: 3ea2ba980a (2014-08-28), first in 4.5.0.
    replace(_LEGACY, branch=(4, 5), pvh_v1=True,
            xsa97=Fix(0, "every 4.5 release has it (070493dfd2)",
                      dev=_xsa97_line(date(2014, 10, 6))),
            hap_retype=Fix(0, "lazy recalculation (90ac32559b, 9e52ad4f4d) from 4.5.0",
                           dev=((date(2014, 5, 2), True),)),
            teardown=Fix(2, "restartable teardown backported to 4.5.2 (9e6379ed39)",
                         stable=((date(2015, 9, 10), True),)),
            watchdog_custom=Fix(0, "`watchdog=force` from 4.5.0 (3ea2ba980a)",
                                dev=((date(2014, 8, 28), True),)),
            pod_sweep=_xsa150(2, "0b12f70dfc"), maptrack_option=True, nr_frames_ratio=True),
    # 4.6: master 0174da5b79 (2015-08-05) makes teardown restartable; libxlu nested lists
    # (3ba52a60ff).
    replace(_LEGACY, branch=(4, 6), xsa97=_ALWAYS, hap_retype=_ALWAYS, dialects=((0, "4.6"),),
            pvh_v1=True, watchdog_custom=_ALWAYS,
            teardown=Fix(0, "teardown restartable from 4.6.0 (0174da5b79)",
                         dev=((date(2015, 8, 5), True),)),
            pod_sweep=_xsa150(1, "4a32fbd95a"), maptrack_entry_bytes=16,
            maptrack_default_frames=1024, maptrack_option=True),
    # 4.7: libxlu rejects unknown escapes (cf1416a6e8); deferred EPT sync (09fc40ed30). 4.9:
    # PVHv1 gone.
    replace(_FIXED_LEGACY, branch=(4, 7), pvh_v1=True, ept_flush_deferred=Fix(
        0, "EPT sync deferred to the p2m unlock from 4.7.0 (09fc40ed30)",
        dev=((date(2016, 4, 12), True),)),
        pod_sweep=Fix(0, "every 4.7 release has it (101ce53266)",
                      dev=((date(2015, 10, 29), True),))),
    replace(_FIXED_LEGACY, branch=(4, 8), pvh_v1=True),
    replace(_FIXED_LEGACY, branch=(4, 9)),
    # 4.10: xl.cfg `type=` with prefix matching; `builder` deprecated (70ca3439f3).
    # 4.10: strict command-line parsing (63e8a1e5ff, 94dfb8bf8d).
    replace(_FIXED_410, branch=(4, 10)),
    replace(_FIXED_410, branch=(4, 11)),
    # 4.12: xl makes Arm guests PVH by default.
    replace(_FIXED_410, branch=(4, 12), arm_default_type="pvh",
            evtchn_reset=_xsa344(4, "cfd61e688f")),
    # 4.13: hap default = host cap_hap and hap=1 without HAP fails (948a4f6af3, d0c0ba7d3d);
    # virt_caps reports hap/shadow (948a4f6af3); libxl, not xl, computes the pool
    # (libxl_create.c @ RELEASE-4.13.0 l.1038, same formula); libxlu `+=` (a30910bfd7).
    Branch((4, 13), xsa410=_xsa410_backport(5, "eed4ef4177"), pool_formula="xl",
           evtchn_reset=_xsa344(2, "b015fbe509"), maptrack=_xsa380(4, "9d954c8c1a")),
    Branch((4, 14), xsa410=_xsa410_backport(6, "804f83bfba"), pool_formula="xl",
           evtchn_reset=_xsa344(1, "03019c20b5"), maptrack=_xsa380(3, "29aeeda345")),
    Branch((4, 15), xsa410=_xsa410_backport(4, "b03074bb47"), pool_formula="xl",
           maptrack=_xsa380(1, "9bfbde40bc")),
    Branch((4, 16), xsa410=_xsa410_backport(3, "a603386b42"), pool_formula="xl",
           maptrack=Fix(0, "every 4.16 release has it (b1ee10be56)",
                        dev=((date(2021, 8, 25), True),))),
    # 4.17: pool by guest type and paging mode (2c99281085, XSA-409 series, first in 4.17.0).
    # XSA-410 master commits (1df52a2702 ... 8a2111250b) are dated 2022-10-11 like that
    # series, so 4.17.0 has them too.
    Branch((4, 17), xsa410=Fix(0, "every 4.17 release has it (XSA-410, 2022-10-11)",
                                dev=((date(2022, 10, 11), True),))),
)


# --------------------------------------------------------------------------------------------
# Looking a version up


def row_for(branch: tuple[int, int]) -> tuple[Branch, Branch | None, str | None]:
    """The table row for a branch, the row before it, and a note when extrapolated."""
    rows = BRANCHES
    if branch < rows[0].branch:
        return rows[0], None, f"Xen {branch[0]}.{branch[1]} predates the table; treated as 4.0"
    if branch > rows[-1].branch:
        note = f"Xen {branch[0]}.{branch[1]} is newer than the table; treated like 4.17"
        return rows[-1], rows[-1], note
    for i, row in enumerate(rows):
        if row.branch == branch:
            return row, rows[i - 1] if i else None, None
    raise VersionError(f"Xen {branch[0]}.{branch[1]} was never released")  # e.g. 4.19 gap


def changeset_day(when: date | datetime | None) -> date | None:
    """A changeset timestamp as a date (UTC for aware datetimes)."""
    if isinstance(when, datetime):
        return when.astimezone(UTC).date() if when.tzinfo else when.date()
    return when


def _on_timeline(line: Timeline, when: date | None, what: str, v: XenVersion) -> Classification:
    if when is None:
        return Unknown(f"{v} is a development build; its changeset date would decide {what}, "
                       "but none was given (xen_changeset 'unavailable')")
    state: bool | None = False
    for d, s in line:
        if abs((when - d).days) <= 1:
            return Unknown(f"{v} is dated {when}, within a day of a {what} commit ({d})")
        if when > d:
            state = s
    if state is None:
        return Unknown(f"{v} is dated {when}, in a window where the branch had {what} only in "
                       "a form later reverted, or on an unrecorded day")
    return Known(state, f"development build {v} dated {when}: {what} "
                        f"{'present' if state else 'absent'} (changeset author date)")


def classify(fix: Fix, prev: Fix | None, v: XenVersion, when: date | None,
              what: str) -> Classification:
    """Is ``fix`` in version ``v``? Releases from ``first``; dev builds from timelines."""
    first = fix.first
    tag = v.dev_tag
    b = f"{v.major}.{v.minor}"
    if tag is None:
        if v.micro is None:
            if first is None or first == 0:
                return Known(first == 0, f"{what}: {fix.note}")
            return Unknown(f"{v} names no point release; {what} from {b}.{first} ({fix.note})")
        return Known(first is not None and v.micro >= first, f"{what} in {v}: {fix.note}")
    if tag == "pre" and v.micro:
        if first is not None and v.micro - 1 >= first:
            return Known(True, f"{v} is after {b}.{v.micro - 1}, which has {what}")
        if fix.stable:
            return _on_timeline(fix.stable, when, what, v)
        if first is None or v.micro < first:
            return Known(False, f"{v} is before {b}.{v.micro}, which lacks {what} ({fix.note})")
        return Unknown(f"{what} entered {b} between {b}.{v.micro - 1} and {b}.{v.micro}; "
                       f"the commit date is not recorded, so {v} cannot be classified")
    # x.y-unstable, x.y-rcN, x.y.0-pre: the development branch before x.y.0
    if fix.dev:
        return _on_timeline(fix.dev, when, what, v)
    if first != 0:
        return Known(False, f"{v} predates {b}.0, which lacks {what} ({fix.note})")
    if prev is not None and prev.first == 0:
        return Known(True, f"{v} is after the previous branch's .0 release, which has {what}")
    return Unknown(f"{what} entered development before {b}.0 on an unrecorded date")
