"""The figures: how the stall grows with guest size, the victim's delays, and the fleet.

* **stall** (one per scenario in the sweep) - the longest non-preemptible section against
  guest size, one line per release (colour) and paging mode (solid HAP, dashed shadow),
  log-log, with the latency budget (30 ms, one credit timeslice) and the watchdog timeout
  (5 s) as horizontal lines. The cost model has one price per unit of work, so there is no
  range to draw from one profile: the band between the cheapest and the dearest profile is
  drawn only when the sweep ran two or more (``--costs`` repeated). The audited fleet (each
  guest's maximum memory against the auditor's worst case) is drawn over the ``attack``
  figure - the scenario the auditor's figure corresponds to - or over the first one.
* **victim** (one per scenario) - the victim vCPU's wake-up delay as a cumulative
  distribution, per release and paging mode, at the largest guest size swept. The simulator
  keeps only the p50, p99 and maximum of the delays (``xenvmmu.sim/1``), so each curve is a
  step approximation through those three points; the caption says so.
* **fleet** (when there is no sweep) - the audited fleet alone against budget and watchdog.

matplotlib is the optional extra ``report``; it is imported only here, only when a figure is
drawn, with no global backend (figures are drawn on their own Agg canvas). Every figure is
made as SVG (text as paths, so it looks the same everywhere; ids salted so the file is the
same on every run) and PNG.
"""

from __future__ import annotations

import importlib.util
import io
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..audit.findings import Finding
from ..versions import XenVersion
from .grid import GiB, size_label
from .results import Row
from .store import SweepData, iter_rows

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MISSING = "plots need matplotlib, which is not installed: pip install 'xenvmmu[report]'"
#: the auditor's default latency budget and Xen's default watchdog timeout, in ms
BUDGET_MS = 30.0
WATCHDOG_MS = 5000.0
#: log axes cannot show 0: smaller values are drawn here (the caption says when)
FLOOR_MS = 1e-3
FLEET_SCENARIO = "attack"
MAX_LABELS = 25


def available() -> bool:
    """Can figures be drawn here (is matplotlib installed)?"""
    return importlib.util.find_spec("matplotlib") is not None


@dataclass(frozen=True)
class FleetPoint:
    """One audited guest: maximum memory (GiB) and the auditor's worst case (ms)."""

    name: str
    maxmem_gib: float
    worst_case_ms: float
    severity: str


@dataclass(frozen=True)
class Fleet:
    """The audited guests that can be drawn, and how many could not (no size, no figure,
    or a worst case of 0: a log axis has no place for them)."""

    points: tuple[FleetPoint, ...]
    omitted: int
    label: str


def fleet_from_findings(findings: Iterable[Finding], label: str) -> Fleet:
    points, omitted = [], 0
    for f in findings:
        mib = f.maxmem_mib if f.maxmem_mib is not None else f.memory_mib
        if mib is None or f.worst_case_ms is None or not f.worst_case_ms > 0:
            omitted += 1
            continue
        name = f.name or Path(f.source.path).name or f.source.path
        points.append(FleetPoint(name, mib / 1024, f.worst_case_ms, f.severity))
    return Fleet(tuple(points), omitted, label)


@dataclass(frozen=True)
class Figure:
    """One drawn figure: ``name`` is the file stem (``stall-attack``)."""

    name: str
    title: str
    caption: str
    svg: bytes
    png: bytes


def make_figures(sweep: SweepData | None, fleet: Fleet | None, *,
                 budget_ms: float = BUDGET_MS, watchdog_ms: float = WATCHDOG_MS) -> list[Figure]:
    """Every figure the data allows (see the module docstring)."""
    figures: list[Figure] = []
    scenarios = _scenarios(sweep)
    if sweep is not None and scenarios:
        target = FLEET_SCENARIO if FLEET_SCENARIO in scenarios else scenarios[0]
        for scenario in scenarios:
            figures.append(stall_figure(sweep, scenario, fleet if scenario == target else None,
                                        budget_ms=budget_ms, watchdog_ms=watchdog_ms))
        for scenario in scenarios:
            figures.append(victim_figure(sweep, scenario, budget_ms=budget_ms))
    elif fleet is not None and fleet.points:
        figures.append(fleet_figure(fleet, budget_ms=budget_ms, watchdog_ms=watchdog_ms))
    return figures


