"""``--format csv``: one row per guest, for spreadsheets and scripts.

The first row names the columns; then one row per guest, in the report's order. The columns
are stable: within this version they keep their names, order and meaning, and new columns are
only ever added at the end (read them by name, not by position):

=====================  =============================================================================
column                 value
=====================  =============================================================================
source                 the file the guest was read from, as given (``xl list -l`` for ``--live``)
name                   the guest's name (empty when it has none)
type                   ``hvm``, ``pv`` or ``pvh`` (empty when unknown)
paging                 ``hap`` or ``shadow`` (empty: no HVM paging mode, or unknown)
memory_mib             memory at boot, MiB
maxmem_mib             maximum memory, MiB
vcpus                  vCPUs at boot
pool_kib               the paging pool, KiB
xen_version            the host's Xen version
xsa97_fixed            ``true``/``false``: the release preempts the HAP log-dirty walk
cve                    the CVE whose vulnerable code the host still runs for this guest
worst_case_ms_low      longest non-preemptible section, low end of the cost ranges, ms
worst_case_ms          the same at the high end (verdicts and severities use it), ms
verdict                ``affected``, ``not_affected`` or ``unknown``
severity               ``critical``, ``high``, ``medium`` or ``none``
worst_operation        the operation with the longest section among those the verdict covers
worst_operation_ms     that operation's section (high end), ms
residual               ``true`` when that operation is a residual finding (not the CVE's code)
first_mitigation       the cheapest fix's id (``pv``, ``hap_on``, ``shrink``, ``shadow_memory``,
                       ``upgrade``, ``patch``, ``restrict``)
first_mitigation_text  the cheapest fix in words
mitigations            every fix's id, cheapest first, separated by spaces
line                   the line of the setting that decides, in the guest's own file
decisive_key           that setting (``hap``, ``memory``, ``maxmem``, ``shadow_memory``...)
reasons                every reason, separated by `` | ``
advisories             every registry advisory the guest meets, ``XSA-N:verdict``, separated
                       by spaces (``XSA-97:affected XSA-344:not_affected ...``)
suppressed             the advisories whose verdict the operator suppressed for the guest
                       (``--suppress``; ``XSA-97`` for its guest verdict), separated by spaces
=====================  =============================================================================

``--advisory`` without XSA-97 narrows the guest-level columns to the guest's worst reported
advisory (:func:`~xenvmmu.audit.format.base.headline`): ``verdict``, ``severity``,
``worst_case_ms_low``/``worst_case_ms`` (empty for an unbounded one), ``worst_operation`` and
``worst_operation_ms`` (its longest operation), ``first_mitigation_text``, ``line``,
``decisive_key`` and ``reasons`` are that advisory's, and the XSA-97 columns
(``xsa97_fixed``, ``cve``, ``residual``, ``first_mitigation``, ``mitigations``) are empty.

An unknown value is an empty cell; numbers are written as in the JSON format (``774.0``,
``65536``). Quoting is the ``csv`` module's (minimal: a cell holding a comma, a quote or a line
break is quoted, quotes doubled); lines end with ``\\n``; the text is UTF-8. Cells never hold
control characters: a guest name with a newline or an escape sequence is written with
visible escapes, as the table writes it, so every guest is one line. A text cell that a
spreadsheet would read as a formula (beginning with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return: a guest's owner chooses its name) gets a leading ``'``, as OWASP advises
against CSV injection. The input errors and the summary are not rows: the command prints
their counts on stderr (``--format json`` has them all).
"""

from __future__ import annotations

import csv
from typing import TextIO

from xenvmmu.audit.findings import AuditReport, AuditStream, Finding
from xenvmmu.audit.format.base import (
    Formatter,
    Headline,
    decisive_line,
    finite,
    first_mitigation,
    guest_advisories,
    guest_facts,
    headline,
    one_line,
    register,
    suppressed_ids,
)

#: The columns, in order (documented in the module docstring; add new ones at the end only).
COLUMNS: tuple[str, ...] = (
    "source", "name", "type", "paging", "memory_mib", "maxmem_mib", "vcpus", "pool_kib",
    "xen_version", "xsa97_fixed", "cve", "worst_case_ms_low", "worst_case_ms", "verdict",
    "severity", "worst_operation", "worst_operation_ms", "residual", "first_mitigation",
    "first_mitigation_text", "mitigations", "line", "decisive_key", "reasons", "advisories",
    "suppressed",
)
REASON_SEPARATOR = " | "
#: What a spreadsheet takes for the start of a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | bool | None


@register
class CsvFormatter(Formatter):
    """Comma-separated values, one row per guest."""

    name = "csv"
    description = "CSV, one row per guest (stable columns)"

    def write(self, audit: AuditStream, out: TextIO) -> None:
        """The header row, then one row per guest as the findings come (nothing kept)."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for finding in audit:
            row = row_for(finding, audit)
            writer.writerow([_cell(row[column]) for column in COLUMNS])


#: a run that reports every advisory
_EVERYTHING = AuditReport(findings=())


def row_for(f: Finding, audit: AuditReport | AuditStream = _EVERYTHING) -> dict[str, Cell]:
    """One guest's values by column, before they are written as text (``audit``: the run,
    for the advisories it reports)."""
    head = headline(f, audit)
    worst, worst_ms, residual = _worst_op(f, head)
    own = head.xsa97
    fix = first_mitigation(f) if own else None
    fix_text = fix.text if fix else None
    if head.finding is not None and head.finding.mitigations:
        fix_text = head.finding.mitigations[0]
    return {
        "source": f.source.path,
        **guest_facts(f, own),
        "worst_case_ms_low": None if head.unbounded else finite(head.worst_case_ms_low),
        "worst_case_ms": None if head.unbounded else finite(head.worst_case_ms),
        "verdict": head.verdict,
        "severity": head.severity,
        "worst_operation": worst,
        "worst_operation_ms": None if head.unbounded else finite(worst_ms),
        "residual": residual,
        "first_mitigation": fix.action if fix else None,
        "first_mitigation_text": fix_text,
        "mitigations": (" ".join(m.action for m in f.mitigations) or None) if own else None,
        "line": decisive_line(f, head.decisive),
        "decisive_key": head.decisive.key,
        "reasons": REASON_SEPARATOR.join(head.reasons) or None,
        "advisories": " ".join(f"{a.id}:{a.verdict}"
                               for a in guest_advisories(f, audit, xsa97=True)) or None,
        "suppressed": " ".join(suppressed_ids(f, audit)) or None,
    }


def _worst_op(f: Finding, head: Headline) -> tuple[str | None, float | None, bool | None]:
    """The operation with the longest section among those the verdict covers (XSA-97's, or
    the headline advisory's: from the guest's operations, else the advisory's one operation
    and figure), its section, and (XSA-97) whether it is a residual finding."""
    if head.xsa97:
        ops = [o for o in f.ops if not o.related]
    elif head.finding is not None:
        ops = [o for o in f.ops if o.op in head.finding.operations]
        if not ops and len(head.finding.operations) == 1:
            return head.finding.operations[0], head.worst_case_ms, None
    else:
        ops = []
    if not ops:
        return None, None, None
    worst = max(ops, key=lambda o: o.worst_case_ms)
    return worst.op, worst.worst_case_ms, worst.residual if head.xsa97 else None


def _cell(value: Cell) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = one_line(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
