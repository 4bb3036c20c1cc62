"""``--format prometheus``: text exposition format for node_exporter's textfile collector.

Write it with ``--output /var/lib/node_exporter/textfile/xenvmmu.prom`` (the file is replaced
atomically). Metrics, all gauges, no timestamps (the collector rejects files with them)::

    xenvmmu_audit_budget_seconds                         latency budget
    xenvmmu_guests{verdict}                              guests per verdict (all three, even 0)
    xenvmmu_input_errors                                 inputs that could not be read
    xenvmmu_guest_info{guest,source,paging,type,cve,severity,verdict,xen_version}  always 1
    xenvmmu_guest_affected{guest,source,paging}          1 affected, 0 otherwise (incl. unknown)
    xenvmmu_guest_assessed{guest,source,paging}          0 when the verdict is unknown
    xenvmmu_guest_worst_case_stall_seconds{guest,source,paging}   only when known

(plus ``occurrence`` on a guest's series when needed to keep them unique, see below)

Label values are identifiers only (guest name, file path, enum values; an unknown value is the
empty string, which Prometheus treats as an absent label), never free text, so the number of
series stays bounded by the number of guests. ``guest`` is the guest's name, else its file's
basename; ``source`` is the file's path as given. Every series is unique, as node_exporter
requires: two guests with the same name in different files differ by ``source``, and two
guests of one file that would still share ``{guest, source, paging}`` (unnamed domains of an
``xl list -l``, a name listed twice) get ``occurrence="2"``, ``"3"``... on every one of their
series (the first has no ``occurrence`` label, which Prometheus reads as empty).
"""

from __future__ import annotations

import math

from xenvmmu.audit.findings import AuditReport, Finding
from xenvmmu.audit.format.base import (
    VERDICTS,
    Formatter,
    display_name,
    register,
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


def metric(name: str, help_text: str, samples: list[Sample]) -> list[str]:
    """One metric family: HELP, TYPE gauge, then its samples."""
    lines = [f"# HELP {name} {escape_help(help_text)}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        rendered = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels)
        series = f"{name}{{{rendered}}}" if labels else name
        lines.append(f"{series} {format_value(value)}")
    return lines


def _base_labels(f: Finding) -> Labels:
    return (("guest", display_name(f)), ("source", f.source.path), ("paging", f.paging or ""))


def guest_label_sets(findings: tuple[Finding, ...] | list[Finding]) -> list[Labels]:
    """The identifying labels of each finding, unique across the report: ``guest``,
    ``source``, ``paging``, and ``occurrence`` (``"2"``, ``"3"``...) for the second and later
    findings with the same three (absent, i.e. empty, on the first: node_exporter fills a
    missing label with the empty string)."""
    seen: dict[Labels, int] = {}
    out: list[Labels] = []
    for f in findings:
        base = _base_labels(f)
        n = seen.get(base, 0) + 1
        seen[base] = n
        out.append((*base, ("occurrence", str(n))) if n > 1 else base)
    return out


@register
class PrometheusFormatter(Formatter):
    """Gauges for node_exporter's textfile collector."""

    name = "prometheus"
    description = "Prometheus text format for node_exporter's textfile collector"

    def render(self, report: AuditReport) -> str:
        """All metric families, each once, ending with a newline."""
        counts = summarize(report).by_verdict()
        findings = report.findings
        lines = metric(
            "xenvmmu_audit_budget_seconds",
            "Latency budget a guest's longest non-preemptible virtual-MMU section is judged "
            "against (XSA-97).",
            [((), report.budget_ms / 1000)],
        )
        lines += metric(
            "xenvmmu_guests",
            "Guests audited for XSA-97, by verdict.",
            [((("verdict", v),), counts[v]) for v in VERDICTS],
        )
        lines += metric(
            "xenvmmu_input_errors",
            "Inputs the XSA-97 audit could not read or understand.",
            [((), len(report.errors))],
        )
        if not findings:
            return "\n".join(lines) + "\n"
        ids = guest_label_sets(findings)
        pairs = list(zip(ids, findings, strict=True))
        lines += metric(
            "xenvmmu_guest_info",
            "Facts about an audited guest, as labels; always 1.",
            [(self._info_labels(labels, f), 1) for labels, f in pairs],
        )
        lines += metric(
            "xenvmmu_guest_affected",
            "1 if the guest is affected by XSA-97 (CVE-2014-5146/CVE-2014-5149), else 0.",
            [(labels, f.verdict == "affected") for labels, f in pairs],
        )
        lines += metric(
            "xenvmmu_guest_assessed",
            "1 if the guest could be assessed for XSA-97, 0 if its verdict is unknown.",
            [(labels, f.verdict != "unknown") for labels, f in pairs],
        )
        lines += metric(
            "xenvmmu_guest_worst_case_stall_seconds",
            "Longest non-preemptible virtual-MMU section that can be driven against the guest.",
            [
                (labels, f.worst_case_ms / 1000)
                for labels, f in pairs
                if f.worst_case_ms is not None
            ],
        )
        return "\n".join(lines) + "\n"

    def _info_labels(self, labels: Labels, f: Finding) -> Labels:
        return (
            *labels,
            ("type", f.guest_type or ""),
            ("cve", f.cve or ""),
            ("severity", f.severity),
            ("verdict", f.verdict),
            ("xen_version", f.xen_version or ""),
        )
