"""What every ``xenvmmu audit`` output format shares.

A format is a thin class over one audit (pip-audit's ``_format/`` design): it has a ``name``,
``write(audit, out)``, which writes the output to a text stream guest by guest as an
:class:`~xenvmmu.audit.findings.AuditStream` yields them, and ``render(report) -> str``, the
same output of a finished :class:`~xenvmmu.audit.findings.AuditReport` as one string (built on
``write``; for tests and small reports). No format keeps the findings: what it must see
before it can write something (the table's column widths, Prometheus's metric families, the
OpenVEX document's id) it keeps as a compact row per guest or in temporary files
(:func:`spool`), so 100,000 guests take the memory of a few. A format written before streaming
existed may implement ``render`` alone: its ``write`` then reads the whole stream first.
All formats are built from the same audit, so every format carries the same facts; the helpers
that several formats need (counts, a guest's display name, the decisive location, number
formatting, the atomic file write) live here and nowhere else.

Advisories. A finding's own fields are XSA-97's verdict; ``Finding.advisories`` has one entry
per registry advisory that concerns the guest. ``--advisory`` narrows a run
(``audit.advisories``), and every format goes through the same helpers so that nothing of an
advisory the run leaves out is written: :func:`reports`, :func:`guest_advisories` (the
reported entries), :func:`reported_related` (a related operation belongs to the advisory
whose operations include it, and is not repeated when the guest has that advisory's finding),
:func:`reported_ops`, :func:`advisory_counts`. :func:`headline` is what a format shows in its
guest-level columns: XSA-97's verdict when the run reports it, else the guest's worst reported
advisory (:func:`worst_advisory`: an affected or unknown one that is not suppressed first;
then affected, then unknown, then not affected; then severity; then the longest section, an
unbounded one first); :class:`Headlines` counts them.

Suppressions (``--suppress``). ``Finding.suppressed`` (XSA-97's guest verdict) and
``AdvisoryFinding.suppressed`` hold the operator's reason and where it was written
(``FILE:line``); every format writes the finding as it is, marked with it
(:func:`suppressed_ids`, :func:`suppressed_counts`, ``Headline.suppressed``).

The registry :data:`FORMATS` maps a ``--format`` value to its class, in the order the CLI
should list them; :func:`get_formatter` builds one. Every format is filled in by importing
:mod:`xenvmmu.audit.format`, which importing this module always does first.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import heapq
import io
import json
import math
import os
import secrets
import stat
import tempfile
from abc import ABC
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, ClassVar, TextIO, TypeVar

from xenvmmu import __version__
from xenvmmu.advisories import RegistryError, advisory, registry
from xenvmmu.advisories import advisory_url as advisory_url  # re-exported for the formats
from xenvmmu.audit.findings import (
    AdvisoryFinding,
    AuditReport,
    AuditStream,
    Finding,
    Impact,
    Mitigation,
    OpStall,
    Severity,
    SourceRef,
    Verdict,
)
from xenvmmu.audit.findings import format_ms as format_ms  # re-exported for the formats
from xenvmmu.audit.findings import format_ms_range as format_ms_range  # and the rules' text
from xenvmmu.severity import WATCHDOG_TIMEOUT_S, severity_for
from xenvmmu.xlcfg import file_kind

TOOL_NAME = "xenvmmu"
ADVISORY = "XSA-97"
ADVISORY_URL = advisory_url("XSA-97")
CVE_HAP = "CVE-2014-5146"
CVE_SHADOW = "CVE-2014-5149"
VERDICTS: tuple[Verdict, ...] = ("affected", "not_affected", "unknown")
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "none")
DEFAULT_FORMAT = "table"
#: where people read what xenvmmu checks (SARIF ``informationUri``): the advisory it audits
INFORMATION_URI = ADVISORY_URL


class Formatter(ABC):
    """One output format of ``xenvmmu audit``.

    Every format takes the same keyword options, so the CLI can build any of them the same way;
    a format ignores the options it has no use for.

    :param color: ANSI colours (only the table uses them; off unless asked for).
    :param timestamp: the issue time to write (only OpenVEX has one); ``None`` means now.
        A naive datetime is taken as UTC.
    :param verbose: the reasons for every verdict, not only for the guests that need
        attention (table and Markdown).
    :param summary_only: only the fleet summary (table).
    :param width: fit the output to this many terminal columns (table); ``None``: no limit.

    A subclass implements :meth:`write` (streaming), :meth:`render`, or both.
    """

    #: the ``--format`` value
    name: ClassVar[str]
    #: one line for ``--help``
    description: ClassVar[str]
    #: the options :meth:`write` uses (the CLI refuses the others for this format)
    options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, color: bool = False, timestamp: datetime | None = None,
                 verbose: bool = False, summary_only: bool = False,
                 width: int | None = None) -> None:
        self.color = color
        self.timestamp = timestamp
        self.verbose = verbose
        self.summary_only = summary_only
        self.width = width

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.write is Formatter.write and cls.render is Formatter.render:
            raise TypeError(f"{cls.__name__} must implement write() or render()")

    def write(self, audit: AuditStream, out: TextIO) -> None:
        """Write the output for ``audit`` to ``out`` as the findings come (each format keeps
        only compact per-guest rows, never the findings). This default, for a format that
        implements only :meth:`render`, reads the whole stream first."""
        out.write(self.render(audit.collect()))

    def render(self, report: AuditReport) -> str:
        """The whole output for ``report``, ending with a newline (:meth:`write` into a
        string)."""
        buffer = io.StringIO()
        self.write(AuditStream.of(report), buffer)
        return buffer.getvalue()


FORMATS: dict[str, type[Formatter]] = {}

_F = TypeVar("_F", bound=Formatter)


def register(cls: type[_F]) -> type[_F]:
    """Class decorator: add a format to :data:`FORMATS` under its ``name``."""
    if cls.name in FORMATS:
        raise ValueError(f"output format {cls.name!r} registered twice")
    FORMATS[cls.name] = cls
    return cls


def get_formatter(
    name: str, *, color: bool = False, timestamp: datetime | None = None,
    **options: bool | int | None,
) -> Formatter:
    """Build the format called ``name``; :class:`ValueError` lists the known names.
    ``options`` are the other keyword options of :class:`Formatter` (``verbose``,
    ``summary_only``, ``width``)."""
    try:
        cls = FORMATS[name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise ValueError(f"unknown output format {name!r} (choose from: {known})") from None
    given = {k: v for k, v in options.items() if v not in (None, False)}
    return cls(color=color, timestamp=timestamp, **given)  # type: ignore[arg-type]


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


def summarize(report: AuditReport | AuditStream,
              counts: Mapping[Verdict, int] | None = None) -> Summary:
    """Count the guest-level verdicts (:func:`headline`) and input errors of ``report`` (of
    a stream: once it has been read). ``counts``: the verdicts a format counted with
    :class:`Headlines` as the guests went by; a stream needs them when the run does not
    report XSA-97 (its own ``counts`` are XSA-97's), a finished report never does."""
    errors = len(report.errors)
    if counts is None and isinstance(report, AuditStream):
        counts = report.counts
    elif counts is None:
        assert isinstance(report, AuditReport)
        heads = Headlines(report)
        for f in report.findings:
            heads(f)
        counts = heads.counts
    return Summary(guests=sum(counts.values()), affected=counts["affected"],
                   not_affected=counts["not_affected"], unknown=counts["unknown"],
                   errors=errors)


def summary_line(report: AuditReport | AuditStream,
                 counts: Mapping[Verdict, int] | None = None) -> str:
    """``4 guests: 2 affected, 1 not affected, 1 unknown; budget 30 ms`` (``counts``: as for
    :func:`summarize`)."""
    s = summarize(report, counts)
    guests = "guest" if s.guests == 1 else "guests"
    return (
        f"{s.guests} {guests}: {s.affected} affected, {s.not_affected} not affected, "
        f"{s.unknown} unknown; budget {format_number(report.budget_ms)} ms"
    )


def tool_version(report: AuditReport | AuditStream) -> str:
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


def decisive_line(finding: Finding, decisive: SourceRef | None = None) -> int | None:
    """The line *in the guest's own file* that decides: the decisive line (``decisive``, by
    default the finding's) when that setting is in that file, else the guest's own line
    (``None`` when there is none)."""
    d = finding.decisive if decisive is None else decisive
    if d is not None and d.path == finding.source.path and d.line is not None:
        return d.line
    return finding.source.line


def guest_facts(f: Finding, xsa97: bool = True) -> dict[str, str | int | float | bool | None]:
    """The guest's facts as the machine formats name them (JSON and CSV), in their order;
    XSA-97's (``xsa97_fixed``, ``cve``) are unknown unless the run reports ``xsa97``."""
    return {
        "name": f.name,
        "type": f.guest_type,
        "paging": f.paging,
        "memory_mib": f.memory_mib,
        "maxmem_mib": f.maxmem_mib,
        "vcpus": f.vcpus,
        "pool_kib": f.pool_kib,
        "xen_version": f.xen_version,
        "xsa97_fixed": f.xsa97_fixed if xsa97 else None,
        "cve": f.cve if xsa97 else None,
    }


def first_mitigation(finding: Finding) -> Mitigation | None:
    """The cheapest fix (findings list mitigations cheapest first), if any."""
    return finding.mitigations[0] if finding.mitigations else None


def finding_cve(finding: Finding) -> str | None:
    """The CVE the guest's paging mode falls under (``Finding.cve``, else from ``paging``)."""
    if finding.cve:
        return finding.cve
    return {"hap": CVE_HAP, "shadow": CVE_SHADOW}.get(finding.paging or "")


def related_findings(finding: Finding, budget_ms: float) -> tuple[OpStall, ...]:
    """The related operations (outside the verdict: domain destruction, pool resizing) that
    this release does not preempt and whose worst case reaches the budget, longest first:
    what a report lists under the guest besides its verdict (e.g. a 235 ms XSA-410 p2m
    teardown of a HAP guest on a release that has the XSA-97 fix)."""
    found = [o for o in finding.ops
             if o.related and not o.preemptible and o.worst_case_ms >= budget_ms]
    if len(found) > 1:
        found.sort(key=lambda o: -o.worst_case_ms)
    return tuple(found)


def related_severity(op: OpStall, report: AuditReport | AuditStream) -> Severity:
    """The severity of a related finding, on the one scale of ``xenvmmu.severity`` (the
    host's watchdog timeout, else Xen's default)."""
    timeout = report.host.get("watchdog_timeout_s")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        timeout = WATCHDOG_TIMEOUT_S
    return severity_for(op.worst_case_ms, report.budget_ms, timeout)


def related_text(op: OpStall, severity: str | None = None) -> str:
    """One line about a related finding: what, how long, who starts it, the reference."""
    who = " or ".join(p.replace("_", " ") for p in op.started_by) or "?"
    text = (f"{op.op}{f' ({severity})' if severity else ''} can hold a CPU for "
            f"{format_ms_range(op.worst_case_ms_low or None, op.worst_case_ms)} ms without a "
            f"preemption point (outside the verdict); started by the {who}")
    return f"{text} [{op.reference}]" if op.reference else text


# --- the advisories a run reports (``--advisory``) -----------------------------------------


def reports(audit: AuditReport | AuditStream, advisory_id: str) -> bool:
    """Whether the run reports ``advisory_id`` (``--advisory`` narrows every format)."""
    return not audit.advisories or advisory_id in audit.advisories


def reported_ids(audit: AuditReport | AuditStream) -> tuple[str, ...]:
    """The advisories the run reports: those it was narrowed to, else the whole registry."""
    return audit.advisories or tuple(a.id for a in registry())


def advisory_facts(advisory_id: str) -> tuple[str, tuple[str, ...], Impact]:
    """An advisory's title, CVEs and impact from the registry (``""``, ``()`` and
    availability for an id it does not have)."""
    try:
        a = advisory(advisory_id)
    except RegistryError:
        return "", (), "availability"
    return a.title, a.cves, a.impact


def guest_advisories(f: Finding, audit: AuditReport | AuditStream, *,
                     xsa97: bool = False) -> tuple[AdvisoryFinding, ...]:
    """The guest's advisory findings that the run reports, one per advisory (the first),
    in the registry's order; XSA-97's entry only with ``xsa97`` (the formats that write
    XSA-97 from the guest's own fields leave it out)."""
    out: list[AdvisoryFinding] = []
    for a in f.advisories:
        if (a.id != ADVISORY or xsa97) and reports(audit, a.id) \
                and all(a.id != b.id for b in out):
            out.append(a)
    return tuple(out)


def needs_look(a: AdvisoryFinding) -> bool:
    """An advisory finding a person has to look at: affected, or could not be assessed."""
    return a.verdict != "not_affected"


@functools.cache
def _owners() -> dict[str, tuple[str, ...]]:
    """Each operation's advisories in the registry (an operation may be several's)."""
    owners: dict[str, tuple[str, ...]] = {}
    for a in registry():
        for op in a.operations:
            owners[op] = (*owners.get(op, ()), a.id)
    return owners


def op_advisories(op: str) -> tuple[str, ...]:
    """The registry advisories whose operations include ``op`` (none: an operation of
    XSA-97's class that no advisory of the registry covers, such as a pool resize)."""
    return _owners().get(op, ())


def op_reported(op: str, audit: AuditReport | AuditStream) -> bool:
    """Whether the run reports an operation: one of its advisories is reported, or, for an
    operation no advisory covers, XSA-97 (whose audit lists it)."""
    owners = op_advisories(op)
    return any(reports(audit, a) for a in owners) if owners else reports(audit, ADVISORY)


def reported_related(f: Finding, audit: AuditReport | AuditStream
                     ) -> tuple[tuple[OpStall, str | None], ...]:
    """The guest's related findings (:func:`related_findings`) that the run reports and that
    no reported advisory finding of the guest already covers, each with the reported
    advisory it belongs to (``None``: no advisory of the registry covers it), longest
    first. A teardown that XSA-410 covers is XSA-410's result when the guest has an XSA-410
    finding, listed here only when it has none, and never when the run leaves XSA-410 out."""
    found: list[tuple[OpStall, str | None]] = []
    have = {a.id for a in f.advisories}
    for op in related_findings(f, audit.budget_ms):
        owners = [a for a in op_advisories(op.op) if reports(audit, a)]
        if any(a in have for a in owners) or not op_reported(op.op, audit):
            continue
        found.append((op, owners[0] if owners else None))
    return tuple(found)


def reported_ops(ops: tuple[OpStall, ...], audit: AuditReport | AuditStream
                 ) -> tuple[OpStall, ...]:
    """``ops`` without those of advisories the run does not report (:func:`op_reported`)."""
    if not audit.advisories:
        return ops
    return tuple(o for o in ops if op_reported(o.op, audit))


_VERDICT_RANK: dict[str, int] = {"affected": 2, "unknown": 1, "not_affected": 0}
_SEVERITY_RANK: dict[str, int] = {s: len(SEVERITIES) - i for i, s in enumerate(SEVERITIES)}


def _weight(a: AdvisoryFinding) -> tuple[bool, int, int, float]:
    ms = a.worst_case_ms
    figure = math.inf if a.unbounded else (ms if ms is not None and not math.isnan(ms)
                                           else -1.0)
    return (a.suppressed is None and needs_look(a), _VERDICT_RANK[a.verdict],
            _SEVERITY_RANK.get(a.severity, 0), figure)


def worst_advisory(findings: Iterable[AdvisoryFinding]) -> AdvisoryFinding | None:
    """The worst of ``findings``: an affected or unknown one that is not suppressed before
    any other, then affected before unknown before not affected, then by severity, then by
    the longest section (an unbounded one first); the first of equals. A suppressed finding
    heads a guest only when nothing else of it needs a look."""
    worst: AdvisoryFinding | None = None
    for a in findings:
        if worst is None or _weight(a) > _weight(worst):
            worst = a
    return worst


@dataclass(frozen=True)
class Headline:
    """A guest's verdict for a format's guest-level columns (:func:`headline`)."""

    #: "XSA-97" when the run reports it (the guest's own fields), else the id of the guest's
    #: worst reported advisory; None when no reported advisory concerns the guest
    advisory: str | None
    verdict: Verdict
    severity: Severity
    worst_case_ms: float | None
    worst_case_ms_low: float | None
    fixed: bool | None
    reasons: tuple[str, ...]
    decisive: SourceRef  # the setting that decides, else where the guest was read from
    unbounded: bool = False
    #: the advisory finding it comes from (None: XSA-97's own fields, or no advisory)
    finding: AdvisoryFinding | None = None
    #: the operator's suppression of this verdict (reason and ``FILE:line``), if any
    suppressed: str | None = None

    @property
    def xsa97(self) -> bool:
        """The guest's own (XSA-97) fields: its verdict, CVE, mitigations, operations."""
        return self.advisory == ADVISORY and self.finding is None


def headline(f: Finding, audit: AuditReport | AuditStream) -> Headline:
    """The guest's verdict as a format's guest-level columns show it: XSA-97's (the
    finding's own fields) when the run reports XSA-97; otherwise its worst reported advisory
    (:func:`worst_advisory`); a guest no reported advisory concerns is ``unknown`` when it
    could not be assessed (its reasons name what is missing), else ``not_affected``."""
    if reports(audit, ADVISORY):
        return Headline(ADVISORY, f.verdict, f.severity, f.worst_case_ms, f.worst_case_ms_low,
                        f.xsa97_fixed, f.reasons, decisive_ref(f), suppressed=f.suppressed)
    a = worst_advisory(guest_advisories(f, audit))
    if a is None:
        unknown = f.verdict == "unknown"
        return Headline(None, "unknown" if unknown else "not_affected", "none", None, None,
                        None, f.reasons if unknown else (), decisive_ref(f))
    return Headline(a.id, a.verdict, a.severity, a.worst_case_ms, a.worst_case_ms_low,
                    a.fixed, a.reasons, a.location(f.source) or decisive_ref(f), a.unbounded, a,
                    a.suppressed)


class Headlines:
    """:func:`headline` of each finding in turn, counted by verdict (``counts``, for
    :func:`summarize` of a stream)."""

    def __init__(self, audit: AuditReport | AuditStream) -> None:
        self.audit = audit
        self.counts: dict[Verdict, int] = dict.fromkeys(VERDICTS, 0)

    def __call__(self, f: Finding) -> Headline:
        head = headline(f, self.audit)
        self.counts[head.verdict] += 1
        return head


def stated_advisories(f: Finding, audit: AuditReport | AuditStream
                      ) -> tuple[AdvisoryFinding, ...]:
    """What the formats that state each advisory (SARIF, OpenVEX) state of the guest besides
    XSA-97: its reported advisory findings (:func:`guest_advisories`), and, in a run that
    does not report XSA-97, for a guest that could not be assessed at all (no reported
    advisory has a finding for it), an ``unknown`` finding of each reported advisory with
    the guest's reasons (what is missing): it stays unknown rather than going unmentioned."""
    found = guest_advisories(f, audit)
    if found or reports(audit, ADVISORY) or f.verdict != "unknown":
        return found
    unknown: list[AdvisoryFinding] = []
    for advisory_id in reported_ids(audit):
        title, cves, impact = advisory_facts(advisory_id)
        unknown.append(AdvisoryFinding(
            id=advisory_id, cves=cves, verdict="unknown", worst_case_ms=None,
            worst_case_ms_low=None, operations=(), fixed=None,
            reasons=f.reasons or ("the guest could not be assessed",), title=title,
            impact=impact))
    return tuple(unknown)


def looks_needed(f: Finding, head: Headline, audit: AuditReport | AuditStream) -> bool:
    """A guest a person has to look at: its headline is affected or unknown, or one of its
    reported advisories is."""
    return head.verdict != "not_affected" or any(
        needs_look(a) for a in guest_advisories(f, audit, xsa97=True))


def advisory_counts(audit: AuditReport | AuditStream
                    ) -> list[tuple[str, dict[Verdict, int]]]:
    """Guests per verdict of each reported advisory (those the guests met, and those the run
    was narrowed to even when no guest met them), in the registry's order (of a stream:
    once it has been read)."""
    if isinstance(audit, AuditStream):
        seen = audit.advisory_counts
    else:
        seen = {}
        for f in audit.findings:
            for a in f.advisories:
                seen.setdefault(a.id, dict.fromkeys(VERDICTS, 0))[a.verdict] += 1
    ids = [i for i in reported_ids(audit) if i in seen or i in audit.advisories]
    ids += [i for i in seen if i not in ids and reports(audit, i)]
    return [(i, {v: seen.get(i, {}).get(v, 0) for v in VERDICTS}) for i in ids]


def suppressed_ids(f: Finding, audit: AuditReport | AuditStream) -> tuple[str, ...]:
    """The reported advisories the operator suppressed for this guest, in the registry's
    order (XSA-97 when its guest verdict is)."""
    ids = [ADVISORY] if f.suppressed is not None and reports(audit, ADVISORY) else []
    ids += [a.id for a in guest_advisories(f, audit, xsa97=True)
            if a.suppressed is not None and a.id not in ids]
    return tuple(ids)


def suppressed_counts(audit: AuditReport | AuditStream) -> tuple[int, dict[str, int]]:
    """Guests with a suppressed reported finding, and guests per reported advisory (those of
    :func:`advisory_counts`) whose finding of it is suppressed (of a stream: once it has been
    read)."""
    if not isinstance(audit, AuditStream):
        audit = AuditStream.of(audit)
        for _ in audit:
            pass
    seen = audit.suppressed_counts
    return audit.any_suppressed, {i: seen.get(i, 0) for i, _ in advisory_counts(audit)}


def advisory_figure(a: AdvisoryFinding) -> str:
    """An advisory's longest section for people: ``39.6-380 ms``, ``unbounded``, or ``-``
    when it has no figure (an integrity finding, an unknown)."""
    if a.unbounded:
        return "unbounded"
    if a.worst_case_ms is None:
        return "-"
    return f"{format_ms_range(a.worst_case_ms_low, a.worst_case_ms)} ms"


def advisory_impact(a: AdvisoryFinding, budget_ms: float) -> str:
    """What an advisory finding does to the host, in words: a memory corruption, no bound at
    all, or its longest section against the budget (``""`` when nothing is known)."""
    parts = ["integrity impact (memory corruption)"] if a.impact == "integrity" else []
    if a.unbounded:
        parts.append("no bound once triggered (an unbounded loop)")
    elif a.worst_case_ms is not None:
        parts.append(f"worst-case non-preemptible section {advisory_figure(a)}, budget "
                     f"{format_number(budget_ms)} ms")
    return "; ".join(parts)


def fixed_text(fixed: bool | None) -> str:
    """Whether the release has an advisory's fix, in words."""
    if fixed is None:
        return "fix status unknown"
    return "fixed in this release" if fixed else "not fixed in this release"


def advisory_text(a: AdvisoryFinding) -> str:
    """One line about an advisory finding: verdict, severity, figure or impact, CVEs, fix,
    then (affected) its mitigations or (unknown) what is missing; a suppressed one says
    ``suppressed (<reason> (FILE:line))`` instead of the mitigations."""
    cves = ", ".join(a.cves) or "no CVE"
    if a.verdict == "unknown":
        why = a.reasons[0] if a.reasons else "no reason recorded"
        mark = f"; suppressed ({a.suppressed})" if a.suppressed is not None else ""
        return f"unknown ({cves}): {why}{mark}"
    parts = [verdict_label(a.verdict)]
    if a.verdict == "affected":
        parts.append(a.severity)
    if a.impact == "integrity":
        parts.append("integrity impact")
    figure = advisory_figure(a)
    if figure != "-":
        parts.append(figure)
    text = f"{', '.join(parts)} ({cves}; {fixed_text(a.fixed)})"
    if a.suppressed is not None:
        text += f"; suppressed ({a.suppressed})"
    elif a.verdict == "affected" and a.mitigations:
        text += "; " + " ".join(a.mitigations)
    return text


@dataclass
class Tally:
    """The fleet summary, built guest by guest (:meth:`add`) in constant memory: guests per
    verdict, per severity and per Xen release, and the ``keep`` worst guests (by worst case,
    then input order) as small rows."""

    keep: int = 10
    verdicts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    severities: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    releases: dict[str, int] = field(default_factory=dict)
    related: int = 0  # guests with at least one related finding
    _worst: list[tuple[float, int, tuple[str, ...]]] = field(default_factory=list)
    _seen: int = 0

    def add(self, finding: Finding, head: Headline, row: tuple[str, ...],
            related: bool = False) -> None:
        """Count ``finding`` by its ``head`` (:func:`headline`); ``row`` is what the
        worst-guests list shows of it."""
        self.verdicts[head.verdict] = self.verdicts.get(head.verdict, 0) + 1
        self.severities[head.severity] = self.severities.get(head.severity, 0) + 1
        release = finding.xen_version or "?"
        self.releases[release] = self.releases.get(release, 0) + 1
        self.related += related
        self._seen += 1
        ms = math.inf if head.unbounded else head.worst_case_ms
        if ms is None or self.keep <= 0 or not (math.isfinite(ms) or head.unbounded):
            return
        item = (ms, -self._seen, row)
        if len(self._worst) < self.keep:
            heapq.heappush(self._worst, item)
        elif item > self._worst[0]:
            heapq.heapreplace(self._worst, item)

    def worst(self) -> list[tuple[str, ...]]:
        """The rows of the worst guests, worst first (ties in input order)."""
        return [row for _, _, row in sorted(self._worst, reverse=True)]


def host_facts(report: AuditReport | AuditStream) -> dict[str, object]:
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
#: A string as :func:`encode_json` writes it (quoted, ASCII escapes): for formats that splice
#: encoded text.
json_string = _STR


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


class RawJson(str):
    """Text that :func:`encode_json` writes as it is: JSON already encoded at the place it
    goes (e.g. an operations list shared by many guests, encoded once)."""

    __slots__ = ()


def encode_json(value: object, newline: str) -> str:
    """``value`` as :func:`dump_json` writes it at the indentation ``newline`` (``"\\n"``
    followed by the spaces of its level), without the final newline: the fast encoder for
    the bounded data a format builds per guest. Values nested deeper than 32 levels (never
    built by a format) go through :func:`dump_json`'s encoder, which has no recursion."""
    out: list[str] = []
    _fast(value, newline, out, 0)
    return "".join(out)


def _fast(value: object, newline: str, out: list[str], depth: int) -> None:
    kind = type(value)
    if kind is str:
        assert isinstance(value, str)
        out.append(_STR(value))
    elif kind is dict:
        assert isinstance(value, dict)
        if not value:
            out.append("{}")
            return
        if depth > 32:
            _encode(value, newline, out)
            return
        inner = newline + "  "
        sep = "{" + inner
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"JSON keys must be strings, not {type(key).__name__}")
            out.append(sep)
            out.append(_STR(key))
            out.append(": ")
            _fast(item, inner, out, depth + 1)
            sep = "," + inner
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        assert isinstance(value, list | tuple)
        if not value:
            out.append("[]")
            return
        if depth > 32:
            _encode(value, newline, out)
            return
        inner = newline + "  "
        sep = "[" + inner
        for item in value:
            out.append(sep)
            _fast(item, inner, out, depth + 1)
            sep = "," + inner
        out.append(newline + "]")
    elif kind is RawJson:
        assert isinstance(value, RawJson)
        out.append(value)
    elif not _scalar(value, out):
        _encode(value, newline, out)  # a dict or list subclass


