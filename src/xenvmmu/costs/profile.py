"""Cost profiles: nanoseconds per unit of work, each with its source.

Work is counted by the model (``xenvmmu.model.work.Work``); a CostProfile turns it into
time. The numbers are not facts about any one machine: each carries a ``source`` saying
whether it is derived from a published measurement or assumed, and any of them can be
overridden with a TOML file (``--costs FILE``). Changing a cost never changes a bitmap.
"""

from __future__ import annotations

import operator
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from ..model.work import FIELDS, Work

SCHEMA = "xenvmmu.costs/1"
_counts = operator.attrgetter(*FIELDS)  # all unit counts of a Work, in FIELDS order


class CostProfileError(ValueError):
    """A cost file that cannot be used; the message names the file (and line if known)."""


@dataclass(frozen=True)
class CostProfile:
    """Nanoseconds per unit for every ``Work`` field, with a source per number."""

    name: str
    ns_per_unit: Mapping[str, float]
    sources: Mapping[str, str] = field(default_factory=dict)
    origin: str = "built-in default"
    _weights: tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        weights = tuple(float(self.ns_per_unit.get(unit, 0.0)) for unit in FIELDS)
        object.__setattr__(self, "_weights", weights)

    def ns(self, work: Work) -> float:
        """Time, in ns, that ``work`` takes under this profile (hot in the auditor)."""
        total: float = sum(map(operator.mul, _counts(work), self._weights))
        return total

    def ms(self, work: Work) -> float:
        return self.ns(work) / 1e6

    def overridden(self, data: Mapping[str, object], origin: str) -> CostProfile:
        """A copy with the units given in a parsed cost file replaced."""
        ns = dict(self.ns_per_unit)
        sources = dict(self.sources)
        units = _units_table(data, origin)
        for unit, entry in units.items():
            ns[unit], sources[unit] = _unit_entry(unit, entry, origin)
        name = data.get("name", f"{self.name} + {origin}")
        return CostProfile(
            str(name), MappingProxyType(ns), MappingProxyType(sources), origin=origin
        )


def default_profile() -> CostProfile:
    """The packaged default profile (``costs/default.toml``)."""
    text = resources.files(__package__).joinpath("default.toml").read_text(encoding="utf-8")
    base = CostProfile("empty", MappingProxyType(dict.fromkeys(FIELDS, 0.0)))
    data = _parse(text, "default.toml")
    profile = base.overridden(data, "built-in default")
    missing = [u for u in FIELDS if u not in _units_table(data, "default.toml")]
    if missing:
        raise CostProfileError(f"default.toml: no cost for {', '.join(missing)}")
    return profile


def load_profile(path: str | Path, base: CostProfile | None = None) -> CostProfile:
    """The default profile (or ``base``) with the units of a TOML cost file replaced."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CostProfileError(f"{path}: cannot read cost file: {e}") from None
    return (base or default_profile()).overridden(_parse(text, str(path)), str(path))


def _parse(text: str, origin: str) -> dict[str, object]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CostProfileError(f"{origin}: {e}") from None
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise CostProfileError(f"{origin}: schema is {schema!r}, expected {SCHEMA!r}")
    return data


def _units_table(data: Mapping[str, object], origin: str) -> Mapping[str, object]:
    units = data.get("units", {})
    if not isinstance(units, dict):
        raise CostProfileError(f"{origin}: [units] must be a table")
    unknown = sorted(set(units) - set(FIELDS))
    if unknown:
        raise CostProfileError(
            f"{origin}: unknown unit(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}"
        )
    return units


def _unit_entry(unit: str, entry: object, origin: str) -> tuple[float, str]:
    if isinstance(entry, int | float) and not isinstance(entry, bool):
        value, source = float(entry), f"set in {origin}"
    elif isinstance(entry, dict) and isinstance(entry.get("ns"), int | float):
        value = float(entry["ns"])
        source = str(entry.get("source", f"set in {origin}"))
    else:
        raise CostProfileError(f"{origin}: units.{unit} must be a number or {{ns = N, source = S}}")
    if not value >= 0 or value == float("inf"):
        raise CostProfileError(f"{origin}: units.{unit} must be a finite number >= 0")
    return value, source
