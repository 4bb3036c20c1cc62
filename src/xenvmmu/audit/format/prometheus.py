"""``--format prometheus``: text exposition format for node_exporter's textfile collector.

Write it with ``--output /var/lib/node_exporter/textfile/xenvmmu.prom`` (the file is replaced
atomically). Metrics, all gauges, no timestamps (the collector rejects files with them)::

    xenvmmu_audit_budget_seconds                         latency budget
    xenvmmu_guests{verdict}                              guests per verdict (all three, even 0)
    xenvmmu_advisory_guests{advisory,verdict}            guests an advisory concerns, per verdict
    xenvmmu_input_errors                                 inputs that could not be read
    xenvmmu_guest_info{guest,source,paging,type,cve,severity,verdict,xen_version}  always 1
    xenvmmu_guest_affected{guest,source,paging}          1 affected, 0 otherwise (incl. unknown)
    xenvmmu_guest_assessed{guest,source,paging}          0 when the verdict is unknown
    xenvmmu_guest_worst_case_stall_seconds{guest,source,paging}   only when known
    xenvmmu_guest_advisory_affected{guest,source,paging,advisory,impact}   1 affected, else 0
    xenvmmu_guest_advisory_assessed{guest,source,paging,advisory}          0 when unknown
    xenvmmu_guest_advisory_worst_case_stall_seconds{guest,source,paging,advisory}
                                                         only when the advisory has a figure
    xenvmmu_guest_advisory_suppressed{guest,source,paging,advisory,impact}
                                                         1 suppressed by the operator, else 0;
                                                         only for an affected or unknown one

(plus ``occurrence`` on a guest's series when needed to keep them unique, see below)

``verdict`` of ``xenvmmu_guests`` and ``xenvmmu_guest_info`` is XSA-97's; ``--advisory``
narrows the output to the advisories it names: without XSA-97, the three XSA-97 guest
families (``xenvmmu_guest_affected``, ``_assessed``, ``_worst_case_stall_seconds``) are left
out, ``xenvmmu_guest_info``'s ``cve`` is empty and its ``severity`` and ``verdict`` (and
``xenvmmu_guests``) are the guest's worst reported advisory's, and no HELP text names
XSA-97. The ``advisory`` families have
a series per guest and reported advisory that concerns the guest (``Finding.advisories``,
XSA-97's entry included: it mirrors the guest's verdict), ``impact`` being ``availability``
(a stall: denial of service) or ``integrity``; an unbounded advisory has no stall series.
``xenvmmu_advisory_guests`` has all three verdicts of every reported advisory that concerns
a guest or that the run was narrowed to. ``xenvmmu_guest_advisory_suppressed`` is 1 when
the operator suppressed the guest's verdict of the advisory (``--suppress``; the reason is
free text, so it is not a label: the other formats carry it), 0 when not; it has a series
only where the verdict is affected or unknown, which is all a suppression silences (a
fleet's many not-affected verdicts add none). A suppressed finding keeps its ``_affected``
and ``_assessed`` values; an alert on what is not silenced: ``xenvmmu_guest_advisory_affected
== 1 unless xenvmmu_guest_advisory_suppressed == 1`` (the two have the same labels).

Label values are identifiers only (guest name, file path, enum values; an unknown value is the
empty string, which Prometheus treats as an absent label), never free text, so the number of
series stays bounded by the number of guests and advisories. ``guest`` is the guest's name,
else its file's basename; ``source`` is the file's path as given. Every series is unique, as
node_exporter requires: two guests with the same name in different files differ by
``source``, and two guests of one file that would still share ``{guest, source, paging}``
(unnamed domains of an ``xl list -l``, a name listed twice) get ``occurrence="2"``, ``"3"``...
on every one of their series (the first has no ``occurrence`` label, which Prometheus reads as
empty); a guest's advisory series differ by ``advisory``.

The per-guest families are written to one temporary file each as the guests come, and copied
after the fleet's counts: each family stays in one block, as the format requires, and
memory holds only one small key per guest (for ``occurrence``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import ExitStack
from typing import TextIO

from xenvmmu.audit.findings import AuditStream, Finding
from xenvmmu.audit.format.base import (
    ADVISORY,
    VERDICTS,
    Formatter,
    Headline,
    Headlines,
    advisory_counts,
    copy_spool,
    display_name,
    guest_advisories,
    register,
    reports,
    spool,
    summarize,
)

Labels = tuple[tuple[str, str], ...]
Sample = tuple[Labels, float]


def escape_label(value: str) -> str:
    """A label value per the exposition format: ``\\`` ``"`` and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text per the exposition format: ``\\`` and newline escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers without a point, floats in shortest form, ``+Inf``/``NaN``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def metric(name: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """One metric family: HELP, TYPE gauge, then its samples."""
    lines = [f"# HELP {name} {escape_help(help_text)}", f"# TYPE {name} gauge"]
    lines += [sample_line(name, labels, value) for labels, value in samples]
    return lines


def sample_line(name: str, labels: Labels, value: float) -> str:
    """One sample: ``name{labels} value``."""
    if not labels:
        return f"{name} {format_value(value)}"
    rendered = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels)
    return f"{name}{{{rendered}}} {format_value(value)}"


def _base_labels(f: Finding) -> Labels:
    return (("guest", display_name(f)), ("source", f.source.path), ("paging", f.paging or ""))


class GuestLabels:
    """The identifying labels of each finding, unique across the report (call it on each
    finding in turn): ``guest``, ``source``, ``paging``, and ``occurrence`` (``"2"``,
    ``"3"``...) for the second and later findings with the same three (absent, i.e. empty, on
    the first: node_exporter fills a missing label with the empty string). Keeps one key per
    distinct guest."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, f: Finding) -> Labels:
        base = _base_labels(f)
        key = "\0".join(value for _, value in base)
        n = self.seen.get(key, 0) + 1
        self.seen[key] = n
        return (*base, ("occurrence", str(n))) if n > 1 else base


