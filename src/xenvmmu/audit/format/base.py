"""What every ``xenvmmu audit`` output format shares.

A format is a thin class over one :class:`~xenvmmu.audit.findings.AuditReport` (pip-audit's
``_format/`` design): it has a ``name`` and a ``render(report) -> str`` and nothing else.
All formats are built from the same report, so every format carries the same facts; the helpers
that several formats need (counts, a guest's display name, the decisive location, number
formatting, the atomic file write) live here and nowhere else.

The registry :data:`FORMATS` maps a ``--format`` value to its class, in the order the CLI
should list them; :func:`get_formatter` builds one. Every format is filled in by importing
:mod:`xenvmmu.audit.format`, which importing this module always does first.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar, TypeVar

from xenvmmu import __version__
from xenvmmu.audit.findings import AuditReport, Finding, Mitigation, SourceRef, Verdict
from xenvmmu.xlcfg import file_kind

TOOL_NAME = "xenvmmu"
ADVISORY = "XSA-97"
ADVISORY_URL = "https://xenbits.xen.org/xsa/advisory-97.html"
CVE_HAP = "CVE-2014-5146"
CVE_SHADOW = "CVE-2014-5149"
VERDICTS: tuple[Verdict, ...] = ("affected", "not_affected", "unknown")
DEFAULT_FORMAT = "table"


class Formatter(ABC):
    """One output format of ``xenvmmu audit``.

    Every format takes the same keyword options, so the CLI can build any of them the same way;
    a format ignores the options it has no use for.

    :param color: ANSI colours (only the table uses them; off unless asked for).
    :param timestamp: the issue time to write (only OpenVEX has one); ``None`` means now.
        A naive datetime is taken as UTC.
    """

    #: the ``--format`` value
    name: ClassVar[str]
    #: one line for ``--help``
    description: ClassVar[str]

    def __init__(self, *, color: bool = False, timestamp: datetime | None = None) -> None:
        self.color = color
        self.timestamp = timestamp

    @abstractmethod
    def render(self, report: AuditReport) -> str:
        """The whole output for ``report``, ending with a newline."""


FORMATS: dict[str, type[Formatter]] = {}

_F = TypeVar("_F", bound=Formatter)


def register(cls: type[_F]) -> type[_F]:
    """Class decorator: add a format to :data:`FORMATS` under its ``name``."""
    if cls.name in FORMATS:
        raise ValueError(f"output format {cls.name!r} registered twice")
    FORMATS[cls.name] = cls
    return cls


def get_formatter(
    name: str, *, color: bool = False, timestamp: datetime | None = None
) -> Formatter:
    """Build the format called ``name``; :class:`ValueError` lists the known names."""
    try:
        cls = FORMATS[name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise ValueError(f"unknown output format {name!r} (choose from: {known})") from None
    return cls(color=color, timestamp=timestamp)


# --- facts about a report or a finding --------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """How many guests got each verdict, and how many inputs failed."""

    guests: int
    affected: int
    not_affected: int
    unknown: int
    errors: int

    def by_verdict(self) -> dict[Verdict, int]:
        """Counts keyed by verdict, in :data:`VERDICTS` order."""
        return {
            "affected": self.affected,
            "not_affected": self.not_affected,
            "unknown": self.unknown,
        }


def summarize(report: AuditReport) -> Summary:
    """Count the verdicts and input errors of ``report``."""
    verdicts = [f.verdict for f in report.findings]
    return Summary(
        guests=len(verdicts),
        affected=verdicts.count("affected"),
        not_affected=verdicts.count("not_affected"),
        unknown=verdicts.count("unknown"),
        errors=len(report.errors),
    )


def summary_line(report: AuditReport) -> str:
    """``4 guests: 2 affected, 1 not affected, 1 unknown; budget 30 ms``."""
    s = summarize(report)
    guests = "guest" if s.guests == 1 else "guests"
    return (
        f"{s.guests} {guests}: {s.affected} affected, {s.not_affected} not affected, "
        f"{s.unknown} unknown; budget {format_number(report.budget_ms)} ms"
    )


def tool_version(report: AuditReport) -> str:
    """The version that made the report (the running package's when the report has none)."""
    return report.tool_version or __version__


def display_name(finding: Finding) -> str:
    """Short name for people: the guest's name, else its file's basename."""
    if finding.name:
        return finding.name
    return os.path.basename(finding.source.path) or finding.source.path


def guest_id(finding: Finding) -> str:
    """Identifier for machines: the guest's name, else the path of its file as given."""
    return finding.name if finding.name else finding.source.path


def decisive_ref(finding: Finding) -> SourceRef:
    """The setting that decides the verdict, else where the guest was read from."""
    return finding.decisive if finding.decisive is not None else finding.source


def decisive_line(finding: Finding) -> int | None:
    """The line *in the guest's own file* that decides: the decisive line when the decisive
    setting is in that file, else the guest's own line (``None`` when there is none)."""
    d = finding.decisive
    if d is not None and d.path == finding.source.path and d.line is not None:
        return d.line
    return finding.source.line


def first_mitigation(finding: Finding) -> Mitigation | None:
    """The cheapest fix (findings list mitigations cheapest first), if any."""
    return finding.mitigations[0] if finding.mitigations else None


def finding_cve(finding: Finding) -> str | None:
    """The CVE the guest's paging mode falls under (``Finding.cve``, else from ``paging``)."""
    if finding.cve:
        return finding.cve
    return {"hap": CVE_HAP, "shadow": CVE_SHADOW}.get(finding.paging or "")


def needs_attention(finding: Finding) -> bool:
    """Affected or could not be assessed: the guests a person has to look at."""
    return finding.verdict != "not_affected"


def host_facts(report: AuditReport) -> dict[str, object]:
    """``report.host`` as JSON-ready data: keys sorted, tuples as lists, other objects as
    strings, non-finite floats as ``None``."""
    facts = _jsonable(report.host)
    assert isinstance(facts, dict)
    return facts


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, Mapping):
        items = sorted(((str(k), v) for k, v in value.items()), key=lambda kv: kv[0])
        return {k: _jsonable(v) for k, v in items}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def dump_json(document: object) -> str:
    """The text conventions of every JSON-based format: keys in insertion order, 2-space
    indent, ASCII only (other characters as ``\\u`` escapes, so the bytes are valid UTF-8 even
    for names that are not), no NaN, a final newline.

    The text is exactly ``json.dumps(document, indent=2, ensure_ascii=True)``; it is built by
    a small encoder because the standard library falls back to its slow pure-Python encoder
    whenever ``indent`` is set, and a fleet report has hundreds of thousands of values.
    """
    chunks: list[str] = []
    _encode(document, "\n", chunks)
    chunks.append("\n")
    return "".join(chunks)


