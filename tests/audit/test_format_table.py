"""``--format table``: the whole output, exactly; -v, related findings, SOURCE as the
shortest unique path suffix, fitting to the terminal, the FIXED legend, --summary."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from xenvmmu.audit.findings import AuditReport, AuditStream, OpStall, SourceRef
from xenvmmu.audit.format import TableFormatter, write_atomic
from xenvmmu.audit.format.base import shortest_unique_suffixes
from xenvmmu.audit.format.table import LEGEND

from .test_format_base import (
    BIG_HAP,
    NARROWED,
    NOTE_97,
    NOTE_410,
    PV,
    SMALL,
    advisory_report,
    sample_report,
    suppressed_report,
)

EXPECTED = """\
GUEST                 SOURCE         TYPE  PAGING  MEM MiB  POOL MiB  FIXED  WORST ms  VERDICT       SEVERITY
big-hap               big-hap.cfg    hvm   hap       65536       520  no         1234  affected      high
shadow-db             shadow-db.cfg  hvm   shadow     8192        68  no         87.2  affected      medium
pv-web                pv-web.cfg     pv    -          2048         ?  no            ?  not affected  none
xm-guest.cfg          xm-guest.cfg   ?     -             ?         ?  no            ?  unknown       none
we"ird\\nname\\\\ü-日本  odd name.cfg   hvm   hap        4096        34  yes       0.250  not affected  none
small                 small.cfg      hvm   hap         512         5  no         9.50  not affected  none

FIXED: whether the release has the xsa97-hap fix (the HAP log-dirty walk made preemptible: 4.3.4, 4.4.2, 4.5.0 and later, or --patched xsa97-hap; ? unknown). No release fixes shadow paging (CVE-2014-5149).

big-hap: affected, high, CVE-2014-5146 (guests/big-hap.cfg:4, memory)
  - HAP guest on Xen 4.4.0, which predates the xsa97-hap fix
  - a log-dirty CLEAN of 64 GiB is one non-preemptible walk of 1234.5 ms
  related: teardown_relinquish (medium) can hold a CPU for 40.0 ms without a preemption point (outside the verdict); started by the toolstack [2015 pool teardown fix]
  fix 1: Upgrade Xen to 4.4.1 or later. [upgrade]
  fix 2: Give the guest at most 1536 MiB. [shrink]
shadow-db: affected, medium, CVE-2014-5149 (guests/shadow-db.cfg:7, hap)
  - shadow paging has no XSA-97 fix; blowing 68 MiB of shadows takes 87.25 ms
  fix 1: Remove hap=0 so the guest uses HAP. [hap_on]
xm-guest.cfg: unknown (legacy/xm-guest.cfg:3)
  - xm configuration written in Python (line 3); not executed
  fix 1: Rewrite the configuration in xl.cfg syntax. [convert]

