"""Per-guest suppressions (``xenvmmu audit --suppress FILE``): "silence this finding for
this VM", with a reason.

A suppression file is TOML, one ``[[suppress]]`` table per entry::

    [[suppress]]
    guest = "web-*"                   # fnmatch glob on the guest's name, and/or
    source = "/etc/xen/legacy*.cfg"   # fnmatch glob on the guest's file, as given, and/or
    uuid = "6b1e3f0a-2c4d-4e8f-9a10-3b5c7d9e1f20"   # a domain's uuid (case-insensitive)
    advisory = "XSA-380"              # an advisory of the registry, or "*" for all
    reason = "grant limit enforced by the host's xl.conf"   # required
    expires = 2027-01-31              # optional: ignored (with a warning) after that day

An entry selects the guests that every selector it gives matches (at least one of
``guest``, ``source``, ``uuid``; a glob's ``*`` also matches ``/``; a guest without a name
never matches ``guest``; ``uuid`` is known for the domains of an ``xl list -l``) and marks
their affected or unknown verdicts of the advisory (a not-affected one has nothing to
silence) with its reason and where it was written (``FILE:line``): see
:attr:`Suppression.note`. The audit applies them per guest once it is assessed
(:func:`xenvmmu.audit.api.iter_audit`); a suppressed finding stays in every output, marked,
but no longer makes the exit status 1 or 3.

A file is read like every input (a regular file of at most ``MAX_INPUT_BYTES``, UTF-8). An
unknown key, a missing or empty reason, an advisory the registry does not have, an entry
without a selector or a value of the wrong type is a :class:`SuppressionError` naming the
file and the entry's line.
"""

from __future__ import annotations

import os
import re
import tomllib
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from fnmatch import fnmatchcase

from ..advisories import RegistryError, advisory
from ..toolstack.inputs import InputFileError, read_input
from ..toolstack.xllist import normalise_uuid
from .findings import Finding, clean_text

#: The ``advisory`` of an entry that silences every advisory of the guests it selects.
ALL = "*"
SELECTORS = ("guest", "source", "uuid")
KEYS = frozenset({*SELECTORS, "advisory", "reason", "expires"})

_HEADER = re.compile(r"""^[ \t]*\[\[[ \t]*(?:suppress|"suppress"|'suppress')[ \t]*\]\]""",
                     re.MULTILINE)
_TOML_WHERE = re.compile(r" \(at line (\d+), column (\d+)\)$")
_TOML_TYPES = ((bool, "a boolean"), (str, "a string"), (int, "an integer"), (float, "a float"),
               (datetime, "a date-time"), (date, "a date"), (time, "a time"),
               (list, "an array"), (dict, "a table"))