def save_figures(figures: Sequence[Figure], directory: str | Path) -> list[Path]:
    """Write each figure as NAME.png and NAME.svg; the paths written."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for fig in figures:
        for ext, data in (("png", fig.png), ("svg", fig.svg)):
            path = d / f"{fig.name}.{ext}"
            path.write_bytes(data)
            written.append(path)
    return written


# --- the figures ------------------------------------------------------------------------------


def _scenarios(sweep: SweepData | None) -> list[str]:
    if sweep is None:
        return []
    return list(dict.fromkeys(r.point.scenario for r in iter_rows(sweep)))


Series = tuple[str, str]  # (release, paging)


def _series_order(keys: Iterable[Series]) -> list[Series]:
    def key(s: Series) -> tuple[object, ...]:
        try:
            return (0, XenVersion.parse(s[0]), s[1])
        except ValueError:
            return (1, s[0], s[1])
    return sorted(set(keys), key=key)


def stall_figure(sweep: SweepData, scenario: str, fleet: Fleet | None, *,
                 budget_ms: float = BUDGET_MS, watchdog_ms: float = WATCHDOG_MS) -> Figure:
    rows = list(iter_rows(sweep, scenario))
    labels = [c.label for c in sweep.costs if any(r.point.costs == c.label for r in rows)]
    primary = labels[0] if labels else ""
    # (series, size) -> cost label -> worst over seeds
    worst: dict[tuple[Series, int], dict[str, float]] = defaultdict(dict)
    for r in rows:
        cell = worst[((r.point.xen, r.point.paging), r.point.memory_bytes)]
        value = r.max_nonpreemptible_ms or 0.0
        cell[r.point.costs] = max(cell.get(r.point.costs, 0.0), value)
    series = _series_order(s for s, _ in worst)
    colours = _colours([s[0] for s in series])
    sizes = sorted({m for _, m in worst})
    seeds = len({r.point.seed for r in rows})
    clipped = any(v <= FLOOR_MS for cell in worst.values() for v in cell.values())
    band = len(labels) >= 2

    def draw(ax: Axes) -> None:
        for s in series:
            xs = [m for m in sizes if (s, m) in worst and primary in worst[(s, m)]]
            gib = [m / GiB for m in xs]
            ys = [max(worst[(s, m)][primary], FLOOR_MS) for m in xs]
            style = "-" if s[1] == "hap" else "--"
            marker = "o" if s[1] == "hap" else "s"
            ax.plot(gib, ys, style, marker=marker, markersize=4, color=colours[s[0]],
                    label=f"Xen {s[0]} {s[1].upper()}")
            if band:
                bx = [m for m in sizes if (s, m) in worst]
                lo = [max(min(worst[(s, m)].values()), FLOOR_MS) for m in bx]
                hi = [max(max(worst[(s, m)].values()), FLOOR_MS) for m in bx]
                ax.fill_between([m / GiB for m in bx], lo, hi, color=colours[s[0]],
                                alpha=0.15, linewidth=0)
        if fleet is not None:
            _fleet_points(ax, fleet)
        _limits(ax, budget_ms, watchdog_ms)
        _size_axis(ax, [m / GiB for m in sizes] +
                   ([p.maxmem_gib for p in fleet.points] if fleet else []))
        ax.set_ylabel("longest non-preemptible section (ms)")
        _legend_outside(ax)

    caption = [
        f"{scenario} scenario: the longest stretch of hypervisor work without a preemption "
        f"point, per guest size, worst of {seeds} seed(s) per point. Colour: Xen release; "
        "solid line: HAP, dashed: shadow paging. Dotted line: the latency budget "
        f"({budget_ms:g} ms); dash-dot: the watchdog timeout ({watchdog_ms / 1000:g} s). "
        "Releases that behave alike draw the same line: the one drawn last covers the others.",
    ]
    if band:
        caption.append(f"Lines use the cost profile {primary!r}; the shaded band spans the "
                       f"cost profiles {', '.join(repr(lb) for lb in labels)} (lowest to "
                       "highest figure at each size).")
    else:
        caption.append(f"Cost profile {primary!r} only: the cost model has one price per "
                       "unit of work, so no cost band is drawn (run the sweep with two "
                       "--costs profiles to get one).")
    if fleet is not None:
        caption.append(_fleet_caption(fleet))
    if clipped:
        caption.append(f"Values below {FLOOR_MS:g} ms are drawn at {FLOOR_MS:g} ms.")
    svg, png = _render(draw, f"Longest non-preemptible section - {scenario}")
    return Figure(f"stall-{scenario}", f"Longest non-preemptible section: {scenario}",
                  " ".join(caption), svg, png)


def victim_figure(sweep: SweepData, scenario: str, *, budget_ms: float = BUDGET_MS) -> Figure:
    rows = list(iter_rows(sweep, scenario))
    labels = [c.label for c in sweep.costs if any(r.point.costs == c.label for r in rows)]
    primary = labels[0] if labels else ""
    chosen: dict[Series, Row] = {}
    for r in rows:
        if r.point.costs != primary:
            continue
        s = (r.point.xen, r.point.paging)
        old = chosen.get(s)
        if old is None or (r.point.memory_bytes, -r.point.seed) > (
                old.point.memory_bytes, -old.point.seed):
            chosen[s] = r
    series = _series_order(chosen)
    colours = _colours([s[0] for s in series])

    def draw(ax: Axes) -> None:
        for s in series:
            r = chosen[s]
            p50 = max(r.victim_p50_ms or 0.0, FLOOR_MS)
            p99 = max(r.victim_p99_ms or 0.0, FLOOR_MS)
            top = max(r.victim_max_ms or 0.0, FLOOR_MS)
            ax.step([p50, p50, p99, top], [0.0, 0.5, 0.99, 1.0], where="post",
                    linestyle="-" if s[1] == "hap" else "--", color=colours[s[0]],
                    label=f"Xen {s[0]} {s[1].upper()}, {size_label(r.point.memory_bytes)}")
        ax.axvline(budget_ms, color="tab:orange", linestyle=":", linewidth=1.2)
        ax.text(budget_ms, 1.0, f" budget {budget_ms:g} ms", transform=ax.get_xaxis_transform(),
                fontsize=7, va="top", ha="left", color="tab:orange")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("victim wake-up delay (ms)")
        ax.set_ylabel("share of wake-ups at or below")
        ax.grid(True, which="major", alpha=0.3)
        _legend_outside(ax)

    caption = (
        f"{scenario} scenario: the delay of a victim vCPU that wakes every 1 ms on the same "
        "pCPU, per release and paging mode, at the largest guest size swept (first seed, "
        f"cost profile {primary!r}). The simulator keeps only the p50, p99 and maximum of "
        "the delays, so each curve is a step approximation of the distribution through "
        "those three points (50 % at p50, 99 % at p99, 100 % at the maximum), not the "
        "measured distribution; wake-ups missed entirely during a stall are not in it. "
        f"Dotted line: the latency budget ({budget_ms:g} ms)."
    )
    svg, png = _render(draw, f"Victim wake-up delay (approximate CDF) - {scenario}")
    return Figure(f"victim-{scenario}", f"Victim wake-up delay: {scenario}", caption, svg, png)


def fleet_figure(fleet: Fleet, *, budget_ms: float = BUDGET_MS,
                 watchdog_ms: float = WATCHDOG_MS) -> Figure:
    def draw(ax: Axes) -> None:
        _fleet_points(ax, fleet)
        _limits(ax, budget_ms, watchdog_ms)
        _size_axis(ax, [p.maxmem_gib for p in fleet.points])
        ax.set_ylabel("worst-case non-preemptible section (ms)")
        _legend_outside(ax)

    caption = (f"Each audited guest's maximum memory against the auditor's worst case. "
               f"Dotted line: the latency budget ({budget_ms:g} ms); dash-dot: the watchdog "
               f"timeout ({watchdog_ms / 1000:g} s). " + _fleet_caption(fleet) +
               " No sweep was given (--sweep DIR), so there are no simulated curves.")
    svg, png = _render(draw, "Audited fleet")
    return Figure("fleet", "Audited fleet", caption, svg, png)


# --- drawing helpers --------------------------------------------------------------------------


def _fleet_caption(fleet: Fleet) -> str:
    text = (f"Black crosses: the {fleet.label}, each guest's maximum memory against the "
            "auditor's worst case - the longest of every XSA-97 operation that can be driven "
            "against it (dirty-VRAM tracking and the HAP type sweep included), on that "
            "guest's own paging pool, where the attack scenario runs the log-dirty calls.")
    if fleet.omitted:
        text += (f" {fleet.omitted} guest(s) without a size or with no stall (PV, Arm, "
                 "unknown) are not drawn.")
    return text


def _fleet_points(ax: Axes, fleet: Fleet) -> None:
    if not fleet.points:
        return
    xs = [p.maxmem_gib for p in fleet.points]
    ys = [max(p.worst_case_ms, FLOOR_MS) for p in fleet.points]
    ax.scatter(xs, ys, marker="X", s=50, color="black", zorder=5, label=fleet.label)
    for p in fleet.points[:MAX_LABELS]:
        ax.annotate(p.name[:24], (p.maxmem_gib, max(p.worst_case_ms, FLOOR_MS)),
                    textcoords="offset points", xytext=(5, -10), fontsize=7,
                    parse_math=False)


def _legend_outside(ax: Axes) -> None:
    """The legend right of the plot, where it hides no curve or guest."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _limits(ax: Axes, budget_ms: float, watchdog_ms: float) -> None:
    ax.axhline(budget_ms, color="tab:orange", linestyle=":", linewidth=1.4)
    ax.axhline(watchdog_ms, color="tab:red", linestyle="-.", linewidth=1.4)
    trans = ax.get_yaxis_transform()
    ax.text(0.005, budget_ms, f"budget {budget_ms:g} ms", transform=trans, fontsize=7,
            va="bottom", ha="left", color="tab:orange")
    ax.text(0.005, watchdog_ms, f"watchdog {watchdog_ms / 1000:g} s", transform=trans,
            fontsize=7, va="bottom", ha="left", color="tab:red")
    ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)


