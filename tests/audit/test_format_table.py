"""``--format table``: the whole output, exactly."""

from __future__ import annotations

from pathlib import Path

from xenvmmu.audit.findings import AuditReport
from xenvmmu.audit.format import TableFormatter, write_atomic

from .test_format_base import BIG_HAP, PV, sample_report

EXPECTED = """\
GUEST                 SOURCE         TYPE  PAGING  MEM MiB  POOL MiB  FIXED  WORST ms  VERDICT       SEVERITY
big-hap               big-hap.cfg    hvm   hap       65536       520  no         1234  affected      high
shadow-db             shadow-db.cfg  hvm   shadow     8192        68  no         87.2  affected      medium
pv-web                pv-web.cfg     pv    -          2048         ?  no            ?  not affected  none
xm-guest.cfg          xm-guest.cfg   ?     -             ?         ?  no            ?  unknown       none
we"ird\\nname\\\\ü-日本  odd name.cfg   hvm   hap        4096        34  yes       0.250  not affected  none
small                 small.cfg      hvm   hap         512         5  no         9.50  not affected  none

big-hap: affected, high, CVE-2014-5146 (guests/big-hap.cfg:4, memory)
  - HAP guest on Xen 4.4.0, which predates the xsa97-hap fix
  - a log-dirty CLEAN of 64 GiB is one non-preemptible walk of 1234.5 ms
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
        "1 guest: 0 affected, 1 not affected, 0 unknown; budget 30 ms\n"
    )


def test_empty_report_is_just_the_summary() -> None:
    assert TableFormatter().render(AuditReport(findings=())) == (
        "0 guests: 0 affected, 0 not affected, 0 unknown; budget 30 ms\n"
    )


def test_details_without_mitigation_or_decisive_line() -> None:
    from dataclasses import replace

    bare = replace(BIG_HAP, mitigations=(), decisive=None, reasons=("too big",))
    text = TableFormatter().render(AuditReport(findings=(bare,)))
    assert "big-hap: affected, high, CVE-2014-5146 (guests/big-hap.cfg)\n  - too big\n\n" in text
    assert "fix " not in text


def test_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "audit.txt"
    write_atomic(out, TableFormatter().render(sample_report()))
    assert out.read_text(encoding="utf-8") == EXPECTED
    assert [p.name for p in tmp_path.iterdir()] == ["audit.txt"]