Input errors:
  guests/broken.cfg:3: config parsing error near `=': syntax error

6 guests: 2 affected, 3 not affected, 1 unknown; budget 30 ms
"""  # noqa: E501


def test_whole_table() -> None:
    assert TableFormatter().render(sample_report()) == EXPECTED


def test_no_colour_unless_asked() -> None:
    plain = TableFormatter().render(sample_report())
    assert "\x1b" not in plain
    coloured = TableFormatter(color=True).render(sample_report())
    assert "\x1b[31maffected\x1b[0m      high" in coloured  # padding outside the colour
    assert "\x1b[32mnot affected\x1b[0m" in coloured
    assert "\x1b[33munknown\x1b[0m" in coloured
    assert coloured.replace("\x1b[31m", "").replace("\x1b[32m", "").replace(
        "\x1b[33m", ""
    ).replace("\x1b[0m", "") == plain


def test_wide_characters_keep_columns_aligned() -> None:
    lines = TableFormatter().render(sample_report()).splitlines()
    # the SOURCE column starts at the same terminal column on every row: "日本" is 4 columns
    assert lines[0].index("SOURCE") == 22
    assert lines[1].index("big-hap.cfg") == 22
    assert lines[5].index("odd name.cfg") == 22 - 2


def test_clean_report_has_no_detail_section() -> None:
    report = AuditReport(findings=(PV,), budget_ms=30.0)
    assert TableFormatter().render(report) == (
        "GUEST   SOURCE      TYPE  PAGING  MEM MiB  POOL MiB  FIXED  WORST ms  VERDICT       "
        "SEVERITY\n"
        "pv-web  pv-web.cfg  pv    -          2048         ?  no            ?  not affected  "
        "none\n"
        "\n"
        f"{LEGEND}\n"
        "\n"
        "1 guest: 0 affected, 1 not affected, 0 unknown; budget 30 ms\n"
    )


def test_empty_report_is_just_the_summary() -> None:
    assert TableFormatter().render(AuditReport(findings=())) == (
        "0 guests: 0 affected, 0 not affected, 0 unknown; budget 30 ms\n"
    )


def test_details_without_mitigation_or_decisive_line() -> None:
    bare = replace(BIG_HAP, mitigations=(), decisive=None, reasons=("too big",), ops=())
    text = TableFormatter().render(AuditReport(findings=(bare,)))
    assert "big-hap: affected, high, CVE-2014-5146 (guests/big-hap.cfg)\n  - too big\n\n" in text
    assert "fix 1" not in text


def test_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "audit.txt"
    write_atomic(out, TableFormatter().render(sample_report()))
    assert out.read_text(encoding="utf-8") == EXPECTED
    assert [p.name for p in tmp_path.iterdir()] == ["audit.txt"]


# --- -v, related findings, SOURCE, terminal width, --summary ---------------------------------

TEARDOWN = OpStall("teardown_final", ("toolstack",), False, 235.0, related=True,
                   reference="XSA-410 (CVE-2022-33746)", worst_case_ms_low=120.0)


def test_verbose_gives_the_reasons_of_every_verdict() -> None:
    quiet = TableFormatter().render(sample_report())
    loud = TableFormatter(verbose=True).render(sample_report())
    assert "small: not affected" not in quiet
    assert ("small: not affected (guests/small.cfg)\n"
            "  - the longest non-preemptible section, 9.5 ms, is within the budget\n") in loud
    assert "pv-web: not affected (guests/pv-web.cfg)\n  - PV guests have no HAP or shadow" in loud
    # every guest has its block, in input order
    heads = [line.split(":")[0] for line in loud.splitlines() if line.endswith(")")
             and not line.startswith(" ")]
    assert heads == ["big-hap", "shadow-db", "pv-web", "xm-guest.cfg", 'we"ird\\nname\\\\ü-日本',
                     "small"]


def test_related_findings_listed_under_a_guest_that_is_not_affected() -> None:
    fixed = replace(SMALL, xsa97_fixed=True, xen_version="4.16.0", ops=(TEARDOWN,))
    text = TableFormatter().render(AuditReport(findings=(fixed,), budget_ms=30.0))
    assert ("small: not affected (guests/small.cfg)\n"
            "  related: teardown_final (high) can hold a CPU for 120-235 ms without a preemption "
            "point (outside the verdict); started by the toolstack [XSA-410 (CVE-2022-33746)]\n"
            ) in text
    assert "  - the longest" not in text  # reasons only with -v: the verdict needs no attention
    # preemptible or under the budget: not a finding
    quiet = replace(TEARDOWN, preemptible=True)
    short = replace(TEARDOWN, worst_case_ms=29.0)
    for op in (quiet, short):
        text = TableFormatter().render(AuditReport(findings=(replace(fixed, ops=(op,)),)))
        assert "related:" not in text and "small: not affected" not in text


def test_source_is_the_shortest_unique_path_suffix() -> None:
    assert shortest_unique_suffixes(
        ["/etc/xen/a/web.cfg", "/etc/xen/b/web.cfg", "/etc/xen/db.cfg", "web.cfg",
         "x/y/web.cfg", "/srv/b/web.cfg"]
    ) == {
        "/etc/xen/a/web.cfg": "a/web.cfg",
        "/etc/xen/b/web.cfg": "xen/b/web.cfg",
        "/srv/b/web.cfg": "srv/b/web.cfg",
        "/etc/xen/db.cfg": "db.cfg",
        "web.cfg": "web.cfg",  # nothing shorter: the whole path
        "x/y/web.cfg": "y/web.cfg",
    }
    assert shortest_unique_suffixes(["same.cfg", "same.cfg"]) == {"same.cfg": "same.cfg"}
    one = replace(PV, source=SourceRef("/etc/xen/a/web.cfg"), name="web")
    two = replace(PV, source=SourceRef("/etc/xen/b/web.cfg"), name="web")
    lines = TableFormatter().render(AuditReport(findings=(one, two))).splitlines()
    assert lines[1].split()[:2] == ["web", "a/web.cfg"]
    assert lines[2].split()[:2] == ["web", "b/web.cfg"]


def test_fitted_to_the_terminal_width() -> None:
    wide = TableFormatter().render(sample_report())
    assert max(len(line) for line in wide.splitlines()[:7]) > 100
    for width in (100, 80, 60):
        text = TableFormatter(width=width).render(sample_report())
        lines = text.splitlines()
        table = lines[:7]
        # 60 cannot be met: the narrowest table (names and paths cut to 12) takes 68
        assert all(len(line) <= max(width, 68) for line in table), width
        assert all(len(line) <= width for line in lines if line.startswith(("  - ", "FIXED")))
        assert "--wide shows" in text
    hundred = TableFormatter(width=100).render(sample_report()).splitlines()
    assert "POOL" not in hundred[0] and "TYPE" in hundred[0]  # the least needed column first
    eighty = TableFormatter(width=80).render(sample_report()).splitlines()
    assert eighty[0].split() == ["GUEST", "SOURCE", "PAGING", "WORST", "ms", "VERDICT",
                                 "SEVERITY"]
    assert eighty[5].startswith('we"ird\\nname\\\\ü-日本  ')  # columns go before names are cut
    assert "(fitted to 80 columns: POOL MiB, TYPE, MEM MiB, FIXED left out; --wide shows" in (
        "\n".join(eighty))
    assert not any(line.startswith("FIXED:") for line in eighty)  # no column, no legend
    sixty = TableFormatter(width=60).render(sample_report()).splitlines()
    assert sixty[5].startswith('we"ird\\nnam…  ')  # cut at the end, with an ellipsis
    assert "…adow-db.cfg" in sixty[2]  # a path keeps its end
    assert "names and paths cut (…)" in " ".join(sixty)
    # wide enough: the unfitted table, only the legend and long detail lines wrapped
    roomy = TableFormatter(width=200).render(sample_report())
    assert roomy.splitlines()[:8] == wide.splitlines()[:8]
    assert "--wide" not in roomy
    assert max(len(line) for line in roomy.splitlines()) <= 200


def test_summary_only() -> None:
    text = TableFormatter(summary_only=True).render(sample_report())
    assert text == (
        "Verdicts:    2 affected, 3 not affected, 1 unknown\n"
        "Severities:  0 critical, 1 high, 1 medium, 4 none\n"
        "Releases:    Xen 4.4.0: 5, Xen 4.5.0: 1\n"
        "Related:     1 guest with a related finding (an operation outside the verdict that "
        "reaches the budget; listed without --summary)\n"
        "Input errors: 1\n"
        "\n"
        "The 4 worst guests:\n"
        "GUEST                 SOURCE         PAGING  WORST ms  VERDICT       SEVERITY\n"
        "big-hap               big-hap.cfg    hap         1234  affected      high\n"
        "shadow-db             shadow-db.cfg  shadow      87.2  affected      medium\n"
        "small                 small.cfg      hap         9.50  not affected  none\n"
        'we"ird\\nname\\\\ü-日本  odd name.cfg   hap        0.250  not affected  none\n'
        "\n"
        "6 guests: 2 affected, 3 not affected, 1 unknown; budget 30 ms\n"
    )


def test_summary_keeps_the_ten_worst_of_many() -> None:
    guests = tuple(replace(SMALL, name=f"g{i:03d}", source=SourceRef(f"d{i % 7}/g.cfg"),
                           worst_case_ms=float(i % 50)) for i in range(300))
    text = TableFormatter(summary_only=True).render(AuditReport(findings=guests))
    rows = text.split("The 10 worst guests:\n")[1].splitlines()[1:11]
    assert [r.split()[0] for r in rows] == ["g049", "g099", "g149", "g199", "g249", "g299",
                                            "g048", "g098", "g148", "g198"]
    assert rows[0].split()[1] == "d0/g.cfg"  # the suffix that tells d0/g.cfg from d1/g.cfg


def test_streamed_output_equals_render() -> None:
    out = io.StringIO()
    TableFormatter(verbose=True).write(AuditStream.of(sample_report()), out)
    assert out.getvalue() == TableFormatter(verbose=True).render(sample_report())


# --- the advisories of the registry -----------------------------------------------------------


def test_advisories_grouped_under_the_guest() -> None:
    text = TableFormatter().render(advisory_report())
    details = text.split("\n\n")[2]
    assert details == (
        "adv: affected, high, CVE-2014-5146 (guests/adv.cfg:4, memory)\n"
        "  - HAP guest on Xen 4.4.0, which predates the xsa97-hap fix\n"
        "  - a log-dirty CLEAN of 64 GiB is one non-preemptible walk of 1234.5 ms\n"
        "  fix 1: Upgrade Xen to 4.4.1 or later. [upgrade]\n"
        "  fix 2: Give the guest at most 1536 MiB. [shrink]\n"
        # unbounded: no figure; its teardown is XSA-410's line, no "related:" line besides
        "  XSA-344: affected, high, unbounded (CVE-2020-25601; not fixed in this release); Set "
        "max_event_channels = 1023 or less. Upgrade Xen to 4.13.2 or later (XSA-344 fixed).\n"
        "  XSA-410: affected, high, 40.0-380 ms (CVE-2022-33746; not fixed in this release); "
        "Upgrade Xen to 4.17.0 or later (XSA-410 fixed).\n"
        "  XSA-495: unknown (CVE-2026-42493): shadow pool size unknown: shadow_memory not given\n"
        # not affected by XSA-97, affected by a memory corruption: listed, impact named
        "uaf: not affected (guests/uaf.cfg)\n"
        "  XSA-410: affected, high, integrity impact (CVE-2022-33746; not fixed in this release)\n"
        "xm-guest.cfg: unknown (legacy/xm-guest.cfg:3)\n"
        "  - xm configuration written in Python (line 3); not executed\n"
        "  fix 1: Rewrite the configuration in xl.cfg syntax. [convert]"
    )
    assert text.endswith(
        "\n\nXSA-97:      1 affected, 0 not affected, 0 unknown\n"
        "XSA-344:     1 affected, 2 not affected, 0 unknown\n"
        "XSA-410:     2 affected, 0 not affected, 0 unknown\n"
        "XSA-495:     0 affected, 0 not affected, 1 unknown\n"
        "4 guests: 1 affected, 2 not affected, 1 unknown; budget 30 ms\n"
    )
    assert "related:" not in text


def test_narrowed_table_shows_the_worst_reported_advisory() -> None:
    text = TableFormatter().render(advisory_report(NARROWED))
    assert text.splitlines()[:5] == [
        "GUEST         SOURCE        TYPE  PAGING  MEM MiB  POOL MiB  FIXED     WORST ms  "
        "VERDICT       SEVERITY",
        "adv           adv.cfg       hvm   hap       65536       520  no       unbounded  "
        "affected      high",
        "uaf           uaf.cfg       hvm   hap         512         5  yes    0.010-0.050  "
        "not affected  none",
        "quiet         quiet.cfg     pv    -          2048         ?  no     0.102-0.511  "
        "not affected  none",
        "xm-guest.cfg  xm-guest.cfg  ?     -             ?         ?  ?                ?  "
        "unknown       none",
    ]
    assert "adv: affected, high, XSA-344 (guests/adv.cfg:9, max_event_channels)\n" in text
    assert "(XSA-344); FIXED: whether this release has its fix" in text
    assert text.endswith("XSA-344:     1 affected, 2 not affected, 0 unknown\n"
                         "4 guests: 1 affected, 2 not affected, 1 unknown; budget 30 ms\n")
    for absent in ("XSA-97", "CVE-2014", "xsa97", "fix 1", "XSA-410", "XSA-495"):
        assert absent not in text, absent


def test_verbose_lists_every_advisory_with_its_reasons() -> None:
    text = TableFormatter(verbose=True).render(advisory_report())
    assert ("quiet: not affected (guests/quiet.cfg)\n"
            "  - PV guests have no HAP or shadow paging\n"
            "  XSA-344: not affected, 0.102-0.511 ms (CVE-2020-25601; not fixed in this "
            "release)\n"
            "    - resetting 1,023 ports takes 0.102-0.511 ms\n") in text


def test_summary_has_a_line_per_reported_advisory() -> None:
    text = TableFormatter(summary_only=True).render(advisory_report(("XSA-344", "XSA-495")))
    assert ("Related:     0 guests with a related finding (an operation outside the verdict "
            "that reaches the budget; listed without --summary)\n"
            "XSA-344:     1 affected, 2 not affected, 0 unknown\n"
            "XSA-495:     0 affected, 0 not affected, 1 unknown\n"
            "Input errors: 0\n") in text
    assert text.startswith("Verdicts:    1 affected, 2 not affected, 1 unknown\n")
    worst = text.split("worst guests:\n")[1].splitlines()
    assert worst[1].split()[:4] == ["adv", "adv.cfg", "hap", "unbounded"]  # unbounded first


# --- suppressed findings (--suppress) ---------------------------------------------------------


def test_a_suppressed_finding_says_so_instead_of_its_fixes() -> None:
    text = TableFormatter().render(suppressed_report())
    details = text.split("\n\n")[2]
    assert details.startswith(
        "silenced: affected, high, CVE-2014-5146, suppressed (guests/silenced.cfg:4, memory)\n"
        "  - HAP guest on Xen 4.4.0, which predates the xsa97-hap fix\n"
        "  - a log-dirty CLEAN of 64 GiB is one non-preemptible walk of 1234.5 ms\n"
        f"  suppressed: {NOTE_97}\n"
        "  XSA-344: affected, high, unbounded (CVE-2020-25601; not fixed in this release); Set "
        "max_event_channels = 1023 or less. Upgrade Xen to 4.13.2 or later (XSA-344 fixed).\n"
        "  XSA-410: affected, high, 40.0-380 ms (CVE-2022-33746; not fixed in this release); "
        f"suppressed ({NOTE_410})\n"
        "  XSA-495: unknown (CVE-2026-42493): shadow pool size unknown: shadow_memory not given\n"
        "adv: affected, high, CVE-2014-5146 (guests/adv.cfg:4, memory)\n")
    assert "  fix 1: Upgrade Xen to 4.4.1 or later. [upgrade]\n" in details  # adv's own
    assert text.endswith(
        "\n\nXSA-97:      2 affected, 0 not affected, 0 unknown, 1 suppressed\n"
        "XSA-344:     2 affected, 2 not affected, 0 unknown\n"
        "XSA-410:     3 affected, 0 not affected, 0 unknown, 1 suppressed\n"
        "XSA-495:     0 affected, 0 not affected, 2 unknown\n"
        "5 guests: 2 affected, 2 not affected, 1 unknown; budget 30 ms\n")
    summary = TableFormatter(summary_only=True).render(suppressed_report())
    assert "XSA-410:     3 affected, 0 not affected, 0 unknown, 1 suppressed\n" in summary
