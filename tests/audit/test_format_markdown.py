"""``--format markdown``: title, host facts, guest table, a section per guest to look at."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

from xenvmmu.audit.findings import AuditReport, AuditStream, Mitigation, OpStall
from xenvmmu.audit.format import MarkdownFormatter, write_atomic
from xenvmmu.audit.format.markdown import md, md_item

from .test_format_base import (
    BIG_HAP,
    NARROWED,
    NOTE_97,
    NOTE_410,
    SMALL,
    advisory_report,
    sample_report,
    suppressed_report,
)


def render() -> str:
    return MarkdownFormatter().render(sample_report())


def section(text: str, heading: str) -> str:
    """The lines from ``heading`` up to the next ``## `` heading or rule."""
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1:]
    ends = [i for i in (rest.find("\n## "), rest.find("\n---\n")) if i >= 0]
    return heading + "\n" + rest[: min(ends)]


def test_title_and_summary() -> None:
    text = render()
    assert text.startswith("# XSA-97 audit: 2 of 6 guests affected\n\n[Xen Security Advisory 97]")
    assert text.endswith("\n---\n\n6 guests: 2 affected, 3 not affected, 1 unknown; budget 30 ms\n")


def test_host_facts() -> None:
    assert section(render(), "## Host") == (
        "## Host\n"
        "\n"
        "| Fact | Value |\n"
        "| --- | --- |\n"
        "| xenvmmu | 0.1.0 |\n"
        "| latency budget | 30 ms |\n"
        "| arch | x86\\_64 |\n"
        "| hap\\_capable | yes |\n"
        "| nr\\_cpus | 16 |\n"
        "| xen\\_commandline | placeholder dom0\\_mem=4096M |\n"
        "| xen\\_version | 4.4.0 |\n"
    )


def test_guest_table_has_every_guest() -> None:
    assert section(render(), "## Guests") == (
        "## Guests\n"
        "\n"
        "| Guest | Source | Type | Paging | Memory MiB | Pool MiB | XSA-97 fixed | "
        "Worst case ms | Verdict | Severity |\n"
        "| --- | --- | --- | --- | ---: | ---: | --- | ---: | --- | --- |\n"
        "| big-hap | guests/big-hap.cfg | hvm | hap | 65536 | 520 | no | 1234 | **affected** "
        "| high |\n"
        "| shadow-db | guests/shadow-db.cfg | hvm | shadow | 8192 | 68 | no | 87.2 | "
        "**affected** | medium |\n"
        "| pv-web | guests/pv-web.cfg | pv | - | 2048 | ? | no | ? | not affected | none |\n"
        "| xm-guest.cfg | legacy/xm-guest.cfg | ? | - | ? | ? | no | ? | unknown | none |\n"
        '| we"ird\\\\nname\\\\\\\\ü-日本 | guests/odd name.cfg | hvm | hap | 4096 | 34 | yes | '
        "0.250 | not affected | none |\n"
        "| small | guests/small.cfg | hvm | hap | 512 | 5 | no | 9.50 | not affected | none |\n"
    )


def test_affected_guest_section() -> None:
    assert section(render(), "## big-hap: affected (high)") == (
        "## big-hap: affected (high)\n"
        "\n"
        "- Decided by: guests/big-hap.cfg line 4 (memory)\n"
        "- CVE: CVE-2014-5146\n"
        "- Worst-case non-preemptible section: 1234 ms; Xen 4.4.0, XSA-97 fix: no\n"
        "\n"
        "Reasons:\n"
        "\n"
        "- HAP guest on Xen 4.4.0, which predates the xsa97-hap fix\n"
        "- a log-dirty CLEAN of 64 GiB is one non-preemptible walk of 1234.5 ms\n"
        "\n"
        "Related findings (outside the verdict):\n"
        "\n"
        "- teardown\\_relinquish (medium) can hold a CPU for 40.0 ms without a preemption point "
        "(outside the verdict); started by the toolstack \\[2015 pool teardown fix\\]\n"
        "\n"
        "Mitigations, cheapest first:\n"
        "\n"
        "1. Upgrade Xen to 4.4.1 or later. (`upgrade`)\n"
        "2. Give the guest at most 1536 MiB. (`shrink`)\n"
    )


def test_sections_only_for_guests_to_look_at() -> None:
    text = render()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Host",
        "## Guests",
        "## big-hap: affected (high)",
        "## shadow-db: affected (medium)",
        "## xm-guest.cfg: unknown",
        "## Input errors",
    ]
    assert "- Decided by: guests/shadow-db.cfg line 7 (hap)\n- CVE: CVE-2014-5149\n" in text


