"""``--format table`` (the default): a fixed-width report for a terminal.

One row per guest (WORST ms is the longest non-preemptible section from the low to the high
end of the cost ranges; the verdict uses the high end; SOURCE is the shortest end of the
guest's path that tells it apart from every other input, so two ``web.cfg`` in different
directories show as ``a/web.cfg`` and ``b/web.cfg``), a legend for FIXED, then what to do
about each affected or unknown guest (its reasons, its related findings and its mitigations:
``verbose`` gives the reasons of every guest), the related findings of the other guests (an
operation outside the verdict that this release does not preempt and that reaches the
budget, such as an XSA-410 p2m teardown), the inputs that could not be read, and a one-line
summary. Under each guest, its other advisories (``Finding.advisories``) that are affected
(verdict, severity, range or ``unbounded``, ``integrity impact`` for a memory corruption,
CVEs, fix, mitigations) or unknown (with what is missing); ``verbose``: every one, with its
reasons. A line per reported advisory with its counts precedes the summary line.

A finding the operator suppressed (``--suppress``) keeps its verdict and is marked: its
advisory's line says ``suppressed (<reason> (FILE:line))`` instead of the fixes, as does a
suppressed XSA-97 verdict (its guest line ends ``, suppressed``, and a ``suppressed:`` line
replaces its fixes); the count line of an advisory adds ``, N suppressed``.
``summary_only`` gives the fleet summary instead: counts per verdict, severity, release and
advisory, and the ten worst guests.

``--advisory`` without XSA-97: the row's FIXED, WORST ms, VERDICT and SEVERITY are the
guest's worst reported advisory's (:func:`~xenvmmu.audit.format.base.headline`), and no
XSA-97 reason, fix or related operation is written.

With ``width`` the table is fitted to that many columns: the least needed columns are left
out (POOL MiB, TYPE, MEM MiB, FIXED), then long guest names are cut at the end and paths at
the start (``…``), and a line says what was left out; detail lines are wrapped. Plain
text unless ``color=True``; control characters in names are shown as escapes and wide (East
Asian) characters count as two columns, so the columns stay aligned.

The rows are written to a temporary file as the guests come and the table is written from it
at the end, when the column widths are known: memory does not grow with the fleet.
"""

from __future__ import annotations

import textwrap
import unicodedata
from typing import IO, TextIO

from xenvmmu.audit.findings import AuditStream, Finding, OpStall, Verdict
from xenvmmu.audit.format.base import (
    ADVISORY,
    SEVERITIES,
    Formatter,
    Headline,
    Headlines,
    Tally,
    advisory_counts,
    advisory_text,
    copy_spool,
    display_name,
    format_int,
    format_mib,
    format_ms_range,
    guest_advisories,
    looks_needed,
    needs_look,
    one_line,
    register,
    related_severity,
    related_text,
    reported_ids,
    reported_related,
    reports,
    shortest_unique_suffixes,
    spool,
    summary_line,
    suppressed_counts,
    verdict_label,
    yes_no,
)

HEADER = (
    "GUEST", "SOURCE", "TYPE", "PAGING", "MEM MiB", "POOL MiB", "FIXED", "WORST ms", "VERDICT",
    "SEVERITY",
)
#: columns holding numbers are right-aligned
NUMERIC = frozenset({"MEM MiB", "POOL MiB", "WORST ms"})
#: what a narrow terminal loses first
DROP_ORDER = ("POOL MiB", "TYPE", "MEM MiB", "FIXED")
#: how far long names and paths may be cut (terminal columns)
MIN_WIDTH = {"GUEST": 12, "SOURCE": 12}
WORST_COLUMNS = ("GUEST", "SOURCE", "PAGING", "WORST ms", "VERDICT", "SEVERITY")
WORST_GUESTS = 10
LEGEND = (
    "FIXED: whether the release has the xsa97-hap fix (the HAP log-dirty walk made "
    "preemptible: 4.3.4, 4.4.2, 4.5.0 and later, or --patched xsa97-hap; ? unknown). No "
    "release fixes shadow paging (CVE-2014-5149)."
)
#: the legend of a run that does not report XSA-97 (``{}``: the advisories it reports)
LEGEND_NARROWED = (
    "FIXED, WORST ms, VERDICT, SEVERITY: the guest's worst advisory among those reported "
    "({}); FIXED: whether this release has its fix (? unknown, or no reported advisory "
    "concerns the guest)."
)
ELLIPSIS = "…"

