"""``--format prometheus``: text exposition format for node_exporter's textfile collector.

Write it with ``--output /var/lib/node_exporter/textfile/xenvmmu.prom`` (the file is replaced
atomically). Metrics, all gauges, no timestamps (the collector rejects files with them)::

    xenvmmu_audit_budget_seconds                         latency budget
    xenvmmu_guests{verdict}                              guests per verdict (all three, even 0)
    xenvmmu_input_errors                                 inputs that could not be read
    xenvmmu_guest_info{guest,source,type,paging,cve,severity,verdict,xen_version}  always 1
    xenvmmu_guest_affected{guest,source,paging}          1 affected, 0 otherwise (incl. unknown)
    xenvmmu_guest_assessed{guest,source,paging}          0 when the verdict is unknown
    xenvmmu_guest_worst_case_stall_seconds{guest,source,paging}   only when known

Label values are identifiers only (guest name, file path, enum values; an unknown value is the
empty string, which Prometheus treats as an absent label), never free text, so the number of
series stays bounded by the number of guests. ``guest`` is the guest's name, else its file's
basename; ``source`` is the file's path as given.
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


def _guest_labels(f: Finding) -> Labels:
    return (("guest", display_name(f)), ("source", f.source.path), ("paging", f.paging or ""))


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
        lines += metric(
            "xenvmmu_guest_info",
            "Facts about an audited guest, as labels; always 1.",
            [(self._info_labels(f), 1) for f in findings],
        )
        lines += metric(
            "xenvmmu_guest_affected",
            "1 if the guest is affected by XSA-97 (CVE-2014-5146/CVE-2014-5149), else 0.",
            [(_guest_labels(f), f.verdict == "affected") for f in findings],
        )
        lines += metric(
            "xenvmmu_guest_assessed",
            "1 if the guest could be assessed for XSA-97, 0 if its verdict is unknown.",
            [(_guest_labels(f), f.verdict != "unknown") for f in findings],
        )
        lines += metric(
            "xenvmmu_guest_worst_case_stall_seconds",
            "Longest non-preemptible virtual-MMU section that can be driven against the guest.",
            [
                (_guest_labels(f), f.worst_case_ms / 1000)
                for f in findings
                if f.worst_case_ms is not None
            ],
        )
        return "\n".join(lines) + "\n"

    def _info_labels(self, f: Finding) -> Labels:
        return (
            *_guest_labels(f),
            ("type", f.guest_type or ""),
            ("cve", f.cve or ""),
            ("severity", f.severity),
            ("verdict", f.verdict),
            ("xen_version", f.xen_version or ""),
        )
