"""The HTML report: the whole picture in one self-contained file.

One page with the fleet summary, the audit table ordered by severity, each guest's reasons,
operations and mitigations, the figures, the sweep, the cost profiles used with the source
of every price, the tool version and the sha256 of every input.

Self-contained means: CSS inline, figures as ``data:`` URIs (SVG), no script, nothing
fetched - a Content-Security-Policy in the page forbids any other resource, so the file
reads the same offline, attached to a ticket or archived. Every string that comes from an
input (guest names, paths, messages, cost sources...) goes through :func:`esc`
(``html.escape`` after :func:`~xenvmmu.audit.findings.clean_text`), so a hostile name can
neither add markup nor break the page.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .. import __version__
from ..audit.findings import AuditReport, Finding, clean_text
from ..audit.format.base import (
    ADVISORY_URL,
    CVE_HAP,
    CVE_SHADOW,
    display_name,
    format_int,
    format_mib,
    format_ms,
    host_facts,
    summarize,
    verdict_label,
    yes_no,
)
from .costspec import CostSpec
from .digests import Digest
from .grid import size_label
from .plots import Figure
from .store import SweepData

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "none": 3}
VERDICT_ORDER = {"affected": 0, "unknown": 1, "not_affected": 2}
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --fg: #1d2330; --muted: #5b6473; --line: #d8dde6; --bg: #ffffff; --soft: #f4f6f9;
  --critical: #8b0000; --high: #c0392b; --medium: #d68910; --none: #7f8c8d; --ok: #1e8449;
  --unknown: #6c3483; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 1180px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px;
  border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
.meta, .note, figcaption { color: var(--muted); }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: var(--soft); } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .path { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 12px; word-break: break-all; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px;
  background: var(--soft); }
.card b { display: block; font-size: 22px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; color: #fff;
  font-size: 12px; font-weight: 600; white-space: nowrap; }
.sev-critical { background: var(--critical); } .sev-high { background: var(--high); }
.sev-medium { background: var(--medium); } .sev-none { background: var(--none); }
.v-affected { color: var(--high); font-weight: 600; } .v-unknown { color: var(--unknown); }
.v-not_affected { color: var(--ok); }
.guest { border: 1px solid var(--line); border-radius: 6px; padding: 4px 14px 10px;
  margin: 12px 0; }
figure { margin: 16px 0; } figure img { max-width: 100%; height: auto;
  border: 1px solid var(--line); }
details summary { cursor: pointer; color: var(--muted); }
"""


def esc(value: object) -> str:
    """Text from anywhere as HTML text or attribute value."""
    return html.escape(clean_text(str(value)), quote=True)


@dataclass(frozen=True)
class ReportInput:
    """Everything one report shows. ``audit`` is ``None`` for a sweep-only report;
    ``costs``: the cost profiles to list (the audit's first); ``notes``: sentences to show
    near the top (a missing extra, an omitted part)."""

    title: str
    audit: AuditReport | None
    sweep: SweepData | None
    figures: Sequence[Figure]
    costs: Sequence[CostSpec]
    digests: Sequence[Digest]
    generated: datetime | None = None
    notes: Sequence[str] = field(default_factory=tuple)


def ordered_findings(findings: Iterable[Finding]) -> list[Finding]:
    """By severity (critical first), verdict (affected, unknown, not affected), worst case
    (largest first), then name."""
    return sorted(findings, key=lambda f: (
        SEVERITY_ORDER.get(f.severity, 9), VERDICT_ORDER.get(f.verdict, 9),
        -(f.worst_case_ms or 0.0), display_name(f)))