def test_input_errors() -> None:
    assert section(render(), "## Input errors") == (
        "## Input errors\n\n- guests/broken.cfg:3: config parsing error near \\`=': syntax error\n"
    )


def test_input_cannot_inject_markdown() -> None:
    evil = replace(
        BIG_HAP,
        name="<script>|x|*y*",
        reasons=("- nested", "1. ordered", "[link](http://x)"),
        mitigations=(Mitigation("patch", "2) apply `xsa97-hap`"),),
    )
    text = MarkdownFormatter().render(AuditReport(findings=(evil,)))
    assert "| \\<script\\>\\|x\\|\\*y\\* | guests/big-hap.cfg |" in text
    assert "## \\<script\\>\\|x\\|\\*y\\*: affected (high)\n" in text
    assert "- \\- nested\n- 1\\. ordered\n- \\[link\\](http://x)\n" in text
    assert "1. 2\\) apply \\`xsa97-hap\\` (`patch`)\n" in text
    assert md("4.4.0") == "4.4.0"
    assert md_item("10. x") == "10\\. x"


def test_no_guests() -> None:
    text = MarkdownFormatter().render(AuditReport(findings=()))
    assert "## Guests\n\nNo guests were audited.\n" in text
    assert "## Input errors" not in text


def test_written_atomically(tmp_path: Path) -> None:
    out = tmp_path / "audit.md"
    write_atomic(out, render())
    assert out.read_text(encoding="utf-8") == render()
    assert [p.name for p in tmp_path.iterdir()] == ["audit.md"]


def test_verbose_has_a_section_per_guest() -> None:
    text = MarkdownFormatter(verbose=True).render(sample_report())
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[2:8] == [
        "## big-hap: affected (high)",
        "## shadow-db: affected (medium)",
        "## pv-web: not affected",
        "## xm-guest.cfg: unknown",
        '## we"ird\\\\nname\\\\\\\\ü-日本: not affected',
        "## small: not affected",
    ]
    assert ("## small: not affected\n\n- Decided by: guests/small.cfg\n"
            "- CVE: CVE-2014-5146\n") in text
    assert "- the longest non-preemptible section, 9.5 ms, is within the budget\n" in text


def test_related_finding_of_a_guest_not_affected_has_a_section() -> None:
    teardown = OpStall("teardown_final", ("toolstack",), False, 235.0, related=True,
                       reference="XSA-410 (CVE-2022-33746)")
    guest = replace(SMALL, xsa97_fixed=True, ops=(teardown,))
    text = MarkdownFormatter().render(AuditReport(findings=(guest,)))
    assert ("## small: not affected\n\n- Decided by: guests/small.cfg\n" in text)
    assert ("Related findings (outside the verdict):\n\n- teardown\\_final (high) can hold a "
            "CPU for 235 ms without a preemption point (outside the verdict); started by the "
            "toolstack \\[XSA-410 (CVE-2022-33746)\\]\n") in text
    assert "Reasons:" not in text  # a verdict that needs no attention: reasons with -v only


def test_streamed_output_equals_render() -> None:
    out = io.StringIO()
    MarkdownFormatter().write(AuditStream.of(sample_report()), out)
    assert out.getvalue() == render()


# --- the advisories of the registry -----------------------------------------------------------

XSA = "https://xenbits.xen.org/xsa/advisory-"


def test_fleet_table_per_advisory() -> None:
    text = MarkdownFormatter().render(advisory_report())
    assert section(text, "## Advisories") == (
        "## Advisories\n"
        "\n"
        "| Advisory | CVEs | Title | Affected | Not affected | Unknown |\n"
        "| --- | --- | --- | ---: | ---: | ---: |\n"
        f"| [XSA-97]({XSA}97.html) | CVE-2014-5146, CVE-2014-5149 | Long latency virtual-mmu "
        "operations are not preemptible | 1 | 0 | 0 |\n"
        f"| [XSA-344]({XSA}344.html) | CVE-2020-25601 | Lack of preemption in "
        "evtchn\\_reset() / evtchn\\_destroy() | 1 | 2 | 0 |\n"
        f"| [XSA-410]({XSA}410.html) | CVE-2022-33746 | P2M pool freeing may take excessively "
        "long | 2 | 0 | 0 |\n"
        f"| [XSA-495]({XSA}495.html) | CVE-2026-42493 | Shadow paging operations may take "
        "excessively long | 0 | 0 | 1 |\n"
    )
    assert "## Advisories" not in render()  # no guest met an advisory of the registry


