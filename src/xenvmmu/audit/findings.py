"""Audit results: one frozen Finding per guest, shared by every output format.

"Could not assess" is a Finding with verdict ``unknown`` and its reasons, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from ..advisories import Impact as Impact  # re-exported: AdvisoryFinding.impact
from ..advisories import advisory_url
from ..severity import Severity as _Severity

Verdict = Literal["affected", "not_affected", "unknown"]


def clean_text(text: str) -> str:
    """Text safe for every output: bytes that were not UTF-8 in an input (kept as lone
    surrogates by "surrogateescape") become visible ``\\xNN`` escapes."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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


#: "critical" from the shortest stall that can trip the watchdog, "high" from 100 ms,
#: "medium" from the latency budget (``xenvmmu.severity.severity_for``); "none" when not
#: affected. One scale for audit, simulate and report.
Severity = _Severity


@dataclass(frozen=True)
class SourceRef:
    """Where a fact came from: a file and, when there is one, the line of the setting."""

    path: str
    line: int | None = None
    key: str | None = None  # the setting that decides, e.g. "hap" or "memory"


@dataclass(frozen=True)
class OpStall:
    """One operation of XSA-97's class that can be driven against the guest."""

    op: str  # e.g. "logdirty_clean", "hap_global_retype", "shadow_blow_tables"
    started_by: tuple[str, ...]  # who can issue it: "toolstack", "device_model"
    preemptible: bool  # does this release preempt it
    worst_case_ms: float  # longest non-preemptible section
    related: bool = False  # True for the same-class ops outside the verdict (teardown...)
    reference: str = ""  # the advisory or commits that cover exactly this code
    sized_by: tuple[str, ...] = ()  # who decides how long it is: "guest", "device_model"...
    residual: bool = False  # still run on a host that has the fix it was counted under
    worst_case_ms_low: float = 0.0  # the same section at the low end of the cost ranges

    @property
    def trigger(self) -> str:
        """``started_by`` as one string (the JSON ``trigger`` field of schema 1)."""
        return ", ".join(self.started_by)


@dataclass(frozen=True)
class Mitigation:
    action: str  # short machine-friendly id: "pv", "hap_on", "shrink", "shadow_memory",
    #              "upgrade", "patch"
    text: str  # one sentence for humans


@dataclass(frozen=True)
class AdvisoryFinding:
    """The guest against one advisory of the registry (``xenvmmu.advisories``): the
    advisory's operations, their longest section (high and low end of the cost ranges), the
    verdict on the budget, whether this release has the fix, why, and what helps."""

    id: str  # "XSA-97"
    cves: tuple[str, ...]
    verdict: Verdict
    worst_case_ms: float | None  # None: no figure (unbounded, or not a stall: see impact)
    worst_case_ms_low: float | None
    operations: tuple[str, ...]
    fixed: bool | None  # None: the registry cannot tell for this build
    reasons: tuple[str, ...] = ()
    mitigations: tuple[str, ...] = ()
    title: str = ""  # the advisory's title (registry)
    #: what the advisory threatens: "availability" (a stall or livelock: denial of service)
    #: or "integrity" (memory corruption such as a use-after-free); DoS is kept apart
    impact: Impact = "availability"
    #: on the one scale (``xenvmmu.severity``) for a stall with a figure; "high" for an
    #: affected advisory without one (unbounded loop, use-after-free); "none" otherwise
    severity: Severity = "none"
    #: the operation has no bound at all once triggered (a livelock, an unbounded list)
    unbounded: bool = False
    #: the setting that decides it (``max_event_channels``, ``maxmem``...), for locations;
    #: a ``path`` of ``""`` is the guest's own file (so that guests of one shape share their
    #: advisory findings): :meth:`location` resolves it
    decisive: SourceRef | None = None
    #: the operator silenced it (``xenvmmu audit --suppress``): the reason and where it was
    #: written (``FILE:line``); None when it is not suppressed
    suppressed: str | None = None

    def location(self, guest_file: SourceRef) -> SourceRef | None:
        """``decisive`` with the guest's own file (``guest_file``, the finding's ``source``)
        written in where it stands for it."""
        d = self.decisive
        if d is None or d.path:
            return d
        return SourceRef(guest_file.path, d.line, d.key)

    @property
    def url(self) -> str:
        """The advisory's page on xenbits."""
        return advisory_url(self.id)


@dataclass(frozen=True)
class Finding:
    """Per-guest XSA-97 exposure on one host."""

    source: SourceRef
    name: str | None
    guest_type: Literal["hvm", "pv", "pvh"] | None
    paging: Literal["hap", "shadow"] | None
    memory_mib: int | None
    maxmem_mib: int | None
    vcpus: int | None
    pool_kib: int | None
    xen_version: str | None
    xsa97_fixed: bool | None
    cve: str | None  # "CVE-2014-5146" (HAP) or "CVE-2014-5149" (shadow) when relevant
    worst_case_ms: float | None
    verdict: Verdict
    severity: Severity
    reasons: tuple[str, ...] = ()
    mitigations: tuple[Mitigation, ...] = ()
    ops: tuple[OpStall, ...] = ()
    paging_reasons: tuple[str, ...] = ()
    decisive: SourceRef | None = None  # the setting that decides (SARIF location)
    #: ``worst_case_ms`` at the low end of the cost ranges (``worst_case_ms`` is the high end)
    worst_case_ms_low: float | None = None
    #: one entry per applicable advisory of the registry, XSA-97 first
    advisories: tuple[AdvisoryFinding, ...] = ()
    #: the domain's uuid, for a guest read from ``xl list -l`` that has one (its identity)
    uuid: str | None = None
    #: the operator silenced XSA-97's verdict (the fields above) for this guest
    #: (``xenvmmu audit --suppress``): the reason and where it was written (``FILE:line``)
    suppressed: str | None = None


