"""``--format markdown``: a report to paste into a ticket (GitHub-flavoured Markdown).

A title with the verdict counts, the host facts, a table per advisory the run reports (its
link, CVEs, title and how many guests it concerns per verdict), a table of guests, a section
per guest to look at (affected or unknown, or with an affected or unknown advisory, or with
a related finding: an operation outside the verdict that this release does not preempt and
that reaches the budget; ``verbose``: a section per guest) with its reasons, related
findings, mitigations and a table of its advisories (linked, CVEs, impact, verdict,
severity, range or ``unbounded``, fixed, first mitigation; then what an unknown one misses),
the input errors, and the summary line. Everything that comes from the input (names, paths,
messages) is escaped, so a guest name cannot inject Markdown, HTML or table cells.

``--advisory`` narrows the report to those advisories: without XSA-97 the title names them,
the guest table's verdict, severity, worst case and fixed columns are each guest's worst
reported advisory's (:func:`~xenvmmu.audit.format.base.headline`), and no XSA-97 fact
(CVE, figure, reasons, mitigations) is written.

A finding the operator suppressed (``--suppress``) keeps its verdict, marked ``(suppressed)``
in the guest table and in the guest's advisory table, with a note of the reason and where
it was written (``FILE:line``) under that table (XSA-97's: a ``Suppressed`` line of the
guest's section); the fleet's advisory table gets a ``Suppressed`` column when any is.

The title needs the counts of the whole fleet: the table rows and the sections are written
to temporary files as the guests come, and copied after the title.
"""

from __future__ import annotations

import re
from typing import TextIO

