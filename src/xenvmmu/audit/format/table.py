"""``--format table`` (the default): a fixed-width report for a terminal.

One row per guest (WORST ms is the longest non-preemptible section from the low to the high
end of the cost ranges; the verdict uses the high end), then what to do about each affected
or unknown guest (its reasons and the cheapest mitigation), then the inputs that could not be
read, then a one-line summary. Plain text unless ``color=True``; control characters in names
are shown as escapes and wide (East Asian) characters count as two columns, so the columns
stay aligned.
"""

from __future__ import annotations

import os
import unicodedata

from xenvmmu.audit.findings import AuditReport, Finding, Verdict
from xenvmmu.audit.format.base import (
    Formatter,
    decisive_ref,
    display_name,
    format_int,
    format_mib,
    format_ms_range,
    needs_attention,
    one_line,
    register,
    summary_line,
    verdict_label,
    yes_no,
)

HEADER = (
    "GUEST", "SOURCE", "TYPE", "PAGING", "MEM MiB", "POOL MiB", "FIXED", "WORST ms", "VERDICT",
    "SEVERITY",
)
#: columns holding numbers are right-aligned
NUMERIC = frozenset({"MEM MiB", "POOL MiB", "WORST ms"})

_COLORS: dict[Verdict, str] = {"affected": "31", "not_affected": "32", "unknown": "33"}


@register
class TableFormatter(Formatter):
    """Fixed-width table for people at a terminal."""

    name = "table"
    description = "fixed-width table for a terminal (default)"

    def render(self, report: AuditReport) -> str:
        """The table, the per-guest details, the input errors and the summary line."""
        lines: list[str] = []
        if report.findings:
            lines += self._table(report.findings)
        attention = [f for f in report.findings if needs_attention(f)]
        if attention:
            lines.append("")
            for finding in attention:
                lines += self._details(finding)
        if report.errors:
            lines += ["", "Input errors:"]
            for err in report.errors:
                where = err.path if err.line is None else f"{err.path}:{err.line}"
                lines.append(f"  {one_line(where)}: {one_line(err.message)}")
        if lines:
            lines.append("")
        lines.append(summary_line(report))
        return "\n".join(lines) + "\n"

    def _row(self, f: Finding) -> tuple[str, ...]:
        return (
            one_line(display_name(f)),
            one_line(os.path.basename(f.source.path) or f.source.path),
            f.guest_type or "?",
            f.paging or "-",
            format_int(f.memory_mib),
            format_mib(f.pool_kib),
            yes_no(f.xsa97_fixed),
            format_ms_range(f.worst_case_ms_low, f.worst_case_ms),
            verdict_label(f.verdict),
            f.severity,
        )

    def _table(self, findings: tuple[Finding, ...]) -> list[str]:
        rows = [self._row(f) for f in findings]
        columns = zip(HEADER, *rows, strict=True)
        widths = [max(_width(cell) for cell in column) for column in columns]
        out = [self._line(HEADER, widths, None)]
        out += [self._line(row, widths, f.verdict) for row, f in zip(rows, findings, strict=True)]
        return out

    def _line(self, cells: tuple[str, ...], widths: list[int], verdict: Verdict | None) -> str:
        parts = []
        for title, cell, width in zip(HEADER, cells, widths, strict=True):
            pad = " " * (width - _width(cell))
            if verdict is not None and title == "VERDICT":
                cell = self._paint(cell, verdict)
            parts.append(pad + cell if title in NUMERIC else cell + pad)
        return "  ".join(parts).rstrip()

    def _details(self, f: Finding) -> list[str]:
        ref = decisive_ref(f)
        where = ref.path if ref.line is None else f"{ref.path}:{ref.line}"
        if ref.key:
            where += f", {ref.key}"
        head = f"{one_line(display_name(f))}: {self._paint(verdict_label(f.verdict), f.verdict)}"
        if f.verdict == "affected":
            head += f", {f.severity}"
        if f.cve:
            head += f", {f.cve}"
        out = [f"{head} ({one_line(where)})"]
        out += [f"  - {one_line(reason)}" for reason in f.reasons]
        for i, mitigation in enumerate(f.mitigations, 1):
            out.append(f"  fix {i}: {one_line(mitigation.text)} [{mitigation.action}]")
        return out

    def _paint(self, text: str, verdict: Verdict) -> str:
        if not self.color:
            return text
        return f"\x1b[{_COLORS[verdict]}m{text}\x1b[0m"


def _width(text: str) -> int:
    """Terminal columns ``text`` takes: wide characters 2, combining marks 0."""
    width = 0
    for c in text:
        if unicodedata.combining(c):
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width