class SuppressionError(ValueError):
    """A suppression file (or entry) that cannot be used; the message names the file and,
    when known, the line of the entry."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: {message}" if line is not None
                         else f"{path}: {message}")


@dataclass(frozen=True)
class Suppression:
    """One entry: the guests it selects, the advisory it silences for them, and why.

    Built by :func:`load_suppressions` from a file, or directly (``ValueError`` for an entry
    without a selector, an empty reason or selector, an unknown advisory or a malformed
    uuid); ``advisory`` is kept as the registry spells it, ``uuid`` in lower case."""

    reason: str
    advisory: str = ALL
    guest: str | None = None
    source: str | None = None
    uuid: str | None = None
    expires: date | None = None
    #: where the entry was written (``FILE:line``), for the mark
    origin: str = ""

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("reason is required: say why the finding is silenced")
        if all(getattr(self, key) is None for key in SELECTORS):
            raise ValueError("no guest selected: give guest, source or uuid")
        for key in SELECTORS:
            if getattr(self, key) == "":
                raise ValueError(f"{key} is empty")
        if self.advisory != ALL:
            try:
                object.__setattr__(self, "advisory", advisory(self.advisory).id)
            except RegistryError as e:
                raise ValueError(f"{e} (or \"*\" for all)") from None
        if self.uuid is not None:
            uuid = normalise_uuid(self.uuid)
            if uuid is None:
                raise ValueError(f"uuid {self.uuid!r} is not a domain uuid")
            object.__setattr__(self, "uuid", uuid)

    @property
    def note(self) -> str:
        """The mark of a finding it silences: the reason and where it was written
        (``AdvisoryFinding.suppressed``, ``Finding.suppressed``)."""
        reason = clean_text(self.reason.strip())
        return f"{reason} ({clean_text(self.origin)})" if self.origin else reason

    def selects(self, finding: Finding) -> bool:
        """Whether the guest of ``finding`` is one this entry is about."""
        if self.guest is not None and (finding.name is None
                                       or not fnmatchcase(finding.name, self.guest)):
            return False
        if self.source is not None and not fnmatchcase(finding.source.path, self.source):
            return False
        return self.uuid is None or (finding.uuid or "").lower() == self.uuid

    def covers(self, advisory_id: str) -> bool:
        """Whether it silences ``advisory_id`` (an id as the registry spells it)."""
        return self.advisory == ALL or self.advisory == advisory_id


def load_suppressions(
    paths: Iterable[str | os.PathLike[str]],
    *,
    today: date | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[Suppression, ...]:
    """The entries of every file of ``paths``, in order, without those that expired before
    ``today`` (default: ``date.today()``): each of those is named (``FILE:line``) to
    ``warn`` (default: a :class:`UserWarning`). Raises :class:`SuppressionError`."""
    day = date.today() if today is None else today
    kept: list[Suppression] = []
    for path in paths:
        for rule in read_suppressions(path):
            if rule.expires is not None and rule.expires < day:
                text = (f"{rule.origin}: suppression expired on {rule.expires.isoformat()}; "
                        "ignored")
                if warn is None:
                    warnings.warn(text, stacklevel=2)
                else:
                    warn(text)
                continue
            kept.append(rule)
    return tuple(kept)


def read_suppressions(path: str | os.PathLike[str]) -> tuple[Suppression, ...]:
    """Every entry of one file, expired ones included. Raises :class:`SuppressionError`."""
    name = os.fspath(path)
    try:
        text = read_input(name).decode("utf-8").removeprefix("\ufeff")
    except InputFileError as e:
        raise SuppressionError(name, None, e.message) from None
    except UnicodeDecodeError as e:
        raise SuppressionError(name, None, f"not UTF-8 text ({e.reason} at byte {e.start})"
                               ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        where = _TOML_WHERE.search(str(e))
        if where is None:
            raise SuppressionError(name, None, f"not TOML: {e}") from None
        message = str(e)[:where.start()]
        raise SuppressionError(name, int(where[1]), f"not TOML: {message} (column {where[2]})"
                               ) from None
    except RecursionError:
        raise SuppressionError(name, None, "nested too deeply: not a suppression file") from None
    unknown = sorted(set(document) - {"suppress"})
    if unknown:
        raise SuppressionError(name, _line_of(text, unknown[0]),
                               f"unknown key {unknown[0]!r}: a suppression file holds "
                               "[[suppress]] entries only")
    entries = document.get("suppress", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SuppressionError(name, _line_of(text, "suppress"),
                               "suppress must be an array of tables: write each entry under "
                               "[[suppress]]")
    lines: list[int | None] = [text.count("\n", 0, m.start()) + 1
                               for m in _HEADER.finditer(text)]
    if len(lines) != len(entries):  # written as an inline array, or a header in a string
        lines = [None] * len(entries)
    return tuple(_entry(entry, name, line, n)
                 for n, (entry, line) in enumerate(zip(entries, lines, strict=True), 1))


def _entry(entry: dict[str, object], path: str, line: int | None, n: int) -> Suppression:
    """One ``[[suppress]]`` table (the ``n``-th, at ``line``) as a :class:`Suppression`."""

    def fail(message: str) -> SuppressionError:
        return SuppressionError(path, line, message if line is not None
                                else f"entry {n}: {message}")

    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise fail(f"unknown key{'s' if len(unknown) > 1 else ''} "
                   f"{', '.join(unknown)} in [[suppress]] (known: {', '.join(sorted(KEYS))})")
    for key in ("advisory", "reason"):
        if key not in entry:
            raise fail(f"{key} is required" + (
                ": an advisory id (XSA-380) or \"*\" for all" if key == "advisory"
                else ": say why the finding is silenced"))
    text: dict[str, str] = {}
    for key in (*SELECTORS, "advisory", "reason"):
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise fail(f"{key} must be a string, not {_toml_type(value)}")
        if value is not None:
            text[key] = value
    expires = entry.get("expires")
    if expires is not None and (isinstance(expires, datetime) or not isinstance(expires, date)):
        raise fail(f"expires must be a date (2027-01-31), not {_toml_type(expires)}")
    try:
        return Suppression(text["reason"], text["advisory"], text.get("guest"),
                           text.get("source"), text.get("uuid"), expires,
                           path if line is None else f"{path}:{line}")
    except ValueError as e:
        raise fail(str(e)) from None


def _toml_type(value: object) -> str:
    return next((name for kind, name in _TOML_TYPES if isinstance(value, kind)),
                type(value).__name__)


def _line_of(text: str, key: str) -> int | None:
    """The first line that sets or opens ``key`` at the top level, if one is found."""
    found = re.search(rf"""^[ \t]*(?:\[+[ \t]*)?["']?{re.escape(key)}["']?[ \t]*[=\].]""",
                      text, re.MULTILINE)
    return None if found is None else text.count("\n", 0, found.start()) + 1