class JsonListWriter:
    """Writes a JSON document (:func:`dump_json`'s text) one of whose lists is written item
    by item: the document is built twice, before the items with what is known then and
    after them with the rest (counts, errors), each time with :data:`placeholder` as that
    list; the keys before the list must be the same both times.

    ::

        w = JsonListWriter(out)
        w.begin({"head": 1, "items": w.placeholder, "count": 0})
        for item in items:
            w.item(item)                  # or w.item_text(encode_json(item, w.newline))
        w.end({"head": 1, "items": w.placeholder, "count": n})
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._mark = f"xenvmmu-stream-{secrets.token_hex(16)}"
        self.placeholder: list[object] = [self._mark]
        self.newline = "\n"  # the indentation of the items, known after begin()
        self.count = 0
        self._encoded = _STR(self._mark)

    def begin(self, document: object) -> None:
        """Write the document up to the list's first item."""
        text = dump_json(document)
        head = text[: text.index(self._encoded)]
        indent = head[head.rindex("\n"):]
        self.newline = indent
        self._first = indent
        self._next = "," + indent
        self.out.write(head[: -len(indent)])

    def item(self, value: object) -> None:
        """Write one item of the list."""
        self.item_text(encode_json(value, self.newline))

    def item_text(self, text: str) -> None:
        """Write one item already encoded at :attr:`newline`."""
        self.out.write((self._next if self.count else self._first) + text)
        self.count += 1

    def items_from(self, part: IO[str], count: int) -> None:
        """Write ``count`` items held in ``part`` (a :func:`spool`), each written there as
        :meth:`item_text` would: preceded by :attr:`newline`, with a comma before all but
        the first (the newline can be learnt beforehand from a :meth:`begin` into a
        ``StringIO``)."""
        copy_spool(part, self.out)
        self.count += count

    def end(self, document: object) -> None:
        """Write the rest of the document, from the end of the list."""
        text = dump_json(document)
        tail = text[text.index(self._encoded) + len(self._encoded):]
        if self.count:
            self.out.write(tail)
        else:  # "[" was written: close it on the same line, as an empty list is written
            self.out.write(tail[tail.index("]"):])


