"""Xen versions and the per-release behaviour table (Profile).

``XenVersion`` parses what ``xl info`` and operators write (``4.4.1``, ``4.5-unstable``,
``4.17.3-pre``, ``4.2.5-33.el6``) and orders it. ``profile_for`` answers, for one version,
which XSA-97-related behaviours that release has. The answers come from ONE table,
``_BRANCHES`` (one row per x.y branch, a source per fact); nothing else in xenvmmu branches
on version numbers.

A ``-pre``/``-rcN``/``-unstable`` build sits between releases, so its version alone often
cannot say whether a fix is in. Its ``xen_changeset`` date decides where it can; where it
cannot, the answer is ``Unknown`` with a reason: "could not assess" is a value, never an
exception. Facts the research could not pin down are the named fields of ``Assumptions``.

Commit ids below are xen-project/xen commits (first 10 hex digits), from
``shared/research/xen-paging.md`` and ``xen-config.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import ClassVar, Generic, Literal, TypeAlias, TypeVar

T = TypeVar("T")

GuestType: TypeAlias = Literal["hvm", "pv", "pvh"]
Paging: TypeAlias = Literal["hap", "shadow"]
Arch: TypeAlias = Literal["x86", "arm"]
PoolFormula: TypeAlias = Literal["xend", "xl", "libxl-4.17"]

KNOWN_PATCHES = frozenset({"xsa97-hap", "xsa410"})


class VersionError(ValueError):
    """A string that is not a Xen version."""


# --------------------------------------------------------------------------------------------
# Versions

_VERSION_RE = re.compile(r"(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?(.*)", re.DOTALL)
# xen_extra after the micro number: a separator, then printable ASCII without spaces.
_EXTRA_RE = re.compile(r"[-+~._][!-~]{0,63}")
_DEV_RE = re.compile(r"-(unstable|pre|rc(\d{0,4}))(?=$|[-+~._])")
_STAGE_RANK = {"unstable": 0, "rc": 1, "pre": 2, None: 3}


@dataclass(frozen=True)
class XenVersion:
    """A parsed Xen version string such as ``4.4.1``, ``4.5-unstable``, ``4.17.3-pre``.

    ``extra`` is ``xen_extra`` without the micro part: ``""``, ``"-pre"``, ``"-rc2"``,
    ``"-unstable"``, or a packager's suffix (``"-33.el6"``). ``str()`` gives the version
    back and ``parse(str(v)) == v``. Ordering is by release:
    ``4.5-unstable < 4.5-rc1 < 4.5.0 < 4.5.1-pre < 4.5.1``.
    """

    major: int
    minor: int
    micro: int | None = None  # None for "4.5-unstable" style strings
    extra: str = ""

    def __post_init__(self) -> None:
        for name in ("major", "minor", "micro"):
            n = getattr(self, name)
            if n is None and name == "micro":
                continue
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 9999:
                raise VersionError(f"Xen version {name} must be an integer 0..9999, not {n!r}")
        if not isinstance(self.extra, str) or (self.extra and not _EXTRA_RE.fullmatch(self.extra)):
            raise VersionError(f"bad Xen version suffix {self.extra!r}")
        if self.micro is None and self.extra and not self.extra.startswith("-"):
            raise VersionError(f"Xen version without a micro number takes only a '-' suffix "
                               f"(4.5-unstable), not {self.extra!r}")

    @classmethod
    def parse(cls, text: str) -> XenVersion:
        """Parse ``major.minor[.micro][extra]``; raises ``VersionError`` with the text."""
        s = text.strip() if isinstance(text, str) else ""
        m = _VERSION_RE.fullmatch(s) if len(s) <= 80 else None
        if m is None or (m.group(4) and not _EXTRA_RE.fullmatch(m.group(4))) or (
                m.group(3) is None and m.group(4) and not m.group(4).startswith("-")):
            shown = repr(text)[:60]
            raise VersionError(
                f"not a Xen version: {shown} (expected e.g. 4.4.1, 4.5-unstable, 4.17.3-pre)"
            )
        micro = int(m.group(3)) if m.group(3) is not None else None
        return cls(int(m.group(1)), int(m.group(2)), micro, m.group(4))

    @classmethod
    def from_xl_info(cls, major: str, minor: str, extra: str) -> XenVersion:
        """Compose ``xen_major``/``xen_minor``/``xen_extra`` (``4``, ``4``, ``.1``)."""
        if not (major.strip().isdigit() and minor.strip().isdigit()):
            raise VersionError(f"xen_major/xen_minor must be numbers, not {major!r}/{minor!r}")
        return cls.parse(f"{major.strip()}.{minor.strip()}{extra.strip()}")

    def __str__(self) -> str:
        micro = "" if self.micro is None else f".{self.micro}"
        return f"{self.major}.{self.minor}{micro}{self.extra}"

    @property
    def branch(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def dev_tag(self) -> str | None:
        """``"unstable"``, ``"pre"``, ``"rcN"`` for development builds, else None."""
        m = _DEV_RE.match(self.extra)
        return m.group(1) if m else None

    @property
    def is_development(self) -> bool:
        """True for ``-pre``, ``-rcN`` and ``-unstable`` builds (between releases)."""
        return self.dev_tag is not None

    @property
    def vendor(self) -> str:
        """What a packager appended (``XEN_VENDORVERSION``), e.g. ``-33.el6``."""
        m = _DEV_RE.match(self.extra)
        return self.extra[m.end() :] if m else self.extra

    def _key(self) -> tuple[int, int, int, int, int, bool, str, str]:
        m = _DEV_RE.match(self.extra)
        stage = None if m is None else ("rc" if m.group(1).startswith("rc") else m.group(1))
        rc = int(m.group(2)) if m is not None and m.group(2) else 0
        micro = 0 if self.micro is None else self.micro
        return (self.major, self.minor, micro, _STAGE_RANK[stage], rc, self.micro is not None,
                self.vendor, self.extra)

    def __lt__(self, other: XenVersion) -> bool:
        return self._key() < other._key()

    def __le__(self, other: XenVersion) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: XenVersion) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: XenVersion) -> bool:
        return self._key() >= other._key()


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
class _Fix:
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


_NEVER = _Fix(None, "no release of this branch has it")
_ALWAYS = _Fix(0, "every release of this branch has it")


@dataclass(frozen=True)
class _Branch:
    """What one x.y branch does. Defaults are the newest behaviour; old rows override."""

    branch: tuple[int, int]
    xsa97: _Fix = _ALWAYS
    dialects: tuple[tuple[int, str], ...] = ((0, "4.13"),)  # (first micro, xl.cfg dialect)
    hap_retype: _Fix = _ALWAYS  # fixed = lazy (O(512)) global p2m type change
    teardown: _Fix = _ALWAYS  # paging pool freeing at teardown restartable
    xsa410: _Fix = _ALWAYS  # p2m pages freed preemptibly
    pool_formula: PoolFormula = "libxl-4.17"
    pool_by: Literal["xl", "libxl"] = "libxl"
    hap_default_follows_host: bool = True
    virt_caps_reports_hap: bool = True
    xl_type_key: bool = True
    pvh_v1: bool = False
    arm_default_type: Literal["pv", "pvh"] = "pvh"
    supported: bool = True


_SWEEP = _Fix(None, "HAP global type change walks the whole p2m (before Xen 4.5)")
_NO_TEARDOWN = _Fix(None, "pool teardown not restartable (fix 0174da5b79 is from 2015)")
_NO_XSA410 = _Fix(None, "no release of this branch is known to have the XSA-410 fix")
_UNSUPPORTED = _Fix(None, "Xen <=4.1 never got the fix (out of security support in 2014)")

# Before 4.10 (sources at the rows that change something): xl computes the pool, `builder`
# only, hap default true with silent fallback, virt_caps silent about HAP.
_LEGACY = _Branch(
    (0, 0), _NEVER, ((0, "4.3"),), _SWEEP, _NO_TEARDOWN, _NO_XSA410, pool_formula="xl",
    pool_by="xl", hap_default_follows_host=False, virt_caps_reports_hap=False,
    xl_type_key=False, arm_default_type="pv",
)

_BRANCHES: tuple[_Branch, ...] = (
    # <=4.1: the same non-preemptible loops (paging.c @ RELEASE-4.1.0), never fixed, out of
    # security support in 2014. xl.cfg dialect not covered by the conformance suite: "4.2".
    replace(_LEGACY, branch=(4, 0), xsa97=_UNSUPPORTED, dialects=((0, "4.2"),), supported=False),
    replace(_LEGACY, branch=(4, 1), xsa97=_UNSUPPORTED, dialects=((0, "4.2"),), supported=False),
    # 4.2: fix 6fbd99d7cc, revert 09a293a57f, re-fix c844974caf (2014-10-31) after 4.2.5, the
    # last 4.2 release. libxlu @ RELEASE-4.2.0; 4.2.1 has backport d619b628a2.
    replace(_LEGACY, branch=(4, 2), dialects=((0, "4.2"), (1, "4.2.1")), xsa97=_Fix(
        None, "no 4.2 release has it (re-fix c844974caf came after 4.2.5; distributions "
              "shipped the xsa97-hap patch)", stable=_xsa97_line(date(2014, 10, 31)))),
    # 4.3: fix b497ecca35, revert ffd7f8db50, re-fix 425e9039b6 (2014-10-17): first in 4.3.4.
    replace(_LEGACY, branch=(4, 3), xsa97=_Fix(
        4, "first fixed 4.3.4 (re-fix 425e9039b6); 4.3.3 and older lack it",
        stable=_xsa97_line(date(2014, 10, 17)))),
    # 4.4: fix 89f167e04e, revert 1f161c7d40 (both in 4.4.1), re-fix c8ed54edda (2014-10-17):
    # first in 4.4.2. Teardown backport e19042ffbd first in 4.4.4. PVHv1 (pvh=1) 4.4-4.8.
    replace(_LEGACY, branch=(4, 4), pvh_v1=True, xsa97=_Fix(
        2, "first fixed 4.4.2 (re-fix c8ed54edda); 4.4.1 ships the August fix 89f167e04e "
           "and its revert 1f161c7d40, so it is unfixed",
        stable=_xsa97_line(date(2014, 10, 17))),
        teardown=_Fix(4, "restartable teardown backported to 4.4.4 (e19042ffbd)")),
    # 4.5: master re-fix 070493dfd2 (2014-10-06), first release 4.5.0. Lazy type change:
    # 90ac32559b (EPT), 9e52ad4f4d (NPT), 2014-05-02, first in 4.5.0, never backported.
    # Teardown "backported to 4.5.x" without the point release: see Assumptions.
    replace(_LEGACY, branch=(4, 5), pvh_v1=True,
            xsa97=_Fix(0, "every 4.5 release has it (070493dfd2)",
                       dev=_xsa97_line(date(2014, 10, 6))),
            hap_retype=_Fix(0, "lazy recalculation (90ac32559b, 9e52ad4f4d) from 4.5.0",
                            dev=((date(2014, 5, 2), True),)),
            teardown=_Fix(None, "the 4.5.x release with the teardown backport is not recorded")),
    # 4.6: master 0174da5b79 (2015-08, day not recorded) makes teardown restartable; libxlu
    # nested lists (3ba52a60ff).
    replace(_LEGACY, branch=(4, 6), xsa97=_ALWAYS, hap_retype=_ALWAYS, dialects=((0, "4.6"),),
            pvh_v1=True, teardown=_Fix(0, "teardown restartable from 4.6.0 (0174da5b79)", dev=(
                (date(2015, 8, 1), None), (date(2015, 9, 1), True)))),
    # 4.7: libxlu rejects unknown escapes (cf1416a6e8). 4.9: PVHv1 gone.
    replace(_LEGACY, branch=(4, 7), xsa97=_ALWAYS, hap_retype=_ALWAYS, teardown=_ALWAYS,
            dialects=((0, "4.7"),), pvh_v1=True),
    replace(_LEGACY, branch=(4, 8), xsa97=_ALWAYS, hap_retype=_ALWAYS, teardown=_ALWAYS,
            dialects=((0, "4.7"),), pvh_v1=True),
    replace(_LEGACY, branch=(4, 9), xsa97=_ALWAYS, hap_retype=_ALWAYS, teardown=_ALWAYS,
            dialects=((0, "4.7"),)),
    # 4.10: xl.cfg `type=` with prefix matching; `builder` deprecated (70ca3439f3).
    replace(_LEGACY, branch=(4, 10), xsa97=_ALWAYS, hap_retype=_ALWAYS, teardown=_ALWAYS,
            dialects=((0, "4.7"),), xl_type_key=True),
    replace(_LEGACY, branch=(4, 11), xsa97=_ALWAYS, hap_retype=_ALWAYS, teardown=_ALWAYS,
            dialects=((0, "4.7"),), xl_type_key=True),
    # 4.12: xl makes Arm guests PVH by default.
    replace(_LEGACY, branch=(4, 12), xsa97=_ALWAYS, hap_retype=_ALWAYS, teardown=_ALWAYS,
            dialects=((0, "4.7"),), xl_type_key=True, arm_default_type="pvh"),
    # 4.13: hap default = host cap_hap and hap=1 without HAP fails (948a4f6af3, d0c0ba7d3d);
    # virt_caps reports hap/shadow (948a4f6af3); libxl, not xl, computes the pool
    # (libxl_create.c @ RELEASE-4.13.0 l.1038, same formula); libxlu `+=` (a30910bfd7).
    _Branch((4, 13), xsa410=_NO_XSA410, pool_formula="xl"),
    _Branch((4, 14), xsa410=_NO_XSA410, pool_formula="xl"),
    _Branch((4, 15), xsa410=_NO_XSA410, pool_formula="xl"),
    _Branch((4, 16), xsa410=_NO_XSA410, pool_formula="xl"),
    # 4.17: pool by guest type and paging mode (2c99281085, XSA-409 series, first in 4.17.0).
    # XSA-410 master commits (1df52a2702 ... 8a2111250b) are dated 2022-10-11 like that
    # series, so 4.17.0 has them too.
    _Branch((4, 17), xsa410=_Fix(0, "every 4.17 release has it (XSA-410, 2022-10-11)",
                                 dev=((date(2022, 10, 11), True),))),
)


@dataclass(frozen=True)
class Assumptions:
    """Facts the research could not pin down, as named parameters with conservative defaults.

    * ``teardown_4_5_first_micro``: the restartable pool teardown (0174da5b79, 2015) was
      "backported to 4.4.4/4.5.x"; the 4.5 point release is not recorded. Default None:
      treat every 4.5.x as not having it.
    * ``xsa410_backports``: XSA-410 (2022-10) is recorded only as master commits, first in
      4.17.0; the point releases of 4.13-4.16 that got it are not recorded. Default: none.
      Give ``((4, 16), 3)`` to say "4.16.3 and later have it".
    * ``cmdline_strict_from``: Xen 4.4 counts an unrecognised boolean value (``hap=of``) as
      true and ignores trailing junk in ``watchdog_timeout``; master reports an error and
      keeps the previous value, and accepts ``watchdog=force``. The release that switched
      was not traced (UNVERIFIED); only contradictory command lines are affected.
    """

    teardown_4_5_first_micro: int | None = None
    xsa410_backports: tuple[tuple[tuple[int, int], int], ...] = ()
    cmdline_strict_from: tuple[int, int] = (4, 10)


DEFAULT_ASSUMPTIONS = Assumptions()


@dataclass(frozen=True)
class CmdlineRules:
    """How one release's hypervisor parses boolean command-line options.

    ``bool_values``: ``"lenient"`` (4.4 ``cmdline_parse``: an unrecognised value counts as
    true) or ``"strict"`` (master ``parse_params``: an error, the option keeps its previous
    value). ``watchdog_force``: ``watchdog=force`` understood. ``token_max``: longer options
    are cut to this many characters (4.4 copies each option into ``char opt[100]``).
    """

    bool_values: Literal["lenient", "strict"] = "strict"
    watchdog_force: bool = True
    token_max: int | None = None


@dataclass(frozen=True)
class Profile:
    """What one Xen release does, with sources in the field comments of the table."""

    version: XenVersion
    dialect: str  # xl.cfg grammar dialect (xenvmmu.xlcfg.DIALECTS)
    logdirty_preemptible: bool  # xsa97-hap: log-dirty walk/free preemptible
    hap_retype: Literal["sweep", "lazy"]  # HAP global p2m type change: full sweep (<=4.4) or lazy
    pool_teardown_preemptible: bool  # 2015 fix: paging pool freeing restartable
    p2m_free_preemptible: bool  # XSA-410
    pool_formula: Literal["xend", "xl", "libxl-4.17"]  # default paging pool size formula
    hap_default_follows_host: bool  # >= 4.13: hap default = host capability; creation fails
    virt_caps_reports_hap: bool  # >= 4.13: xl info virt_caps says whether HAP exists
    # --- added by issue 4 (all defaulted so the stub's constructor keeps working) ---
    patched: frozenset[str] = frozenset()  # distribution patches the operator declared
    # (name, Known|Unknown) for "logdirty_preemptible", "hap_retype_lazy",
    # "pool_teardown_preemptible", "p2m_free_preemptible"; the bool fields above hold the
    # conservative reading (not preemptible / sweep) where the answer is Unknown.
    assessments: tuple[tuple[str, Known[bool] | Unknown], ...] = ()
    cmdline: CmdlineRules = CmdlineRules()
    pool_by: Literal["xl", "libxl"] = "libxl"  # who computes the default pool (xl <=4.12)
    xl_type_key: bool = True  # xl.cfg `type=` (>= 4.10); before: only `builder`
    pvh_v1: bool = False  # xl.cfg `pvh=1` (PVHv1, 4.4-4.8)
    arm_default_type: Literal["pv", "pvh"] = "pvh"  # xl's type without type=/builder= on Arm
    supported: bool = True  # False for <= 4.1 (no XSA-97 fix ever; out of support)
    xsa97_first_fixed: XenVersion | None = None  # first fixed release of this branch
    upgrade_to: XenVersion | None = None  # smallest fixed release newer than this one
    notes: tuple[str, ...] = ()

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


def _row(branch: tuple[int, int]) -> tuple[_Branch, _Branch | None, str | None]:
    """The table row for a branch, the row before it, and a note when extrapolated."""
    rows = _BRANCHES
    if branch < rows[0].branch:
        return rows[0], None, f"Xen {branch[0]}.{branch[1]} predates the table; treated as 4.0"
    if branch > rows[-1].branch:
        note = f"Xen {branch[0]}.{branch[1]} is newer than the table; treated like 4.17"
        return rows[-1], rows[-1], note
    for i, row in enumerate(rows):
        if row.branch == branch:
            return row, rows[i - 1] if i else None, None
    raise VersionError(f"Xen {branch[0]}.{branch[1]} was never released")  # e.g. 4.19 gap


def _day(when: date | datetime | None) -> date | None:
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


def _classify(fix: _Fix, prev: _Fix | None, v: XenVersion, when: date | None,
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


def profile_for(
    version: XenVersion | str,
    *,
    patched: frozenset[str] = frozenset(),
    changeset_date: date | datetime | None = None,
    assumptions: Assumptions = DEFAULT_ASSUMPTIONS,
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
    row, prev, note = _row(v.branch)
    notes = [note] if note else []
    if not row.supported:
        notes.append(f"Xen {v.major}.{v.minor} is out of security support and never got "
                     "the XSA-97 fix")
    when = _day(changeset_date)

    teardown = row.teardown
    if row.branch == (4, 5) and assumptions.teardown_4_5_first_micro is not None:
        teardown = _Fix(assumptions.teardown_4_5_first_micro, "4.5.x backport (Assumptions)")
    xsa410 = row.xsa410
    for branch, micro in assumptions.xsa410_backports:
        if branch == row.branch and row.xsa410.first is None:
            xsa410 = _Fix(micro, f"XSA-410 backport from {branch[0]}.{branch[1]}.{micro} "
                                 "(Assumptions)")

    def pick(fix: _Fix, old: _Fix | None, what: str, patch: str | None) -> Classification:
        c = _classify(fix, old, v, when, what)
        if patch is not None and patch in patched and c.value is not True:
            c = Known(True, f"{what}: the build carries the {patch} patch (declared by operator)")
        return c

    xsa97 = pick(row.xsa97, prev.xsa97 if prev else None,
                 "the XSA-97 fix (preemptible log-dirty)", "xsa97-hap")
    lazy = pick(row.hap_retype, prev.hap_retype if prev else None,
                "lazy HAP type change", None)
    tear = pick(teardown, prev.teardown if prev else None,
                "restartable pool teardown", None)
    p2m = pick(xsa410, prev.xsa410 if prev else None,
               "the XSA-410 fix (preemptible p2m freeing)", "xsa410")

    micro = v.micro or 0
    dialect = [d for m, d in row.dialects if m <= micro][-1]
    strict = v.branch >= assumptions.cmdline_strict_from
    rules = CmdlineRules("strict", True, None) if strict else CmdlineRules("lenient", False, 99)
    return Profile(
        version=v,
        dialect=dialect,
        logdirty_preemptible=xsa97.value is True,
        hap_retype="lazy" if lazy.value is True else "sweep",
        pool_teardown_preemptible=tear.value is True,
        p2m_free_preemptible=p2m.value is True,
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
        arm_default_type=row.arm_default_type,
        supported=row.supported,
        xsa97_first_fixed=first_fixed_release(v.branch),
        upgrade_to=None if xsa97.value is True else upgrade_target(v),
        notes=tuple(notes),
    )


def first_fixed_release(branch: tuple[int, int]) -> XenVersion | None:
    """The first release of a branch with the XSA-97 fix (4.3 -> 4.3.4), or None (4.2)."""
    row, _, _ = _row(branch)
    first = row.xsa97.first
    return None if first is None else XenVersion(branch[0], branch[1], first)


def upgrade_target(version: XenVersion) -> XenVersion | None:
    """The smallest XSA-97-fixed release newer than ``version`` (4.2.5 -> 4.3.4)."""
    fixed = [XenVersion(r.branch[0], r.branch[1], r.xsa97.first)
             for r in _BRANCHES if r.xsa97.first is not None]
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

    * ``xend`` (xm, <=4.2): ``1024·v + 8·M`` for HVM, 0 for PV; a configured
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