def guest_label_sets(findings: Iterable[Finding]) -> list[Labels]:
    """:class:`GuestLabels` of every finding, in order."""
    labels = GuestLabels()
    return [labels(f) for f in findings]


#: The per-guest families: name, HELP text.
GUEST_FAMILIES = (
    ("xenvmmu_guest_info", "Facts about an audited guest, as labels; always 1."),
    ("xenvmmu_guest_affected",
     "1 if the guest is affected by XSA-97 (CVE-2014-5146/CVE-2014-5149), else 0."),
    ("xenvmmu_guest_assessed",
     "1 if the guest could be assessed for XSA-97, 0 if its verdict is unknown."),
    ("xenvmmu_guest_worst_case_stall_seconds",
     "Longest non-preemptible virtual-MMU section that can be driven against the guest."),
    ("xenvmmu_guest_advisory_affected",
     "1 if the guest is affected by the Xen security advisory, else 0 (incl. unknown)."),
    ("xenvmmu_guest_advisory_assessed",
     "1 if the guest could be assessed for the advisory, 0 if its verdict is unknown."),
    ("xenvmmu_guest_advisory_worst_case_stall_seconds",
     "Longest non-preemptible section of the advisory's operations for the guest."),
    ("xenvmmu_guest_advisory_suppressed",
     "1 if the operator suppressed the guest's verdict of the advisory (--suppress), else 0."),
)
#: The families that are XSA-97's alone (left out when the run does not report it).
XSA97_FAMILIES = frozenset(name for name, _ in GUEST_FAMILIES[1:4])


