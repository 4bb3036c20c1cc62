"""Cost profiles: nanoseconds per unit of work as a range, each bound with its source.

Work is counted by the model (``xenvmmu.model.work.Work``); a CostProfile turns it into
time. The numbers are not facts about any one machine: every unit has a ``low`` and a
``high`` figure, each with a source saying whether it is derived from a published figure,
a shape measurement or assumed. ``ns_per_unit`` is the high bound (verdicts are decided on
it); :meth:`CostProfile.low` is the same profile at its low bound. Any unit can be overridden
with a TOML file (``--costs FILE``): ``unit = N`` or ``{ns = N, source = S}`` (both bounds N),
or ``{low = L, high = H, source_low = S, source_high = S}``. Changing a cost never changes a
bitmap.

A cost file is read like every input (a regular file of at most ``MAX_INPUT_BYTES``, never a
FIFO or device); it must be UTF-8 TOML nested at most ``MAX_TOML_DEPTH`` deep, each cost a
number of nanoseconds in ``0..MAX_NS_PER_UNIT`` and each source and the name a string.
"""

from __future__ import annotations

import operator
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from ..model.work import FIELDS, Work
from ..toolstack.inputs import InputFileError, read_input

SCHEMA = "xenvmmu.costs/1"
#: The dearest unit of work in the default profile costs at most 10 µs (its high bound); one
#: that takes a millisecond is not a CPU any more (and would make simulations endless).
MAX_NS_PER_UNIT = 1e6
#: A cost file is two tables deep ([units.NAME]); tomllib recurses per level.
MAX_TOML_DEPTH = 16
_counts = operator.attrgetter(*FIELDS)  # all unit counts of a Work, in FIELDS order


class CostProfileError(ValueError):
    """A cost file that cannot be used; the message names the file (and line if known)."""


@dataclass(frozen=True)
class CostProfile:
    """Nanoseconds per unit for every ``Work`` field, with a source per number."""

    name: str
    ns_per_unit: Mapping[str, float]  # the high bound
    sources: Mapping[str, str] = field(default_factory=dict)
    origin: str = "built-in default"
    #: the low bound per unit (None: the same as ``ns_per_unit``) and its sources
    low_ns_per_unit: Mapping[str, float] | None = None
    low_sources: Mapping[str, str] | None = None
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

    @property
    def low_ns(self) -> Mapping[str, float]:
        """ns per unit at the low bound."""
        return self.ns_per_unit if self.low_ns_per_unit is None else self.low_ns_per_unit

    def low(self) -> CostProfile:
        """This profile at its low bound (``--costs low``)."""
        return CostProfile(f"{self.name} (low bound)", self.low_ns,
                           self.low_sources or self.sources, self.origin)

    def bound(self, which: str) -> CostProfile:
        """``"high"`` (this profile) or ``"low"``."""
        if which == "high":
            return self
        if which == "low":
            return self.low()
        raise ValueError(f"a cost bound is 'low' or 'high', not {which!r}")

    def overridden(self, data: Mapping[str, object], origin: str) -> CostProfile:
        """A copy with the units given in a parsed cost file replaced."""
        high, sources = dict(self.ns_per_unit), dict(self.sources)
        low, low_sources = dict(self.low_ns), dict(self.low_sources or self.sources)
        units = _units_table(data, origin)
        for unit, entry in units.items():
            low[unit], high[unit], low_sources[unit], sources[unit] = _unit_entry(
                unit, entry, origin)
        name = data.get("name", f"{self.name} + {origin}")
        if not isinstance(name, str):
            raise CostProfileError(f"{origin}: name must be a string")
        return CostProfile(
            name, MappingProxyType(high), MappingProxyType(sources), origin=origin,
            low_ns_per_unit=MappingProxyType(low), low_sources=MappingProxyType(low_sources),
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


#: ``--costs`` words: the built-in profile at its high bound (what verdicts use) or low bound.
BOUND_WORDS = ("default", "high", "low")


def resolve_costs(choice: str | Path | None) -> CostProfile:
    """What a ``--costs`` value means: ``None``, ``default`` or ``high`` - the built-in
    profile (its high bound); ``low`` - the built-in profile at its low bound; anything
    else - a TOML cost file (see :func:`load_profile`)."""
    if choice is None or choice in ("default", "high"):
        return default_profile()
    if choice == "low":
        return default_profile().low()
    return load_profile(choice)


def load_profile(path: str | Path, base: CostProfile | None = None) -> CostProfile:
    """The default profile (or ``base``) with the units of a TOML cost file replaced."""
    path = Path(path)
    try:
        text = read_input(path).decode("utf-8")
    except InputFileError as e:
        raise CostProfileError(f"{path}: cannot read cost file: {e.message}") from None
    except UnicodeDecodeError as e:
        raise CostProfileError(f"{path}: cannot read cost file: not UTF-8 text ({e.reason} "
                               f"at byte {e.start})") from None
    return (base or default_profile()).overridden(_parse(text, str(path)), str(path))


def _parse(text: str, origin: str) -> dict[str, object]:
    if _nesting(text) > MAX_TOML_DEPTH:
        raise CostProfileError(f"{origin}: nested deeper than {MAX_TOML_DEPTH} levels: not a "
                               "cost profile")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CostProfileError(f"{origin}: {e}") from None
    except RecursionError:  # pragma: no cover - _nesting() refuses such files first
        raise CostProfileError(f"{origin}: nested too deeply: not a cost profile") from None
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise CostProfileError(f"{origin}: schema is {schema!r}, expected {SCHEMA!r}")
    return data


_BRACKETS = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    """An upper bound of how deep the TOML arrays and inline tables of ``text`` nest, without
    parsing it (brackets inside strings and comments count too: the bound is safe)."""
    depth = deepest = 0
    for c in _BRACKETS.findall(text):
        if c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth = max(depth - 1, 0)
    return deepest


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


def _number(value: object, unit: str, origin: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise CostProfileError(f"{origin}: units.{unit} must be a number, "
                               "{ns = N, source = S} or {low = L, high = H, ...}")
    if not 0 <= value <= MAX_NS_PER_UNIT:  # NaN fails too; an int of any size compares
        raise CostProfileError(f"{origin}: units.{unit} must be a finite number of ns, "
                               f"0 to {MAX_NS_PER_UNIT:g}")
    return float(value)


def _text(entry: Mapping[str, object], key: str, default: str, unit: str, origin: str) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str):
        raise CostProfileError(f"{origin}: units.{unit}.{key} must be a string")
    return value


def _unit_entry(unit: str, entry: object, origin: str) -> tuple[float, float, str, str]:
    """(low, high, low source, high source) of one unit entry."""
    default = f"set in {origin}"
    if not isinstance(entry, dict):
        v = _number(entry, unit, origin)
        return v, v, default, default
    if "ns" in entry:
        v = _number(entry["ns"], unit, origin)
        src = _text(entry, "source", default, unit, origin)
        return v, v, src, src
    if "low" not in entry or "high" not in entry:
        raise CostProfileError(f"{origin}: units.{unit} needs ns = N, or both low and high")
    lo, hi = _number(entry["low"], unit, origin), _number(entry["high"], unit, origin)
    if lo > hi:
        raise CostProfileError(f"{origin}: units.{unit}: low ({lo:g}) is above high ({hi:g})")
    src = _text(entry, "source", default, unit, origin)
    return (lo, hi, _text(entry, "source_low", src, unit, origin),
            _text(entry, "source_high", src, unit, origin))