_COLORS: dict[Verdict, str] = {"affected": "31", "not_affected": "32", "unknown": "33"}
_VERDICT: dict[str, Verdict] = {v: v for v in _COLORS}
_LABELS: dict[str, Verdict] = {verdict_label(v): v for v in _COLORS}
_SOURCE = HEADER.index("SOURCE")


class _Blocks:
    """Parts of the output separated by one blank line."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = False

    def start(self) -> None:
        if self.started:
            self.out.write("\n")
        self.started = True


@register
class TableFormatter(Formatter):
    """Fixed-width table for people at a terminal."""

    name = "table"
    description = "fixed-width table for a terminal (default)"
    options = frozenset({"verbose", "summary_only", "width", "color"})

    def write(self, audit: AuditStream, out: TextIO) -> None:
        """The table, the legend, the per-guest details, the input errors and the summary
        line (or, with ``summary_only``, the fleet summary)."""
        widths = [_width(title) for title in HEADER]
        paths: set[str] = set()
        tally = Tally(keep=WORST_GUESTS)
        heads = Headlines(audit)
        with spool() as rows, spool() as details:
            for f in audit:
                head = heads(f)
                row = self._row(f, head)
                paths.add(row[_SOURCE])
                related = tuple(op for op, _ in reported_related(f, audit))
                tally.add(f, head, row, bool(related))
                if self.summary_only:
                    continue
                for i, cell in enumerate(row):
                    if i != _SOURCE:
                        w = len(cell) if cell.isascii() else _width(cell)
                        if w > widths[i]:
                            widths[i] = w
                rows.write(f"{head.verdict}\t" + "\t".join(row) + "\n")
                if self.verbose or related or looks_needed(f, head, audit):
                    details.write("\n".join(self._details(f, head, related, audit)) + "\n")
            suffix = shortest_unique_suffixes(paths)
            del paths
            if self.summary_only:
                self._summary(audit, tally, heads, suffix, out)
                return
            blocks = _Blocks(out)
            if audit.guests:
                widths[_SOURCE] = max([widths[_SOURCE], *(_width(s) for s in suffix.values())])
                self._table(rows, widths, suffix, blocks, audit)
            if details.tell():
                blocks.start()
                copy_spool(details, out)
        if audit.errors:
            blocks.start()
            out.write("Input errors:\n")
            for err in audit.errors:
                where = err.path if err.line is None else f"{err.path}:{err.line}"
                out.write(f"  {one_line(where)}: {one_line(err.message)}\n")
        blocks.start()
        lines = [*self._advisory_lines(audit), summary_line(audit, heads.counts)]
        out.write("".join(line + "\n" for line in lines))

    # --- the table --------------------------------------------------------------------------

    def _row(self, f: Finding, head: Headline) -> tuple[str, ...]:
        return (
            one_line(display_name(f)),
            one_line(f.source.path),
            f.guest_type or "?",
            f.paging or "-",
            format_int(f.memory_mib),
            format_mib(f.pool_kib),
            yes_no(head.fixed),
            "unbounded" if head.unbounded
            else format_ms_range(head.worst_case_ms_low, head.worst_case_ms),
            verdict_label(head.verdict),
            head.severity,
        )

    def _table(self, rows: IO[str], widths: list[int], suffix: dict[str, str],
               blocks: _Blocks, audit: AuditStream) -> None:
        out = blocks.out
        shown, fitted, note = self._fit(HEADER, widths)
        blocks.start()
        out.write(self._line(HEADER, shown, fitted, None) + "\n")
        rows.flush()
        rows.seek(0)
        for text in rows:
            verdict, *cells = text[:-1].split("\t")
            cells[_SOURCE] = suffix.get(cells[_SOURCE], cells[_SOURCE])
            out.write(self._line(cells, shown, fitted, _VERDICT[verdict]) + "\n")
        legend = [note] if note else []
        if HEADER.index("FIXED") in shown:
            legend.append(LEGEND if reports(audit, ADVISORY)
                          else LEGEND_NARROWED.format(", ".join(reported_ids(audit))))
        if legend:
            blocks.start()
            out.write("".join(self._wrap(line, "", "  ") + "\n" for line in legend))

    def _fit(self, titles: tuple[str, ...], widths: list[int]
             ) -> tuple[list[int], list[int], str]:
        """Which columns to show (indices) and their widths, fitted to ``self.width``, and
        a line saying what was left out or cut ("" when nothing was). In order, until it
        fits: leave out POOL MiB, TYPE, MEM MiB, FIXED (the same for every guest of a host),
        then cut names and paths (no shorter than :data:`MIN_WIDTH`): a name is what tells
        the rows apart."""
        everything = list(range(len(titles)))
        if self.width is None:
            return everything, list(widths), ""
        drops = [titles.index(t) for t in DROP_ORDER if t in titles]
        states = [(drops[:n], False) for n in range(len(drops) + 1)] + [(drops, True)]
        for dropped, may_cut in states:
            shown = [i for i in everything if i not in dropped]
            fitted = self._shrink(titles, widths, shown, may_cut)
            if sum(fitted[i] for i in shown) + 2 * (len(shown) - 1) <= self.width:
                break
        cut = fitted != widths
        if not (cut or dropped):
            return shown, fitted, ""
        what = []
        if dropped:
            what.append(", ".join(titles[i] for i in dropped) + " left out")
        if cut:
            what.append(f"names and paths cut ({ELLIPSIS})")
        return shown, fitted, (f"(fitted to {self.width} columns: {'; '.join(what)}; --wide "
                               "shows everything)")

    def _shrink(self, titles: tuple[str, ...], widths: list[int], shown: list[int],
                may_cut: bool) -> list[int]:
        """``widths`` with the widest of the name and path columns narrowed one column at a
        time until the shown columns fit (or reach their minimum)."""
        fitted = list(widths)
        if not may_cut:
            return fitted
        assert self.width is not None
        excess = sum(fitted[i] for i in shown) + 2 * (len(shown) - 1) - self.width
        names = [i for i in shown if titles[i] in MIN_WIDTH]
        while excess > 0:
            can = [i for i in names if fitted[i] > max(MIN_WIDTH[titles[i]], _width(titles[i]))]
            if not can:
                break
            fitted[max(can, key=lambda i: fitted[i])] -= 1
            excess -= 1
        return fitted

    def _line(self, cells: tuple[str, ...] | list[str], shown: list[int], widths: list[int],
              verdict: Verdict | None, titles: tuple[str, ...] = HEADER) -> str:
        parts = []
        for i in shown:
            title, cell, width = titles[i], cells[i], widths[i]
            w = len(cell) if cell.isascii() else _width(cell)
            if w > width:
                cell = _cut(cell, width, keep_end=title == "SOURCE")
                w = _width(cell)
            pad = " " * (width - w)
            if verdict is not None and title == "VERDICT":
                cell = self._paint(cell, verdict)
            parts.append(pad + cell if title in NUMERIC else cell + pad)
        return "  ".join(parts).rstrip()

    # --- details ----------------------------------------------------------------------------

    def _details(self, f: Finding, head: Headline, related: tuple[OpStall, ...],
                 audit: AuditStream) -> list[str]:
        ref = head.decisive
        where = ref.path if ref.line is None else f"{ref.path}:{ref.line}"
        if ref.key:
            where += f", {ref.key}"
        line = (f"{one_line(display_name(f))}: "
                f"{self._paint(verdict_label(head.verdict), head.verdict)}")
        if head.verdict == "affected":
            line += f", {head.severity}"
        if head.xsa97 and f.cve and f.verdict != "not_affected":
            line += f", {f.cve}"
        elif not head.xsa97 and head.advisory is not None:
            line += f", {head.advisory}"
        if head.suppressed is not None:
            line += ", suppressed"
        out = [f"{line} ({one_line(where)})"]
        own = head.xsa97 or head.advisory is None  # an advisory's reasons are on its line
        if own and (self.verbose or head.verdict != "not_affected"):
            out += [self._wrap(one_line(reason), "  - ", "    ") for reason in head.reasons]
        for op in related:
            text = related_text(op, related_severity(op, audit))
            out.append(self._wrap(one_line(text), "  related: ", "    "))
        if head.xsa97 and f.suppressed is not None:
            out.append(self._wrap(one_line(f.suppressed), "  suppressed: ", "    "))
        elif head.xsa97:
            for i, mitigation in enumerate(f.mitigations, 1):
                out.append(self._wrap(f"{one_line(mitigation.text)} [{mitigation.action}]",
                                      f"  fix {i}: ", "    "))
        for adv in guest_advisories(f, audit):  # the other advisories this guest meets
            if not (self.verbose or needs_look(adv)):
                continue
            out.append(self._wrap(one_line(advisory_text(adv)), f"  {adv.id}: ", "    "))
            if self.verbose:
                out += [self._wrap(one_line(r), "    - ", "      ") for r in adv.reasons]
        return out

    def _wrap(self, text: str, first: str, later: str) -> str:
        if self.width is None or _width(first + text) <= self.width:
            return first + text
        return textwrap.fill(text, self.width, initial_indent=first, subsequent_indent=later,
                             break_long_words=False, break_on_hyphens=False)

    # --- summary ----------------------------------------------------------------------------

    def _summary(self, audit: AuditStream, tally: Tally, heads: Headlines,
                 suffix: dict[str, str], out: TextIO) -> None:
        v, s = tally.verdicts, tally.severities
        lines = [
            f"Verdicts:    {v['affected']} affected, {v['not_affected']} not affected, "
            f"{v['unknown']} unknown",
            "Severities:  " + ", ".join(f"{s.get(k, 0)} {k}" for k in SEVERITIES),
            "Releases:    " + (", ".join(f"Xen {one_line(r)}: {n}" for r, n in
                                         sorted(tally.releases.items())) or "none"),
            f"Related:     {tally.related} guest{'' if tally.related == 1 else 's'} with a "
            "related finding (an operation outside the verdict that reaches the budget; "
            "listed without --summary)",
            *self._advisory_lines(audit),
            f"Input errors: {len(audit.errors)}",
        ]
        out.write("\n".join(self._wrap(line, "", "             ") for line in lines) + "\n")
        worst = tally.worst()
        if worst:
            out.write(f"\nThe {len(worst)} worst guest{'s' if len(worst) > 1 else ''}:\n")
            pick = [HEADER.index(t) for t in WORST_COLUMNS]
            rows = [tuple(r[i] for i in pick) for r in worst]
            rows = [(r[0], suffix.get(r[1], r[1]), *r[2:]) for r in rows]
            widths = [max(_width(c) for c in column)
                      for column in zip(WORST_COLUMNS, *rows, strict=True)]
            shown, fitted, _ = self._fit(WORST_COLUMNS, widths)
            out.write(self._line(WORST_COLUMNS, shown, fitted, None, WORST_COLUMNS) + "\n")
            for r in rows:
                out.write(self._line(r, shown, fitted, _LABELS[r[4]], WORST_COLUMNS) + "\n")
        out.write("\n" + summary_line(audit, heads.counts) + "\n")

    def _advisory_lines(self, audit: AuditStream) -> list[str]:
        """``XSA-344:     2 affected, 5 not affected, 0 unknown`` per reported advisory (and
        ``, 1 suppressed`` when the operator suppressed some)."""
        _, suppressed = suppressed_counts(audit)
        return [f"{advisory_id + ':':<12} {n['affected']} affected, {n['not_affected']} not "
                f"affected, {n['unknown']} unknown"
                + (f", {suppressed[advisory_id]} suppressed" if suppressed[advisory_id] else "")
                for advisory_id, n in advisory_counts(audit)]

    def _paint(self, text: str, verdict: Verdict) -> str:
        if not self.color:
            return text
        return f"\x1b[{_COLORS[verdict]}m{text}\x1b[0m"


def _width(text: str) -> int:
    """Terminal columns ``text`` takes: wide characters 2, combining marks 0."""
    if text.isascii():
        return len(text)
    width = 0
    for c in text:
        if unicodedata.combining(c):
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width


def _cut(text: str, width: int, *, keep_end: bool) -> str:
    """``text`` cut to ``width`` columns with an ellipsis (at the start with ``keep_end``)."""
    chars = list(reversed(text)) if keep_end else list(text)
    kept: list[str] = []
    used = _width(ELLIPSIS)
    for c in chars:
        w = _width(c)
        if used + w > width:
            break
        kept.append(c)
        used += w
    return ELLIPSIS + "".join(reversed(kept)) if keep_end else "".join(kept) + ELLIPSIS