def render(data: ReportInput) -> str:
    """The whole HTML document."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{esc(data.title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        *_header(data),
        *_nav(data),
    ]
    order = ordered_findings(data.audit.findings) if data.audit else []
    if data.audit is not None:
        parts += _summary(data.audit, order)
        parts += _table(order)
        parts += _guests(order)
        parts += _errors(data.audit)
    parts += _figures(data.figures)
    if data.sweep is not None:
        parts += _sweep(data.sweep)
    parts += _costs(data.costs)
    parts += _digests(data.digests)
    parts += [
        '<p class="note">The milliseconds come from xenvmmu\'s cost model (work counted by '
        "the paging model, priced in nanoseconds per unit), not from measurements of these "
        "hosts.</p>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


# --- sections ---------------------------------------------------------------------------------


def _header(data: ReportInput) -> list[str]:
    when = f", generated {esc(data.generated.isoformat())}" if data.generated else ""
    out = [
        f"<h1>{esc(data.title)}</h1>",
        f'<p class="meta">xenvmmu {esc(__version__)}{when}. '
        f'<a href="{ADVISORY_URL}">Xen Security Advisory 97</a>: non-preemptible '
        f"virtual-MMU operations on x86 HVM guests ({CVE_HAP} with HAP, {CVE_SHADOW} with "
        "shadow paging).</p>",
    ]
    out += [f'<p class="note">{esc(n)}</p>' for n in data.notes]
    return out


def _nav(data: ReportInput) -> list[str]:
    links = []
    if data.audit is not None:
        links += [("summary", "Summary"), ("audit", "Audit"), ("guests", "Guests")]
        if data.audit.errors:
            links.append(("errors", "Input errors"))
    if data.figures:
        links.append(("figures", "Figures"))
    if data.sweep is not None:
        links.append(("sweep", "Sweep"))
    links += [("costs", "Cost profile"), ("inputs", "Inputs")]
    items = "".join(f'<li><a href="#{a}">{t}</a></li>' for a, t in links)
    return [f"<nav><ul>{items}</ul></nav>"]


def _summary(report: AuditReport, order: Sequence[Finding]) -> list[str]:
    s = summarize(report)
    by_sev = {sev: sum(1 for f in order if f.verdict == "affected" and f.severity == sev)
              for sev in ("critical", "high", "medium")}
    cards = [("guests", s.guests), ("affected", s.affected),
             ("critical", by_sev["critical"]), ("high", by_sev["high"]),
             ("medium", by_sev["medium"]), ("unknown", s.unknown),
             ("not affected", s.not_affected), ("input errors", s.errors)]
    out = ['<h2 id="summary">Fleet summary</h2>', '<div class="cards">']
    out += [f'<div class="card"><b>{n}</b>{t}</div>' for t, n in cards]
    out.append("</div>")
    worst = next((f for f in order if f.verdict == "affected"), None)
    if worst is not None:
        out.append(f"<p>Worst: <a href=\"#guest-{order.index(worst)}\">"
                   f"{esc(display_name(worst))}</a>, one operation can hold a CPU for "
                   f"{esc(format_ms(worst.worst_case_ms))} ms ({esc(worst.severity)}).</p>")
    out.append(f"<p>Latency budget: {report.budget_ms:g} ms. Input files read: "
               f"{report.inputs_read}.</p>")
    out += ["<h3>Host</h3>", "<table>", "<tr><th>Fact</th><th>Value</th></tr>"]
    for key, value in host_facts(report).items():
        out.append(f"<tr><td>{esc(key)}</td><td>{esc(_fact(value))}</td></tr>")
    out.append("</table>")
    return out


AUDIT_COLUMNS = ("Guest", "Source", "Type", "Paging", "Max memory", "vCPUs", "Pool MiB",
                 "Worst case ms", "Verdict", "Severity", "CVE", "Cheapest fix")


def _table(order: Sequence[Finding]) -> list[str]:
    out = ['<h2 id="audit">Audit, by severity</h2>']
    if not order:
        return [*out, "<p>No guests were audited.</p>"]
    out += ["<table>", "<tr>" + "".join(f"<th>{c}</th>" for c in AUDIT_COLUMNS) + "</tr>"]
    for i, f in enumerate(order):
        fix = f.mitigations[0].text if f.mitigations else ""
        cells = [
            f'<td><a href="#guest-{i}">{esc(display_name(f))}</a></td>',
            f'<td class="path">{esc(_where(f))}</td>',
            f"<td>{esc(f.guest_type or '?')}</td>",
            f"<td>{esc(f.paging or '-')}</td>",
            f'<td class="num">{esc(_mib(f.maxmem_mib))}</td>',
            f'<td class="num">{esc(format_int(f.vcpus))}</td>',
            f'<td class="num">{esc(format_mib(f.pool_kib))}</td>',
            f'<td class="num">{esc(format_ms(f.worst_case_ms))}</td>',
            f'<td class="v-{esc(f.verdict)}">{esc(verdict_label(f.verdict))}</td>',
            f"<td>{_badge(f.severity)}</td>",
            f"<td>{esc(f.cve or '')}</td>",
            f"<td>{esc(fix)}</td>",
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return out


def _guests(order: Sequence[Finding]) -> list[str]:
    out = ['<h2 id="guests">Guests</h2>']
    for i, f in enumerate(order):
        out += [f'<section class="guest" id="guest-{i}">',
                f"<h3>{esc(display_name(f))} {_badge(f.severity)} "
                f'<span class="v-{esc(f.verdict)}">{esc(verdict_label(f.verdict))}</span></h3>',
                f'<p class="meta">From <span class="path">{esc(_where(f))}</span>; Xen '
                f"{esc(f.xen_version or '?')}, XSA-97 fix: {esc(yes_no(f.xsa97_fixed))}; "
                f"{esc(f.guest_type or '?')}, {esc(f.paging or 'no')} paging, max memory "
                f"{esc(_mib(f.maxmem_mib))}, worst case {esc(format_ms(f.worst_case_ms))} ms"
                f"{'; ' + esc(f.cve) if f.cve else ''}.</p>"]
        if f.decisive is not None:
            d = f.decisive
            line = "" if d.line is None else f" line {d.line}"
            key = "" if not d.key else f" (<code>{esc(d.key)}</code>)"
            out.append(f'<p>Decided by: <span class="path">{esc(d.path)}</span>'
                       f"{line}{key}</p>")
        out += _list("Why", f.reasons, ordered=False)
        out += _list("Paging mode", [r for r in f.paging_reasons if r not in f.reasons],
                     ordered=False)
        if f.ops:
            out += ["<table>", "<tr><th>Operation</th><th>Started by</th><th>Sized by</th>"
                    "<th>Preemptible</th><th>Worst case ms</th><th>Covered by</th></tr>"]
            for op in f.ops:
                tags = [t for t, on in (("related", op.related), ("residual", op.residual)) if on]
                name = esc(op.op) + (f" <em>({esc(', '.join(tags))})</em>" if tags else "")
                out.append(
                    f"<tr><td><code>{name}</code></td><td>{esc(', '.join(op.started_by))}</td>"
                    f"<td>{esc(', '.join(op.sized_by))}</td><td>{esc(yes_no(op.preemptible))}"
                    f'</td><td class="num">{esc(format_ms(op.worst_case_ms))}</td>'
                    f"<td>{esc(op.reference)}</td></tr>")
            out.append("</table>")
        out += _list("Mitigations, cheapest first", [m.text for m in f.mitigations],
                     ordered=True)
        out.append("</section>")
    return out


def _errors(report: AuditReport) -> list[str]:
    if not report.errors:
        return []
    out = ['<h2 id="errors">Input errors</h2>', "<ul>"]
    for e in report.errors:
        where = e.path if e.line is None else f"{e.path}:{e.line}"
        out.append(f'<li><span class="path">{esc(where)}</span>: {esc(e.message)}</li>')
    out.append("</ul>")
    return out


def _figures(figures: Sequence[Figure]) -> list[str]:
    if not figures:
        return []
    out = ['<h2 id="figures">Figures</h2>']
    for fig in figures:
        uri = "data:image/svg+xml;base64," + base64.b64encode(fig.svg).decode("ascii")
        out += [f'<figure id="fig-{esc(fig.name)}">',
                f'<img src="{uri}" alt="{esc(fig.title)}" width="900" height="500">',
                f"<figcaption>{esc(fig.caption)}</figcaption>", "</figure>"]
    return out


SWEEP_COLUMNS = ("Scenario", "Xen", "Paging", "Size", "vCPUs", "Costs", "Seed",
                 "Max section ms", "Victim p99 ms", "Victim max ms", "Watchdog",
                 "Continuations", "Ops")


def _sweep(sweep: SweepData) -> list[str]:
    rows = sweep.rows
    ok = [r for r in rows if r.ok]
    settings = ", ".join(f"{k} = {v}" for k, v in sorted(sweep.settings.items()))
    out = ['<h2 id="sweep">Sweep</h2>',
           f'<p>{len(rows)} point(s) from <span class="path">{esc(sweep.directory)}</span> '
           f"(xenvmmu {esc(sweep.tool_version or '?')}; {esc(settings)}); "
           f"{len(rows) - len(ok)} refused by the model. "
           f"{sum(1 for r in ok if r.watchdog_fired)} run(s) reached the watchdog.</p>",
           f"<details><summary>All {len(rows)} points</summary>", "<table>",
           "<tr>" + "".join(f"<th>{c}</th>" for c in SWEEP_COLUMNS) + "</tr>"]
    for r in rows:
        p = r.point
        cells = [p.scenario, p.xen, p.paging, size_label(p.memory_bytes), str(p.vcpus), p.costs,
                 str(p.seed)]
        out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + (
            f'<td colspan="6">{esc(r.error)}</td>' if not r.ok else "".join(
                f'<td class="num">{esc(v)}</td>' for v in (
                    format_ms(r.max_nonpreemptible_ms), format_ms(r.victim_p99_ms),
                    format_ms(r.victim_max_ms), yes_no(r.watchdog_fired),
                    format_int(r.continuations), r.ops or "?"))) + "</tr>")
    out += ["</table>", "</details>"]
    return out


def _costs(costs: Sequence[CostSpec]) -> list[str]:
    out = ['<h2 id="costs">Cost profile</h2>',
           "<p>Nanoseconds per unit of work counted by the paging model, each with its "
           "source (derived from a published figure, or assumed).</p>"]
    for spec in costs:
        sources = dict(spec.sources)
        out += [f"<h3>{esc(spec.label)}: {esc(spec.name)}</h3>",
                f'<p class="meta">From {esc(spec.origin)}; sha256 of the prices '
                f"<code>{esc(spec.digest)}</code></p>",
                "<table>", "<tr><th>Unit</th><th>ns</th><th>Source</th></tr>"]
        for unit, ns in spec.ns_per_unit:
            out.append(f'<tr><td><code>{esc(unit)}</code></td><td class="num">{ns:g}</td>'
                       f"<td>{esc(sources.get(unit, ''))}</td></tr>")
        out.append("</table>")
    return out


def _digests(digests: Sequence[Digest]) -> list[str]:
    out = ['<h2 id="inputs">Inputs</h2>',
           f"<p>Made by xenvmmu {esc(__version__)} from these files (sha256):</p>"]
    if not digests:
        return [*out, "<p>No input files.</p>"]
    out += ["<table>", "<tr><th>File</th><th>Role</th><th>Bytes</th><th>sha256</th></tr>"]
    for d in digests:
        value = f"<code>{esc(d.sha256)}</code>" if d.sha256 else esc(f"unreadable: {d.error}")
        out.append(f'<tr><td class="path">{esc(d.path)}</td><td>{esc(d.role)}</td>'
                   f'<td class="num">{esc(format_int(d.size))}</td><td>{value}</td></tr>')
    out.append("</table>")
    return out


# --- helpers ----------------------------------------------------------------------------------


def _badge(severity: str) -> str:
    return f'<span class="badge sev-{esc(severity)}">{esc(severity)}</span>'


def _list(title: str, items: Sequence[str], *, ordered: bool) -> list[str]:
    if not items:
        return []
    tag = "ol" if ordered else "ul"
    return [f"<p><strong>{esc(title)}</strong></p>", f"<{tag}>",
            *(f"<li>{esc(i)}</li>" for i in items), f"</{tag}>"]


def _where(f: Finding) -> str:
    return f.source.path if f.source.line is None else f"{f.source.path}:{f.source.line}"


def _mib(mib: int | None) -> str:
    if mib is None:
        return "?"
    if mib >= 1024 and mib % 1024 == 0:
        return size_label(mib << 20)
    return f"{mib} MiB"


def _fact(value: object) -> str:
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, list):
        return ", ".join(_fact(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_fact(v)}" for k, v in value.items())
    return "?" if value is None else str(value)