def test_a_table_of_its_advisories_per_guest() -> None:
    text = MarkdownFormatter().render(advisory_report())
    adv = section(text, "## adv: affected (high)")
    assert adv.endswith(
        "Advisories:\n"
        "\n"
        "| Advisory | CVEs | Impact | Verdict | Severity | Worst case | Fixed | "
        "First mitigation |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| [XSA-97]({XSA}97.html) | CVE-2014-5146, CVE-2014-5149 | availability | "
        "**affected** | high | 600-1234 ms | no | Upgrade Xen to 4.4.1 or later. |\n"
        f"| [XSA-344]({XSA}344.html) | CVE-2020-25601 | availability | **affected** | high | "
        "unbounded | no | Set max\\_event\\_channels = 1023 or less. |\n"
        f"| [XSA-410]({XSA}410.html) | CVE-2022-33746 | availability | **affected** | high | "
        "40.0-380 ms | no | Upgrade Xen to 4.17.0 or later (XSA-410 fixed). |\n"
        f"| [XSA-495]({XSA}495.html) | CVE-2026-42493 | availability | unknown | none | - | ? "
        "| - |\n"
        "\n"
        f"- [XSA-495]({XSA}495.html): could not be assessed: shadow pool size unknown: "
        "shadow\\_memory not given\n"
    )
    # not affected by XSA-97 but by a memory corruption: a guest to look at
    uaf = section(text, "## uaf: not affected")
    assert (f"| [XSA-410]({XSA}410.html) | CVE-2022-33746 | integrity | **affected** | high | "
            "- | no | - |") in uaf
    assert "## quiet" not in text  # within the budget everywhere


def test_narrowed_report_names_its_advisories_only() -> None:
    text = MarkdownFormatter(verbose=True).render(advisory_report(NARROWED))
    assert text.startswith(
        "# Xen advisory audit (XSA-344): 1 of 4 guests affected\n\n"
        f"Narrowed to [XSA-344]({XSA}344.html). ")
    assert text.endswith("4 guests: 1 affected, 2 not affected, 1 unknown; budget 30 ms\n")
    assert "| adv | guests/adv.cfg | hvm | hap | 65536 | 520 | no | unbounded | **affected** | " \
        "high |" in text
    assert "| Pool MiB | Fixed | Worst case ms |" in text
    assert section(text, "## adv: affected (high)").startswith(
        "## adv: affected (high)\n\n- Decided by: guests/adv.cfg line 9 "
        "(max\\_event\\_channels)\n"
        f"- Worst advisory: [XSA-344]({XSA}344.html)\n")
    # verbose: the reasons of every advisory, not only the unknown ones
    assert (f"- [XSA-344]({XSA}344.html): resetting 1,023 ports takes 0.102-0.511 ms"
            in section(text, "## quiet: not affected"))
    assert "XSA-97" not in text and "CVE-2014" not in text and "XSA-410" not in text


# --- suppressed findings (--suppress) ---------------------------------------------------------


def test_suppressed_findings_are_marked_with_their_reason() -> None:
    text = MarkdownFormatter().render(suppressed_report())
    guest = section(text, "## silenced: affected (high)")
    assert guest.startswith("## silenced: affected (high)\n\n"
                            "- Decided by: guests/silenced.cfg line 4 (memory)\n"
                            f"- Suppressed by the operator: {md(NOTE_97)}\n")
    assert (f"| [XSA-410]({XSA}410.html) | CVE-2022-33746 | availability | **affected** "
            "(suppressed) | high | 40.0-380 ms | no |") in guest
    assert (f"| [XSA-344]({XSA}344.html) | CVE-2020-25601 | availability | **affected** | "
            "high |") in guest
    assert guest.endswith(
        f"- [XSA-495]({XSA}495.html): could not be assessed: shadow pool size unknown: "
        "shadow\\_memory not given\n"
        f"- [XSA-97]({XSA}97.html): suppressed by the operator: {md(NOTE_97)}\n"
        f"- [XSA-410]({XSA}410.html): suppressed by the operator: {md(NOTE_410)}\n")
    assert "| silenced | guests/silenced.cfg | hvm | hap | 65536 | 520 | no | 1234 | " \
        "**affected** (suppressed) | high |" in text
    assert "| adv | guests/adv.cfg | hvm | hap | 65536 | 520 | no | 1234 | **affected** | " \
        "high |" in text
    assert section(text, "## Advisories").splitlines()[2:5] == [
        "| Advisory | CVEs | Title | Affected | Not affected | Unknown | Suppressed |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
        f"| [XSA-97]({XSA}97.html) | CVE-2014-5146, CVE-2014-5149 | Long latency virtual-mmu "
        "operations are not preemptible | 2 | 0 | 0 | 1 |"]
    assert "suppressed" not in section(text, "## adv: affected (high)").lower()
