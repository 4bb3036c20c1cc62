"""Xen versions and the per-release behaviour table (Profile).

INTERFACE STUB — being completed (issue 4). Other modules may rely on the names below.
Behaviour per Xen release lives here, in one table, never in scattered ``if version < ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, order=True)
class XenVersion:
    """A parsed Xen version string such as ``4.4.1``, ``4.5-unstable``, ``4.17.3-pre``."""

    major: int
    minor: int
    micro: int | None = None  # None for "4.5-unstable" style strings
    extra: str = ""  # xen_extra without the micro part: "", "-pre", "-rc2", "-unstable", ...

    # parse(text) -> XenVersion; is_development -> bool; str() round-trips


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