def _size_axis(ax: Axes, gib: Sequence[float]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xlabel("guest size (maximum memory)")
    ticks = sorted({2.0 ** round(math.log2(g)) for g in gib if g > 0})
    if ticks:
        step = max(1, len(ticks) // 12)
        shown = ticks[::step]
        ax.set_xticks(shown)
        ax.set_xticklabels([size_label(int(t * GiB)) for t in shown], fontsize=7)
        ax.minorticks_off()


def _colours(releases: Sequence[str]) -> dict[str, str]:
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
               "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
    unique = list(dict.fromkeys(releases))
    return {rel: palette[i % len(palette)] for i, rel in enumerate(unique)}


def _render(draw: Callable[[Axes], None], title: str) -> tuple[bytes, bytes]:
    """Draw one figure on its own canvas; (SVG bytes, PNG bytes)."""
    import matplotlib
    from matplotlib.figure import Figure as MplFigure

    with matplotlib.rc_context({"svg.hashsalt": "xenvmmu", "svg.fonttype": "path",
                                "font.size": 9}):
        fig = MplFigure(figsize=(9.0, 5.0), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        draw(ax)
        ax.set_title(title, fontsize=10)
        svg, png = io.BytesIO(), io.BytesIO()
        fig.savefig(svg, format="svg", metadata={"Date": None})
        fig.savefig(png, format="png", dpi=100)
    return svg.getvalue(), png.getvalue()
