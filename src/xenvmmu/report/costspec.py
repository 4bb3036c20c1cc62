"""A cost profile as plain data, so that a sweep can send it to another process or machine.

:class:`~xenvmmu.costs.CostProfile` keeps read-only mappings, which do not pickle; a worker
of a process pool or of a Dask cluster gets a :class:`CostSpec` instead (tuples of plain
values) and rebuilds the profile with :meth:`CostSpec.profile`. The sweep's points name a
profile by its :attr:`~CostSpec.label`; :attr:`~CostSpec.digest` (sha256 of the prices) lets a
resumed sweep check that a label still means the same prices.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..costs import BOUND_WORDS, CostProfile, load_profile, resolve_costs

#: The label of the built-in profile, and what ``--costs default`` means.
DEFAULT_LABEL = "default"


@dataclass(frozen=True)
class CostSpec:
    """``label``: how points and plots name the profile; ``name`` and ``origin``: the
    profile's own; ``ns_per_unit`` and ``sources``: (unit, value) pairs in unit order."""

    label: str
    name: str
    origin: str
    ns_per_unit: tuple[tuple[str, float], ...]
    sources: tuple[tuple[str, str], ...]

    @property
    def digest(self) -> str:
        """sha256 of the prices (not of the sources' wording)."""
        text = json.dumps(self.ns_per_unit, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def profile(self) -> CostProfile:
        """The :class:`~xenvmmu.costs.CostProfile` again (cached per process)."""
        return _rebuild(self)

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "name": self.name, "origin": self.origin,
            "sha256": self.digest, "ns_per_unit": dict(self.ns_per_unit),
            "sources": dict(self.sources),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostSpec:
        ns = data["ns_per_unit"]
        src = data.get("sources", {})
        if not isinstance(ns, dict) or not isinstance(src, dict):
            raise ValueError("ns_per_unit and sources must be tables")
        return cls(str(data["label"]), str(data["name"]), str(data["origin"]),
                   tuple((str(k), float(v)) for k, v in sorted(ns.items())),
                   tuple((str(k), str(v)) for k, v in sorted(src.items())))


def from_profile(label: str, profile: CostProfile) -> CostSpec:
    return CostSpec(
        label=label, name=profile.name, origin=profile.origin,
        ns_per_unit=tuple(sorted((k, float(v)) for k, v in profile.ns_per_unit.items())),
        sources=tuple(sorted((k, str(v)) for k, v in profile.sources.items())),
    )


def load_specs(choices: list[str] | None) -> tuple[CostSpec, ...]:
    """The sweep's cost profiles from ``--costs`` values (files; ``default`` or ``high`` for
    the built-in profile, ``low`` for it at its low bound; none given: the built-in one). A
    file's label is its name without the extension; ``--costs low --costs high`` gives the
    figures a cost band. Raises ``CostProfileError`` for a bad file and ``ValueError`` when
    two files would get the same label."""
    specs: list[CostSpec] = []
    for choice in choices or [DEFAULT_LABEL]:
        if choice in BOUND_WORDS:  # default (= high), high, low: the built-in profile
            spec = from_profile(choice, resolve_costs(choice))
        else:
            spec = from_profile(Path(choice).stem or choice, load_profile(choice))
        if any(s.label == spec.label for s in specs):
            if any(s == spec for s in specs):
                continue
            raise ValueError(f"two cost profiles would both be called {spec.label!r}: "
                             "rename one of the files")
        specs.append(spec)
    return tuple(specs)


@functools.lru_cache(maxsize=16)
def _rebuild(spec: CostSpec) -> CostProfile:
    return CostProfile(spec.name, MappingProxyType(dict(spec.ns_per_unit)),
                       MappingProxyType(dict(spec.sources)), origin=spec.origin)