def finite(value: float | None) -> float | None:
    """``value`` unless it is NaN or infinite (JSON has no such numbers)."""
    return value if value is not None and math.isfinite(value) else None


# --- text helpers -----------------------------------------------------------------------------


def format_number(value: float) -> str:
    """A number without noise: ``30``, ``12.5``, ``0.25``."""
    return f"{value:g}" if math.isfinite(value) else str(value)


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
    never a partial one (:func:`open_atomic` with one write)."""
    with open_atomic(path) as out:
        out.write(text)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A text stream (UTF-8) whose content replaces ``path`` when the ``with`` block ends
    without an error, so that readers see the old file or the new one, never a partial one:
    the text goes to a temporary file in the same directory, which is fsynced, then
    moved over the target with :func:`os.replace`. A report is written into it as it is made.

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
    while True:
        tmp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        break
    try:
        with open(fd, "w", encoding="utf-8", errors="backslashreplace", newline="\n",
                  buffering=1 << 20) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        output_target(target)  # still not a device/FIFO/directory at the last moment
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def spool() -> IO[str]:
    """An anonymous temporary text file (removed when closed, or when the process ends) for
    the parts of an output a format must hold back until it has seen every guest. Text is
    kept exactly, lone surrogates included."""
    return tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogatepass",
                                  newline="\n", buffering=1 << 20)


def copy_spool(part: IO[str], out: TextIO) -> None:
    """Write what ``part`` (from :func:`spool`) holds to ``out``, in large blocks."""
    part.flush()
    part.seek(0)
    while block := part.read(1 << 20):
        out.write(block)


def shortest_unique_suffixes(paths: Iterable[str]) -> dict[str, str]:
    """For each distinct path, its shortest suffix of whole ``/``-separated components that
    no other path ends with (``a/web.cfg`` and ``b/web.cfg`` stay apart, a unique
    ``db.cfg`` is ``db.cfg``), else the whole path."""
    parts = {p: p.split("/") for p in set(paths)}
    out: dict[str, str] = {}
    pending = list(parts)
    depth = 1
    while pending:
        suffixes = {p: "/".join(parts[p][-depth:]) for p in pending}
        count: dict[str, int] = {}
        for text in suffixes.values():
            count[text] = count.get(text, 0) + 1
        later = []
        for p in pending:
            if count[suffixes[p]] == 1 or depth >= len(parts[p]):
                out[p] = suffixes[p] if count[suffixes[p]] == 1 else p
            else:
                later.append(p)
        pending = later
        depth += 1
    return out


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