@dataclass(frozen=True)
class InputError:
    """An input that could not be read or understood; the scan went on."""

    path: str
    line: int | None
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", clean_text(self.path))
        object.__setattr__(self, "message", clean_text(self.message))


@dataclass(frozen=True)
class AuditReport:
    """Everything one `xenvmmu audit` run (:func:`xenvmmu.audit.run_audit`) found."""

    findings: tuple[Finding, ...]
    errors: tuple[InputError, ...] = ()
    host: dict[str, object] = field(default_factory=dict)  # facts about the host, for output
    budget_ms: float = 30.0
    tool_version: str = ""
    inputs_read: int = 0  # input files read (xl.cfg or JSON), whatever they held
    #: the registry advisories this run reports (``--advisory``), XSA-97 first; empty: all
    advisories: tuple[str, ...] = ()


class AuditStream:
    """One audit as it runs: the findings one at a time, for output that is written guest by
    guest (:func:`xenvmmu.audit.api.iter_audit`; every format's ``write``).

    Iterate once for the findings. What the output needs before the first guest is known
    from the start (``host``, ``budget_ms``, ``tool_version``); ``errors``, ``inputs_read``
    and the verdict ``counts`` are complete once the iteration has ended (``errors`` may grow
    while it runs: the scan reports an unreadable file when it reaches it).
    """

    def __init__(
        self,
        findings: Iterable[Finding],
        *,
        errors: list[InputError] | None = None,
        host: dict[str, object] | None = None,
        budget_ms: float = 30.0,
        tool_version: str = "",
        inputs_read: int = 0,
        advisories: tuple[str, ...] = (),
    ) -> None:
        self._findings = iter(findings)
        self._ahead: list[Finding] = []
        self._started = False
        self.errors: list[InputError] = errors if errors is not None else []
        self.host: dict[str, object] = host if host is not None else {}
        self.budget_ms = budget_ms
        self.tool_version = tool_version
        self.inputs_read = inputs_read
        #: the registry advisories the run reports, XSA-97 first; empty: all of them
        self.advisories = advisories
        #: guests per verdict, counted as they go by
        self.counts: dict[Verdict, int] = {"affected": 0, "not_affected": 0, "unknown": 0}
        #: guests per advisory and verdict (the guests an advisory concerns), as they go by
        self.advisory_counts: dict[str, dict[Verdict, int]] = {}
        #: guests per advisory whose finding of it is suppressed (``--suppress``), as they go
        self.suppressed_counts: dict[str, int] = {}
        #: guests affected by some reported advisory (XSA-97's guest verdict included when
        #: XSA-97 is reported), and guests with an unknown one, suppressed findings left
        #: out: what the exit status reads; and guests with a suppressed reported finding
        self.any_affected = 0
        self.any_unknown = 0
        self.any_suppressed = 0

    @classmethod
    def of(cls, report: AuditReport) -> AuditStream:
        """A finished report as a stream (``render`` writes reports through it)."""
        return cls(report.findings, errors=list(report.errors), host=report.host,
                   budget_ms=report.budget_ms, tool_version=report.tool_version,
                   inputs_read=report.inputs_read, advisories=report.advisories)

    def reports(self, advisory_id: str) -> bool:
        """Whether this run reports ``advisory_id`` (``--advisory`` narrows every format)."""
        return not self.advisories or advisory_id in self.advisories

    def peek(self) -> Finding | None:
        """The first finding, read ahead (the iteration still yields it), or None when there
        is none: then ``errors`` and ``inputs_read`` are complete already. Lets a command
        refuse an empty audit before it writes anything."""
        if self._started:
            raise RuntimeError("peek() comes before the iteration")
        if not self._ahead:
            first = next(self._findings, None)
            if first is None:
                return None
            self._ahead.append(first)
        return self._ahead[0]

    def __iter__(self) -> Iterator[Finding]:
        if self._started:
            raise RuntimeError("an audit stream can be read once")
        self._started = True
        for finding in self._ahead:
            self._count(finding)
            yield finding
        self._ahead.clear()
        for finding in self._findings:
            self._count(finding)
            yield finding

    def _count(self, finding: Finding) -> None:
        self.counts[finding.verdict] += 1
        verdicts: set[str] = set()
        suppressed = False
        if self.reports("XSA-97") or finding.verdict == "unknown":  # unread: for every one
            if finding.suppressed is None:
                verdicts.add(finding.verdict)
            else:
                suppressed = self.reports("XSA-97")
        for a in finding.advisories:
            per = self.advisory_counts.get(a.id)
            if per is None:
                per = self.advisory_counts[a.id] = {"affected": 0, "not_affected": 0,
                                                    "unknown": 0}
            per[a.verdict] += 1
            if a.suppressed is None:
                verdicts.add(a.verdict)
            else:
                self.suppressed_counts[a.id] = self.suppressed_counts.get(a.id, 0) + 1
                suppressed = suppressed or self.reports(a.id)
        self.any_affected += "affected" in verdicts
        self.any_unknown += "unknown" in verdicts
        self.any_suppressed += suppressed

    @property
    def guests(self) -> int:
        """Guests seen so far (all of them once the iteration has ended)."""
        return sum(self.counts.values())

    def collect(self) -> AuditReport:
        """Read the whole stream into an :class:`AuditReport` (every finding in memory)."""
        findings = tuple(self)
        return AuditReport(findings=findings, errors=tuple(self.errors), host=self.host,
                           budget_ms=self.budget_ms, tool_version=self.tool_version,
                           inputs_read=self.inputs_read, advisories=self.advisories)