_STR = json.encoder.encode_basestring_ascii


def _scalar(value: object, out: list[str]) -> bool:
    """Append a JSON scalar; False when ``value`` is a container."""
    if isinstance(value, str):
        out.append(_STR(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
        out.append(float.__repr__(value))
    elif isinstance(value, dict | list | tuple):
        return False
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return True


def _items(value: dict[object, object] | list[object] | tuple[object, ...]
           ) -> Iterator[tuple[str | None, object]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON keys must be strings, not {type(key).__name__}")
            yield key, item
    else:
        for item in value:
            yield None, item


def _encode(value: object, newline: str, out: list[str]) -> None:
    """``value`` as indented JSON, without recursion (a value may nest arbitrarily deep)."""
    if _scalar(value, out):
        return
    # Frames: (the container's (key, item) pairs, the newline of its own level, its closer).
    stack: list[tuple[Iterator[tuple[str | None, object]], str, str]] = []

    def open_container(container: object, level: str) -> None:
        assert isinstance(container, dict | list | tuple)
        if not container:
            out.append("{}" if isinstance(container, dict) else "[]")
            return
        out.append("{" if isinstance(container, dict) else "[")
        stack.append((_items(container), level, "}" if isinstance(container, dict) else "]"))

    open_container(value, newline)
    first = True
    while stack:
        items, level, close = stack[-1]
        inner = level + "  "
        for key, item in items:
            out.append(inner if first else "," + inner)
            first = False
            if key is not None:
                out.append(_STR(key))
                out.append(": ")
            if not _scalar(item, out):
                depth = len(stack)
                open_container(item, inner)
                if len(stack) > depth:
                    first = True
                    break
        else:
            stack.pop()
            out.append(level + close)
            first = False


def finite(value: float | None) -> float | None:
    """``value`` unless it is NaN or infinite (JSON has no such numbers)."""
    return value if value is not None and math.isfinite(value) else None


# --- text helpers -----------------------------------------------------------------------------


def format_number(value: float) -> str:
    """A number without noise: ``30``, ``12.5``, ``0.25``."""
    return f"{value:g}" if math.isfinite(value) else str(value)


def format_ms_range(low: float | None, high: float | None) -> str:
    """``low-high`` in ms (``1078-4059``), or one figure when the two round alike or the low
    end is unknown."""
    hi = format_ms(high)
    if low is None or high is None:
        return hi
    lo = format_ms(low)
    return hi if lo == hi else f"{lo}-{hi}"


def format_ms(ms: float | None) -> str:
    """Milliseconds to three significant digits or whole numbers: ``1234``, ``45.6``,
    ``0.123``; ``?`` when unknown."""
    if ms is None:
        return "?"
    if not math.isfinite(ms):
        return "inf" if ms > 0 else "?"
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def format_mib(kib: int | None) -> str:
    """KiB as MiB for people: ``64``, ``64.5``; ``?`` when unknown."""
    if kib is None:
        return "?"
    return format_number(round(kib / 1024, 1))


def format_int(value: int | None) -> str:
    """An integer, or ``?``."""
    return "?" if value is None else str(value)


def yes_no(value: bool | None) -> str:
    """``yes`` / ``no`` / ``?``."""
    return "?" if value is None else ("yes" if value else "no")


def verdict_label(verdict: Verdict) -> str:
    """``not affected`` rather than ``not_affected``."""
    return verdict.replace("_", " ")


def one_line(text: str) -> str:
    """``text`` on one line: when it holds control characters (newline, tab, escape...) or
    lone surrogates, those are written as Python-style escapes and backslashes are doubled,
    so a hostile guest name can neither break a table row nor forge a line, and stays
    unambiguous. Printable text is returned unchanged."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


# --- output -----------------------------------------------------------------------------------


class OutputRefused(OSError):
    """``--output`` names something that is not a regular file (a device, FIFO, socket or
    directory): it is never replaced. ``strerror`` says what it is."""


def output_target(path: str | os.PathLike[str]) -> Path:
    """Where a report for ``path`` is written: ``path`` itself, or, for a symbolic link, the
    file it points to (followed to the end, so the link stays and its target is replaced).

    Raises :class:`OutputRefused` when that is an existing device, FIFO, socket or directory
    (or anything but a regular file), and ``OSError`` when it cannot be examined.
    """
    name = os.fspath(path)
    if not name:
        raise OutputRefused(errno.EINVAL, "empty file name", name)
    target = Path(os.path.realpath(name))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target  # a new file
    except ValueError as e:  # a NUL byte in the name
        raise OutputRefused(errno.EINVAL, f"invalid file name ({e})", name) from None
    if not stat.S_ISREG(st.st_mode):
        raise OutputRefused(
            errno.EINVAL,
            f"not a regular file ({file_kind(st.st_mode)}); --output writes regular files only",
            name,
        )
    return target


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that readers see the old file or the new one,
    never a partial one: write a temporary file in the same directory, fsync it, then
    :func:`os.replace` it over the target.

    Only regular files are written (:func:`output_target`): a symbolic link is followed to
    its target, which is replaced (the link stays); an existing device, FIFO, socket or
    directory is refused with :class:`OutputRefused` and left alone. The temporary name is
    ``.<name>.<random>.tmp``, hidden and not ending in ``.prom``, so node_exporter's textfile
    collector never reads it. The new file's mode is ``0666 & ~umask``, as for any new file
    (never copied from the file it replaces, and not ``tempfile``'s ``0600``, which the
    collector, running as another user, could not read). On any error (a full disk...) the
    temporary file is removed and the target is left as it was.
    """
    target = output_target(path)
    directory = target.parent
    data = text.encode("utf-8", "backslashreplace")
    while True:
        tmp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        break
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        output_target(target)  # still not a device/FIFO/directory at the last moment
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); silently skipped where directories can't be opened."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover - some filesystems refuse
        pass
    finally:
        os.close(dfd)