from xenvmmu.audit.findings import AdvisoryFinding, AuditStream, Finding, OpStall, Verdict
from xenvmmu.audit.format.base import (
    ADVISORY,
    ADVISORY_URL,
    CVE_HAP,
    CVE_SHADOW,
    VERDICTS,
    Formatter,
    Headline,
    Headlines,
    advisory_counts,
    advisory_facts,
    advisory_figure,
    advisory_url,
    copy_spool,
    display_name,
    format_int,
    format_mib,
    format_ms,
    format_number,
    guest_advisories,
    host_facts,
    looks_needed,
    one_line,
    register,
    related_severity,
    related_text,
    reported_ids,
    reported_related,
    reports,
    spool,
    summarize,
    summary_line,
    suppressed_counts,
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
#: the fleet's advisories
ADVISORY_COLUMNS = ("Advisory", "CVEs", "Title", "Affected", "Not affected", "Unknown")
ADVISORY_ALIGN = ("---",) * 3 + ("---:",) * 3
#: a guest's advisories
GUEST_ADVISORY_COLUMNS = ("Advisory", "CVEs", "Impact", "Verdict", "Severity",
                          "Worst case", "Fixed", "First mitigation")


def _row(cells: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def _link(advisory_id: str) -> str:
    return f"[{md(advisory_id)}]({advisory_url(advisory_id)})"


@register
class MarkdownFormatter(Formatter):
    """A Markdown report for tickets and wiki pages."""

    name = "markdown"
    description = "Markdown report to paste into a ticket"
    options = frozenset({"verbose"})

    def write(self, audit: AuditStream, out: TextIO) -> None:
        """The whole report."""
        heads = Headlines(audit)
        xsa97 = reports(audit, ADVISORY)
        with spool() as rows, spool() as sections:
            for f in audit:
                head = heads(f)
                rows.write(_row(self._cells(f, head)) + "\n")
                related = tuple(op for op, _ in reported_related(f, audit))
                if self.verbose or related or looks_needed(f, head, audit):
                    sections.write("\n" + "\n".join(self._section(f, head, related, audit))
                                   + "\n")
            out.write("\n".join(self._head(audit, heads)) + "\n")
            if audit.guests:
                columns = GUEST_COLUMNS if xsa97 else (*GUEST_COLUMNS[:6], "Fixed",
                                                       *GUEST_COLUMNS[7:])
                out.write(_row(columns) + "\n" + _row(GUEST_ALIGN) + "\n")
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
        tail += ["", "---", "", summary_line(audit, heads.counts)]
        out.write("\n".join(tail) + "\n")

    def _head(self, report: AuditStream, heads: Headlines) -> list[str]:
        s = summarize(report, heads.counts)
        budget = format_number(report.budget_ms)
        if reports(report, ADVISORY):
            out = [
                f"# XSA-97 audit: {s.affected} of {s.guests} guests affected",
                "",
                f"[Xen Security Advisory 97]({ADVISORY_URL}): non-preemptible virtual-MMU "
                f"operations on x86 HVM guests ({CVE_HAP} with HAP, {CVE_SHADOW} with shadow "
                f"paging). A guest is affected when one operation can hold a physical CPU for "
                f"longer than the budget of {budget} ms.",
            ]
        else:
            ids = reported_ids(report)
            out = [
                f"# Xen advisory audit ({', '.join(md(i) for i in ids)}): {s.affected} of "
                f"{s.guests} guests affected",
                "",
                f"Narrowed to {', '.join(_link(i) for i in ids)}. A guest is affected when one "
                "of them is: an operation can hold a physical CPU for longer than the budget "
                f"of {budget} ms, or has no bound, or corrupts memory; the verdict shown is "
                "the guest's worst of these advisories.",
            ]
        out += [
            "",
            "## Host",
            "",
            _row(("Fact", "Value")),
            _row(("---", "---")),
            _row(("xenvmmu", md(tool_version(report)))),
            _row(("latency budget", f"{budget} ms")),
        ]
        for key, value in host_facts(report).items():
            out.append(_row((md(key), md(_fact(value)))))
        counts = advisory_counts(report)
        if counts:
            guests, suppressed = suppressed_counts(report)
            extra = ("Suppressed",) if guests else ()
            out += ["", "## Advisories", "", _row((*ADVISORY_COLUMNS, *extra)),
                    _row((*ADVISORY_ALIGN, *("---:" for _ in extra)))]
            for advisory_id, n in counts:
                title, cves, _ = advisory_facts(advisory_id)
                out.append(_row((_link(advisory_id), md(", ".join(cves)) or "-",
                                 md(title) or "-", *(str(n[v]) for v in VERDICTS),
                                 *(str(suppressed[advisory_id]) for _ in extra))))
        out += ["", "## Guests", ""]
        return out

    def _cells(self, f: Finding, head: Headline) -> list[str]:
        return [
            md(display_name(f)),
            md(f.source.path),
            f.guest_type or "?",
            f.paging or "-",
            format_int(f.memory_mib),
            format_mib(f.pool_kib),
            yes_no(head.fixed),
            "unbounded" if head.unbounded else format_ms(head.worst_case_ms),
            _verdict_cell(head.verdict, head.suppressed),
            head.severity,
        ]

    def _section(self, f: Finding, head: Headline, related: tuple[OpStall, ...],
                 audit: AuditStream) -> list[str]:
        ref = head.decisive
        where = md(ref.path) + ("" if ref.line is None else f" line {ref.line}")
        if ref.key:
            where += f" ({md(ref.key)})"
        title = f"## {md(display_name(f))}: {verdict_label(head.verdict)}"
        if head.verdict == "affected":
            title += f" ({head.severity})"
        out = [title, "", f"- Decided by: {where}"]
        if head.xsa97 and f.suppressed is not None:
            out.append(f"- Suppressed by the operator: {md(f.suppressed)}")
        if head.xsa97:
            if f.cve:
                out.append(f"- CVE: {f.cve}")
            out.append(
                f"- Worst-case non-preemptible section: {format_ms(f.worst_case_ms)} ms; "
                f"Xen {md(f.xen_version or '?')}, XSA-97 fix: {yes_no(f.xsa97_fixed)}"
            )
        else:
            if head.advisory is not None:
                out.append(f"- Worst advisory: {_link(head.advisory)}")
            out.append(f"- Xen {md(f.xen_version or '?')}")
        shown = head.xsa97 or head.advisory is None  # an advisory's reasons are in its table
        if shown and head.reasons and (self.verbose or head.verdict != "not_affected"):
            out += ["", "Reasons:", ""] + [f"- {md_item(r)}" for r in head.reasons]
        if related:
            out += ["", "Related findings (outside the verdict):", ""]
            out += [f"- {md_item(related_text(op, related_severity(op, audit)))}"
                    for op in related]
        if head.xsa97 and f.mitigations:
            out += ["", "Mitigations, cheapest first:", ""]
            for i, m in enumerate(f.mitigations, 1):
                out.append(f"{i}. {md_item(m.text)} (`{m.action}`)")
        advisories = guest_advisories(f, audit, xsa97=True)
        if advisories:
            out += ["", "Advisories:", "", _row(GUEST_ADVISORY_COLUMNS),
                    _row(("---",) * len(GUEST_ADVISORY_COLUMNS))]
            out += [_row(_advisory_cells(a)) for a in advisories]
            notes = [a for a in advisories if a.verdict == "unknown" or self.verbose]
            marks = [a for a in advisories if a.suppressed is not None]
            if notes or marks:
                out.append("")
            for a in notes:
                why = "; ".join(a.reasons) or "no reason recorded"
                lead = "could not be assessed: " if a.verdict == "unknown" else ""
                out.append(f"- {_link(a.id)}: {lead}{md(why)}")
            out += [f"- {_link(a.id)}: suppressed by the operator: {md(a.suppressed or '')}"
                    for a in marks]
        return out


def _verdict_cell(verdict: Verdict, suppressed: str | None) -> str:
    """A verdict in a table: affected in bold, ``(suppressed)`` after a suppressed one."""
    label = verdict_label(verdict)
    cell = f"**{label}**" if verdict == "affected" else label
    return cell if suppressed is None else f"{cell} (suppressed)"


def _advisory_cells(a: AdvisoryFinding) -> tuple[str, ...]:
    figure = advisory_figure(a)
    return (
        _link(a.id),
        md(", ".join(a.cves)) or "-",
        a.impact,
        _verdict_cell(a.verdict, a.suppressed),
        a.severity,
        md(figure),
        yes_no(a.fixed),
        md(a.mitigations[0]) if a.mitigations else "-",
    )


def _fact(value: object) -> str:
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, list):
        return ", ".join(_fact(v) for v in value)
    return "?" if value is None else str(value)