@register
class PrometheusFormatter(Formatter):
    """Gauges for node_exporter's textfile collector."""

    name = "prometheus"
    description = "Prometheus text format for node_exporter's textfile collector"

    def write(self, audit: AuditStream, out: TextIO) -> None:
        """All metric families, each once, ending with a newline."""
        identify = GuestLabels()
        heads = Headlines(audit)
        xsa97 = reports(audit, ADVISORY)
        families = [(name, text) for name, text in GUEST_FAMILIES
                    if xsa97 or name not in XSA97_FAMILIES]
        with ExitStack() as stack:
            parts = {name: stack.enter_context(spool()) for name, _ in families}
            for f in audit:
                labels = identify(f)
                head = heads(f)
                samples = self._guest_samples(f, labels, head, audit, xsa97)
                for name, sample_labels, value in samples:
                    parts[name].write(sample_line(name, sample_labels, value) + "\n")
            del identify
            counts = summarize(audit, heads.counts).by_verdict()
            of = "XSA-97" if xsa97 else "the reported advisories"
            lines = metric(
                "xenvmmu_audit_budget_seconds",
                "Latency budget a guest's longest non-preemptible virtual-MMU section is "
                f"judged against ({of}).",
                [((), audit.budget_ms / 1000)],
            )
            lines += metric(
                "xenvmmu_guests",
                "Guests audited for XSA-97, by verdict." if xsa97 else
                "Guests audited, by the verdict of their worst reported advisory.",
                [((("verdict", v),), counts[v]) for v in VERDICTS],
            )
            per_advisory = advisory_counts(audit)
            if per_advisory:
                lines += metric(
                    "xenvmmu_advisory_guests",
                    "Guests a reported Xen security advisory concerns, by verdict.",
                    [((("advisory", a), ("verdict", v)), n[v])
                     for a, n in per_advisory for v in VERDICTS],
                )
            lines += metric(
                "xenvmmu_input_errors",
                f"Inputs the {'XSA-97 ' if xsa97 else ''}audit could not read or understand.",
                [((), len(audit.errors))],
            )
            out.write("\n".join(lines) + "\n")
            if not audit.guests:
                return
            for name, help_text in families:
                out.write("\n".join(metric(name, help_text, ())) + "\n")
                copy_spool(parts[name], out)

    def _guest_samples(self, f: Finding, labels: Labels, head: Headline, audit: AuditStream,
                       xsa97: bool) -> list[tuple[str, Labels, float]]:
        """The guest's samples: (family, labels, value)."""
        out: list[tuple[str, Labels, float]] = [
            ("xenvmmu_guest_info", self._info_labels(labels, f, head, xsa97), 1)]
        if xsa97:
            out.append(("xenvmmu_guest_affected", labels, f.verdict == "affected"))
            out.append(("xenvmmu_guest_assessed", labels, f.verdict != "unknown"))
            if f.worst_case_ms is not None:
                out.append(("xenvmmu_guest_worst_case_stall_seconds", labels,
                            f.worst_case_ms / 1000))
        for a in guest_advisories(f, audit, xsa97=True):
            mine = (*labels, ("advisory", a.id))
            out.append(("xenvmmu_guest_advisory_affected", (*mine, ("impact", a.impact)),
                        a.verdict == "affected"))
            out.append(("xenvmmu_guest_advisory_assessed", mine, a.verdict != "unknown"))
            if a.worst_case_ms is not None and not a.unbounded:
                out.append(("xenvmmu_guest_advisory_worst_case_stall_seconds", mine,
                            a.worst_case_ms / 1000))
            if a.verdict != "not_affected":  # what a suppression can silence
                out.append(("xenvmmu_guest_advisory_suppressed",
                            (*mine, ("impact", a.impact)), a.suppressed is not None))
        return out

    def _info_labels(self, labels: Labels, f: Finding, head: Headline, xsa97: bool) -> Labels:
        return (
            *labels,
            ("type", f.guest_type or ""),
            ("cve", (f.cve or "") if xsa97 else ""),
            ("severity", head.severity),
            ("verdict", head.verdict),
            ("xen_version", f.xen_version or ""),
        )
