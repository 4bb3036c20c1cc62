"""``--format markdown``: a report to paste into a ticket (GitHub-flavoured Markdown).

A title with the verdict counts, the host facts, a table of guests, a section per affected or
unknown guest with its reasons, related findings and mitigations (``verbose``: a section per
guest), a section per other guest with a related finding (an operation outside the verdict
that this release does not preempt and that reaches the budget), the input errors, and the
summary line. Everything that comes from the input (names, paths, messages) is escaped, so a
guest name cannot inject Markdown, HTML or table cells.

The title needs the counts of the whole fleet: the table rows and the sections are written
to temporary files as the guests come, and copied after the title.
"""

from __future__ import annotations

import re
from typing import TextIO

from xenvmmu.audit.findings import AuditStream, Finding, OpStall
from xenvmmu.audit.format.base import (
    ADVISORY_URL,
    CVE_HAP,
    CVE_SHADOW,
    Formatter,
    copy_spool,
    decisive_ref,
    display_name,
    format_int,
    format_mib,
    format_ms,
    format_number,
    host_facts,
    needs_attention,
    one_line,
    register,
    related_findings,
    related_severity,
    related_text,
    spool,
    summarize,
    summary_line,
    tool_version,
    verdict_label,
    yes_no,
)

#: ASCII punctuation that means something inline, in a table or in HTML
_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&])")
#: what would open a nested list or a heading underline at the start of a list item
_LEADING_MARK = re.compile(r"^[-+=]")
_LEADING_ORDINAL = re.compile(r"^(\d+)([.)])")


def md(text: str) -> str:
    """``text`` as literal Markdown inline text: one line, markup backslash-escaped."""
    return _SPECIAL.sub(r"\\\1", one_line(text))


def md_item(text: str) -> str:
    """:func:`md` for text that starts a list item (``- 1. x`` would nest a list)."""
    escaped = _LEADING_MARK.sub(r"\\\g<0>", md(text))
    return _LEADING_ORDINAL.sub(r"\1\\\2", escaped)


GUEST_COLUMNS = (
    "Guest", "Source", "Type", "Paging", "Memory MiB", "Pool MiB", "XSA-97 fixed",
    "Worst case ms", "Verdict", "Severity",
)
#: numbers right-aligned
GUEST_ALIGN = ("---",) * 4 + ("---:",) * 2 + ("---", "---:", "---", "---")


def _row(cells: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


@register
class MarkdownFormatter(Formatter):
    """A Markdown report for tickets and wiki pages."""

    name = "markdown"
    description = "Markdown report to paste into a ticket"
    options = frozenset({"verbose"})

    def write(self, audit: AuditStream, out: TextIO) -> None:
        """The whole report."""
        with spool() as rows, spool() as sections:
            for f in audit:
                rows.write(_row(self._cells(f)) + "\n")
                related = related_findings(f, audit.budget_ms)
                if self.verbose or related or needs_attention(f):
                    sections.write("\n" + "\n".join(self._section(f, related, audit)) + "\n")
            out.write("\n".join(self._head(audit)) + "\n")
            if audit.guests:
                out.write(_row(GUEST_COLUMNS) + "\n" + _row(GUEST_ALIGN) + "\n")
                copy_spool(rows, out)
            else:
                out.write("No guests were audited.\n")
            copy_spool(sections, out)
        tail: list[str] = []
        if audit.errors:
            tail += ["", "## Input errors", ""]
            for e in audit.errors:
                where = e.path if e.line is None else f"{e.path}:{e.line}"
                tail.append(f"- {md_item(where)}: {md(e.message)}")
        tail += ["", "---", "", summary_line(audit)]
        out.write("\n".join(tail) + "\n")

    def _head(self, report: AuditStream) -> list[str]:
        s = summarize(report)
        out = [
            f"# XSA-97 audit: {s.affected} of {s.guests} guests affected",
            "",
            f"[Xen Security Advisory 97]({ADVISORY_URL}): non-preemptible virtual-MMU "
            f"operations on x86 HVM guests ({CVE_HAP} with HAP, {CVE_SHADOW} with shadow "
            f"paging). A guest is affected when one operation can hold a physical CPU for "
            f"longer than the budget of {format_number(report.budget_ms)} ms.",
            "",
            "## Host",
            "",
            _row(("Fact", "Value")),
            _row(("---", "---")),
            _row(("xenvmmu", md(tool_version(report)))),
            _row(("latency budget", f"{format_number(report.budget_ms)} ms")),
        ]
        for key, value in host_facts(report).items():
            out.append(_row((md(key), md(_fact(value)))))
        out += ["", "## Guests", ""]
        return out

    def _cells(self, f: Finding) -> list[str]:
        verdict = verdict_label(f.verdict)
        return [
            md(display_name(f)),
            md(f.source.path),
            f.guest_type or "?",
            f.paging or "-",
            format_int(f.memory_mib),
            format_mib(f.pool_kib),
            yes_no(f.xsa97_fixed),
            format_ms(f.worst_case_ms),
            f"**{verdict}**" if f.verdict == "affected" else verdict,
            f.severity,
        ]

    def _section(self, f: Finding, related: tuple[OpStall, ...],
                 audit: AuditStream) -> list[str]:
        ref = decisive_ref(f)
        where = md(ref.path) + ("" if ref.line is None else f" line {ref.line}")
        if ref.key:
            where += f" ({md(ref.key)})"
        title = f"## {md(display_name(f))}: {verdict_label(f.verdict)}"
        if f.verdict == "affected":
            title += f" ({f.severity})"
        out = [title, "", f"- Decided by: {where}"]
        if f.cve:
            out.append(f"- CVE: {f.cve}")
        out.append(
            f"- Worst-case non-preemptible section: {format_ms(f.worst_case_ms)} ms; "
            f"Xen {md(f.xen_version or '?')}, XSA-97 fix: {yes_no(f.xsa97_fixed)}"
        )
        if f.reasons and (self.verbose or needs_attention(f)):
            out += ["", "Reasons:", ""] + [f"- {md_item(r)}" for r in f.reasons]
        if related:
            out += ["", "Related findings (outside the verdict):", ""]
            out += [f"- {md_item(related_text(op, related_severity(op, audit)))}"
                    for op in related]
        if f.mitigations:
            out += ["", "Mitigations, cheapest first:", ""]
            for i, m in enumerate(f.mitigations, 1):
                out.append(f"{i}. {md_item(m.text)} (`{m.action}`)")
        return out


def _fact(value: object) -> str:
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, list):
        return ", ".join(_fact(v) for v in value)
    return "?" if value is None else str(value)
