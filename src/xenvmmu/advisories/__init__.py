"""The advisory registry: one data file per Xen advisory of XSA-97's class, every fact sourced.

Each ``data/xsa-N.toml`` names the advisory (id, CVEs, title, date), what it concerns (x86,
guest types, paging modes, and the operations of :mod:`xenvmmu.audit.operations` it is about),
who starts and who sizes those operations, the knobs that set their size, the first fixed
release per branch and the fix commits, support-status changes (``SUPPORT.md``), the
mitigations and the sources. The rules read these files; adding an advisory whose operations
the model already has is adding a file (see the README). Light: no model import.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Literal, cast

from ..versions import XenVersion

__all__ = ["Advisory", "Impact", "RegistryError", "advisory", "advisory_url", "registry"]

#: What an advisory threatens: "availability" (a stall, a livelock or an exhaustion: denial of
#: service) or "integrity" (memory corruption such as a use-after-free).
Impact = Literal["availability", "integrity"]


def advisory_url(advisory_id: str) -> str:
    """An advisory's page on xenbits (``XSA-97`` -> ``.../advisory-97.html``)."""
    return f"https://xenbits.xen.org/xsa/advisory-{advisory_id.split('-', 1)[-1]}.html"


class RegistryError(ValueError):
    """A registry file that cannot be used (names the file)."""


def branch_of(version: XenVersion) -> str:
    """The stable branch ``x.y`` a release belongs to: the registry's key."""
    return f"{version.major}.{version.minor}"


@dataclass(frozen=True)
class Advisory:
    """One advisory, as its data file says."""

    id: str
    cves: tuple[str, ...]
    title: str
    public: str
    arch: tuple[str, ...]
    guest_types: tuple[str, ...]
    paging: tuple[str, ...]
    operations: tuple[str, ...]
    started_by: tuple[str, ...]
    sized_by: tuple[str, ...]
    knobs: tuple[str, ...]
    first_fixed: tuple[tuple[str, str], ...]  # (branch "x.y", release or "none")
    fixed_from: str  # every branch from this release on is fixed; "none": no release is
    behaviour: str | None  # the PagingBehaviour field that carries the fix, if the table has it
    fix_commits: tuple[str, ...]
    support_change: tuple[tuple[str, str], ...]  # (branch, release whose SUPPORT.md changed)
    mitigations: tuple[str, ...]
    sources: tuple[str, ...]
    impact: Impact = "availability"
    #: how the audit assesses it: "paging_ops" (from the guest's paging operations, the
    #: XSA-97 chain) or one of ``xenvmmu.audit.family.ASSESSMENTS``
    assess: str = "paging_ops"
    #: facts a guest must have for the advisory to concern it ("dm_deprivileged")
    requires: tuple[str, ...] = ()
    #: for ``assess = "present"``: what the vulnerable code does to this guest's host
    present_why: str = ""
    #: the operation has no bound once triggered (no figure can be given)
    unbounded: bool = False
    #: the guest's settings that decide it, in order (its location in SARIF): "maxmem"...
    decided_by: tuple[str, ...] = ()

    def fixed_in(self, version: XenVersion) -> bool | None:
        """Whether ``version`` (a release, not a development build) has the fix; None when
        the registry cannot tell (a development build of a branch the fix reached)."""
        if self.fixed_from == "none":
            return False
        first = dict(self.first_fixed).get(branch_of(version))
        if version >= XenVersion.parse(self.fixed_from) and first is None:
            return True
        if first is None or first == "none":
            return False
        if version.is_development:
            return None
        return version >= XenVersion.parse(first)

    def upgrade_target(self, version: XenVersion) -> str:
        """The release to upgrade ``version`` to: its branch's first fixed release, else the
        first release of the branches fixed from the start."""
        first = dict(self.first_fixed).get(branch_of(version))
        return first if first and first != "none" else self.fixed_from

    def support_change_in_branch(self, version: XenVersion) -> str | None:
        """The release of ``version``'s branch whose SUPPORT.md carries the change, if any."""
        return dict(self.support_change).get(branch_of(version))

    def support_changed_in(self, version: XenVersion) -> bool:
        """Whether ``version``'s SUPPORT.md carries the advisory's support-status change."""
        change = self.support_change_in_branch(version)
        if change is None:
            last = max((XenVersion.parse(r) for _, r in self.support_change), default=None)
            return last is not None and version > last
        return version >= XenVersion.parse(change)


def _strings(data: dict[str, object], key: str, origin: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryError(f"{origin}: {key} must be a list of strings")
    return tuple(value)


def _table(data: dict[str, object], key: str, origin: str) -> tuple[tuple[str, str], ...]:
    value = data.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise RegistryError(f"{origin}: {key} must be a table of strings")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def _load(name: str, text: str) -> Advisory:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RegistryError(f"{name}: {e}") from None
    for key in ("id", "title", "public", "fixed_from"):
        if not isinstance(data.get(key), str):
            raise RegistryError(f"{name}: {key} must be a string")
    if not data.get("sources"):
        raise RegistryError(f"{name}: every advisory needs its sources")
    impact = data.get("impact", "availability")
    if impact not in ("availability", "integrity"):
        raise RegistryError(f"{name}: impact must be \"availability\" or \"integrity\"")
    return Advisory(
        id=str(data["id"]), cves=_strings(data, "cves", name), title=str(data["title"]),
        public=str(data["public"]), arch=_strings(data, "arch", name),
        guest_types=_strings(data, "guest_types", name), paging=_strings(data, "paging", name),
        operations=_strings(data, "operations", name),
        started_by=_strings(data, "started_by", name), sized_by=_strings(data, "sized_by", name),
        knobs=_strings(data, "knobs", name), first_fixed=_table(data, "first_fixed", name),
        fixed_from=str(data["fixed_from"]),
        behaviour=str(data["behaviour"]) if "behaviour" in data else None,
        fix_commits=_strings(data, "fix_commits", name),
        support_change=_table(data, "support_change", name),
        mitigations=_strings(data, "mitigations", name), sources=_strings(data, "sources", name),
        impact=cast(Impact, impact), assess=str(data.get("assess", "paging_ops")),
        requires=_strings(data, "requires", name), present_why=str(data.get("present_why", "")),
        unbounded=data.get("unbounded") is True, decided_by=_strings(data, "decided_by", name),
    )


@functools.cache
def registry() -> tuple[Advisory, ...]:
    """Every advisory of the registry, XSA-97 first, then by number."""
    folder = resources.files(__package__).joinpath("data")
    found = [_load(f.name, f.read_text(encoding="utf-8"))
             for f in folder.iterdir() if f.name.endswith(".toml")]
    return tuple(sorted(found, key=lambda a: (a.id != "XSA-97", int(a.id.split("-")[1]))))


def advisory(name: str) -> Advisory:
    """One advisory by id (``XSA-410``, case-insensitive)."""
    for a in registry():
        if a.id.lower() == name.strip().lower():
            return a
    known = ", ".join(a.id for a in registry())
    raise RegistryError(f"unknown advisory {name!r}; the registry has {known}")
