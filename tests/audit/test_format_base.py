"""The shared sample report of the format tests, and tests of ``xenvmmu.audit.format.base``.

``sample_report()`` is imported by the other ``test_format_*`` modules: one affected HAP guest
(4.4.0, 64 GiB, decided by its ``memory`` line), one affected shadow guest (``hap=0``), one PV
guest, one xm-era Python config that could not be assessed, one HAP guest on a fixed release
whose name and path contain quotes, a newline, a backslash and non-ASCII characters, one small
HAP guest under budget, and one input error.
"""

from __future__ import annotations

import io
import json
import os
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenvmmu.audit.findings import (
    AdvisoryFinding,
    AuditReport,
    AuditStream,
    Finding,
    InputError,
    Mitigation,
    OpStall,
    SourceRef,
)
from xenvmmu.audit.format import (
    DEFAULT_FORMAT,
    FORMATS,
    JsonFormatter,
    OpenVexFormatter,
    TableFormatter,
    get_formatter,
    write_atomic,
)
from xenvmmu.audit.format.base import (
    advisory_counts,
    advisory_figure,
    advisory_text,
    decisive_line,
    decisive_ref,
    display_name,
    dump_json,
    finding_cve,
    format_mib,
    format_ms,
    guest_advisories,
    guest_id,
    headline,
    host_facts,
    one_line,
    op_advisories,
    reported_related,
    stated_advisories,
    summarize,
    summary_line,
    worst_advisory,
)

#: one issue time for OpenVEX (``now`` could move between two renderings)
TS = datetime(2026, 1, 2, tzinfo=UTC)

WEIRD_NAME = 'we"ird\nname\\ü-日本'

BIG_HAP = Finding(
    source=SourceRef("guests/big-hap.cfg"),
    name="big-hap",
    guest_type="hvm",
    paging="hap",
    memory_mib=65536,
    maxmem_mib=65536,
    vcpus=8,
    pool_kib=532480,
    xen_version="4.4.0",
    xsa97_fixed=False,
    cve="CVE-2014-5146",
    worst_case_ms=1234.5,
    verdict="affected",
    severity="high",
    reasons=(
        "HAP guest on Xen 4.4.0, which predates the xsa97-hap fix",
        "a log-dirty CLEAN of 64 GiB is one non-preemptible walk of 1234.5 ms",
    ),
    mitigations=(
        Mitigation("upgrade", "Upgrade Xen to 4.4.1 or later."),
        Mitigation("shrink", "Give the guest at most 1536 MiB."),
    ),
    ops=(
        OpStall("logdirty_clean", ("toolstack",), False, 1234.5, reference="XSA-97",
                sized_by=("guest", "device_model")),
        OpStall("teardown_relinquish", ("toolstack",), False, 40.0, related=True,
                reference="2015 pool teardown fix"),
    ),
    paging_reasons=("hap not set in the config; the host supports HAP",),
    decisive=SourceRef("guests/big-hap.cfg", 4, "memory"),
)

SHADOW = Finding(
    source=SourceRef("guests/shadow-db.cfg", 1),
    name="shadow-db",
    guest_type="hvm",
    paging="shadow",
    memory_mib=8192,
    maxmem_mib=8192,
    vcpus=4,
    pool_kib=69632,
    xen_version="4.4.0",
    xsa97_fixed=False,
    cve="CVE-2014-5149",
    worst_case_ms=87.25,
    verdict="affected",
    severity="medium",
    reasons=("shadow paging has no XSA-97 fix; blowing 68 MiB of shadows takes 87.25 ms",),
    mitigations=(Mitigation("hap_on", "Remove hap=0 so the guest uses HAP."),),
    ops=(OpStall("shadow_blow_tables", ("toolstack",), False, 87.25, reference="XSA-97"),),
    paging_reasons=("hap=0 in the config",),
    decisive=SourceRef("guests/shadow-db.cfg", 7, "hap"),
)

PV = Finding(
    source=SourceRef("guests/pv-web.cfg"),
    name="pv-web",
    guest_type="pv",
    paging=None,
    memory_mib=2048,
    maxmem_mib=4096,
    vcpus=2,
    pool_kib=None,
    xen_version="4.4.0",
    xsa97_fixed=False,
    cve=None,
    worst_case_ms=None,
    verdict="not_affected",
    severity="none",
    reasons=("PV guests have no HAP or shadow paging",),
    paging_reasons=("type=pv",),
)

XM = Finding(
    source=SourceRef("legacy/xm-guest.cfg", 3),
    name=None,
    guest_type=None,
    paging=None,
    memory_mib=None,
    maxmem_mib=None,
    vcpus=None,
    pool_kib=None,
    xen_version="4.4.0",
    xsa97_fixed=False,
    cve=None,
    worst_case_ms=None,
    verdict="unknown",
    severity="none",
    reasons=("xm configuration written in Python (line 3); not executed",),
    mitigations=(Mitigation("convert", "Rewrite the configuration in xl.cfg syntax."),),
)

WEIRD = Finding(
    source=SourceRef("guests/odd name.cfg", 2),
    name=WEIRD_NAME,
    guest_type="hvm",
    paging="hap",
    memory_mib=4096,
    maxmem_mib=4096,
    vcpus=2,
    pool_kib=34816,
    xen_version="4.5.0",
    xsa97_fixed=True,
    cve="CVE-2014-5146",
    worst_case_ms=0.25,
    verdict="not_affected",
    severity="none",
    reasons=("Xen 4.5.0 carries the xsa97-hap fix",),
    ops=(OpStall("logdirty_clean", ("toolstack",), True, 0.25, reference="XSA-97"),),
)

SMALL = Finding(
    source=SourceRef("guests/small.cfg"),
    name="small",
    guest_type="hvm",
    paging="hap",
    memory_mib=512,
    maxmem_mib=512,
    vcpus=1,
    pool_kib=5120,
    xen_version="4.4.0",
    xsa97_fixed=False,
    cve="CVE-2014-5146",
    worst_case_ms=9.5,
    verdict="not_affected",
    severity="none",
    reasons=("the longest non-preemptible section, 9.5 ms, is within the budget",),
)

ERROR = InputError("guests/broken.cfg", 3, "config parsing error near `=': syntax error")

HOST: dict[str, object] = {
    "xen_version": "4.4.0",
    "arch": "x86_64",
    "hap_capable": True,
    "xen_commandline": "placeholder dom0_mem=4096M",
    "nr_cpus": 16,
}


def sample_report() -> AuditReport:
    """The report every format test renders."""
    return AuditReport(
        findings=(BIG_HAP, SHADOW, PV, XM, WEIRD, SMALL),
        errors=(ERROR,),
        host=dict(HOST),
        budget_ms=30.0,
        tool_version="0.1.0",
    )


# --- findings with advisories (built directly, as the registry's rules would) ------------------

#: XSA-97's own entry (it mirrors the guest's verdict)
ADV_97 = AdvisoryFinding(
    id="XSA-97", cves=("CVE-2014-5146", "CVE-2014-5149"), verdict="affected",
    worst_case_ms=1234.5, worst_case_ms_low=600.0, operations=("logdirty_clean",), fixed=False,
    reasons=("a log-dirty CLEAN of 64 GiB is one non-preemptible walk",),
    mitigations=("Upgrade Xen to 4.4.1 or later.",),
    title="Long latency virtual-mmu operations are not preemptible", severity="high",
)
#: affected with no bound at all, decided by a setting of the guest's file
UNBOUNDED = AdvisoryFinding(
    id="XSA-344", cves=("CVE-2020-25601",), verdict="affected", worst_case_ms=None,
    worst_case_ms_low=None, operations=("evtchn_reset",), fixed=False,
    reasons=("every port is reset in one loop without a preemption point",),
    mitigations=("Set max_event_channels = 1023 or less.",
                 "Upgrade Xen to 4.13.2 or later (XSA-344 fixed)."),
    title="Lack of preemption in evtchn_reset() / evtchn_destroy()", severity="high",
    unbounded=True, decisive=SourceRef("guests/adv.cfg", 9, "max_event_channels"),
)
#: an affected stall with a figure
TEARDOWN_410 = AdvisoryFinding(
    id="XSA-410", cves=("CVE-2022-33746",), verdict="affected", worst_case_ms=380.0,
    worst_case_ms_low=40.0, operations=("teardown_relinquish", "teardown_final"), fixed=False,
    reasons=("XSA-410: longest section teardown_relinquish, 40.0-380 ms",),
    mitigations=("Upgrade Xen to 4.17.0 or later (XSA-410 fixed).",),
    title="P2M pool freeing may take excessively long", severity="high",
)
#: could not be assessed: the reason names the missing input
UNKNOWN_495 = AdvisoryFinding(
    id="XSA-495", cves=("CVE-2026-42493",), verdict="unknown", worst_case_ms=None,
    worst_case_ms_low=None, operations=("shadow_blow_tables",), fixed=None,
    reasons=("shadow pool size unknown: shadow_memory not given",),
    title="Shadow paging operations may take excessively long",
)
#: a memory corruption (no figure), affected
INTEGRITY = AdvisoryFinding(
    id="XSA-410", cves=("CVE-2022-33746",), verdict="affected", worst_case_ms=None,
    worst_case_ms_low=None, operations=("teardown_final",), fixed=False,
    reasons=("a freed p2m page is used after the free",),
    title="P2M pool freeing may take excessively long", impact="integrity", severity="high",
)
#: not affected: the release has the fix
FIXED_344 = AdvisoryFinding(
    id="XSA-344", cves=("CVE-2020-25601",), verdict="not_affected", worst_case_ms=0.05,
    worst_case_ms_low=0.01, operations=("evtchn_reset",), fixed=True,
    reasons=("resetting 1,023 ports in sections of 64",),
    title="Lack of preemption in evtchn_reset() / evtchn_destroy()",
)
#: not affected: no fix, but within the budget
BUDGET_344 = replace(FIXED_344, worst_case_ms=0.511, worst_case_ms_low=0.102, fixed=False,
                     reasons=("resetting 1,023 ports takes 0.102-0.511 ms",))

#: affected by XSA-97 and XSA-344 (unbounded) and XSA-410, unknown for XSA-495; its teardown
#: (a related operation over the budget) is XSA-410's finding, not a second result
ADV = replace(BIG_HAP, name="adv", source=SourceRef("guests/adv.cfg"),
              decisive=SourceRef("guests/adv.cfg", 4, "memory"),
              advisories=(ADV_97, UNBOUNDED, TEARDOWN_410, UNKNOWN_495))
#: not affected by XSA-97 (nor XSA-344: fixed), affected by a memory corruption
UAF = replace(SMALL, name="uaf", source=SourceRef("guests/uaf.cfg"),
              advisories=(FIXED_344, INTEGRITY))
#: a PV guest: XSA-344 only, within the budget
QUIET = replace(PV, name="quiet", source=SourceRef("guests/quiet.cfg"),
                advisories=(BUDGET_344,))


def advisory_report(advisories: tuple[str, ...] = ()) -> AuditReport:
    """Guests with advisory findings (and one that could not be assessed), as a run that
    reports ``advisories`` (``--advisory``; empty: every one) writes them. The findings keep
    every advisory: the formats must leave out those the run does not report."""
    return AuditReport(findings=(ADV, UAF, QUIET, XM), host=dict(HOST), budget_ms=30.0,
                       tool_version="0.1.0", advisories=advisories)


#: the narrowed run of most tests: XSA-344 alone
NARROWED = ("XSA-344",)

# --- suppressed findings (``--suppress``), as the audit marks them ---------------------------

#: the operator's reasons, with where each was written
NOTE_97 = "migrations are disabled on this host (ops/suppress.toml:4)"
NOTE_410 = "guest is never destroyed, only its host rebooted (ops/suppress.toml:9)"
#: ADV with XSA-97 (its guest verdict and its entry) and XSA-410 suppressed: XSA-344 (affected)
#: and XSA-495 (unknown) still need a look
SILENCED = replace(ADV, name="silenced", source=SourceRef("guests/silenced.cfg"),
                   decisive=SourceRef("guests/silenced.cfg", 4, "memory"), suppressed=NOTE_97,
                   advisories=(replace(ADV_97, suppressed=NOTE_97), UNBOUNDED,
                               replace(TEARDOWN_410, suppressed=NOTE_410), UNKNOWN_495))


def suppressed_report(advisories: tuple[str, ...] = ()) -> AuditReport:
    """:func:`advisory_report` with the guest :data:`SILENCED` first: the same guest as
    ``ADV`` (which stays unsuppressed), but with two of its findings suppressed."""
    report = advisory_report(advisories)
    return replace(report, findings=(SILENCED, *report.findings))


# --- registry ---------------------------------------------------------------------------------


def test_registry_has_every_format() -> None:
    assert sorted(FORMATS) == ["csv", "json", "markdown", "openvex", "prometheus", "sarif", "table"]
    assert DEFAULT_FORMAT == "table"
    for name, cls in FORMATS.items():
        assert cls.name == name
        assert cls.description


def test_get_formatter_passes_options() -> None:
    table = get_formatter("table", color=True)
    assert isinstance(table, TableFormatter)
    assert table.color is True
    assert isinstance(get_formatter("json"), JsonFormatter)
    vex = get_formatter("openvex", timestamp=None)
    assert isinstance(vex, OpenVexFormatter)


def test_get_formatter_unknown_name() -> None:
    with pytest.raises(ValueError, match=r"unknown output format 'yaml' \(choose from: .*table"):
        get_formatter("yaml")


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_renders_empty_and_full_reports(name: str) -> None:
    formatter = get_formatter(name)
    for report in (AuditReport(findings=()), sample_report()):
        text = formatter.render(report)
        assert text.endswith("\n")
        assert not text.endswith("\n\n")
        text.encode("utf-8")  # no lone surrogates


# --- helpers ----------------------------------------------------------------------------------


def test_summary() -> None:
    s = summarize(sample_report())
    assert (s.guests, s.affected, s.not_affected, s.unknown, s.errors) == (6, 2, 3, 1, 1)
    assert s.by_verdict() == {"affected": 2, "not_affected": 3, "unknown": 1}
    assert summary_line(sample_report()) == (
        "6 guests: 2 affected, 3 not affected, 1 unknown; budget 30 ms"
    )
    assert summary_line(AuditReport(findings=(PV,), budget_ms=12.5)) == (
        "1 guest: 0 affected, 1 not affected, 0 unknown; budget 12.5 ms"
    )


def test_names_and_locations() -> None:
    assert display_name(BIG_HAP) == "big-hap"
    assert display_name(XM) == "xm-guest.cfg"
    assert guest_id(XM) == "legacy/xm-guest.cfg"
    assert decisive_ref(BIG_HAP) == SourceRef("guests/big-hap.cfg", 4, "memory")
    assert decisive_ref(XM) == SourceRef("legacy/xm-guest.cfg", 3)
    assert decisive_line(BIG_HAP) == 4
    assert decisive_line(PV) is None
    elsewhere = SourceRef("host/xl-info.txt", 20, "hap")
    from dataclasses import replace

    assert decisive_line(replace(SHADOW, decisive=elsewhere)) == 1  # the guest's own line
    assert finding_cve(PV) is None
    assert finding_cve(replace(SHADOW, cve=None)) == "CVE-2014-5149"


def test_number_formats() -> None:
    assert [format_ms(x) for x in (1234.5, 87.25, 9.5, 0.25, None)] == [
        "1234", "87.2", "9.50", "0.250", "?",
    ]
    assert format_mib(532480) == "520"
    assert format_mib(1536) == "1.5"
    assert format_mib(None) == "?"


def test_one_line_escapes_controls() -> None:
    assert one_line(WEIRD_NAME) == 'we"ird\\nname\\\\ü-日本'
    assert one_line("a\tb\x1b[31m") == "a\\tb\\x1b[31m"
    assert one_line("plain \\ back") == "plain \\ back"  # printable: unchanged


def test_host_facts_sorted_and_jsonable() -> None:
    report = AuditReport(findings=(), host={"b": (1, 2), "a": float("nan"), "c": Path("/x")})
    assert host_facts(report) == {"a": None, "b": [1, 2], "c": "/x"}
    assert list(host_facts(report)) == ["a", "b", "c"]


# --- write_atomic -----------------------------------------------------------------------------


def test_write_atomic_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "xenvmmu.prom"
    write_atomic(target, "first\n")
    assert target.read_bytes() == b"first\n"
    os.chmod(target, 0o666)
    old = os.umask(0o022)
    try:
        write_atomic(str(target), "second ü\n")
    finally:
        os.umask(old)
    assert target.read_bytes() == "second ü\n".encode()
    # the mode comes from the umask, never from the replaced file (a 0666 file or device
    # node must not make the report world-writable)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xenvmmu.prom"]


def test_write_atomic_new_file_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "out.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o644


def test_write_atomic_failure_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.txt"
    target.write_text("old\n")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]


def test_write_atomic_never_fails_on_a_lone_surrogate(tmp_path: Path) -> None:
    write_atomic(tmp_path / "r.txt", "bad \udcff\n")
    assert (tmp_path / "r.txt").read_bytes() == b"bad \\udcff\n"


def test_write_atomic_cleans_up_when_replace_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(src: object, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk on fire"):
        write_atomic(tmp_path / "out.sarif", "{}\n")
    assert list(tmp_path.iterdir()) == []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_dump_json_is_exactly_json_dumps_indent_2(value: object) -> None:
    assert dump_json(value) == json.dumps(value, indent=2, ensure_ascii=True) + "\n"


# --- the advisories a run reports, and the guest-level headline -------------------------------


def test_worst_advisory_orders_verdict_then_severity_then_figure() -> None:
    # affected before unknown before not affected, whatever the figures
    assert worst_advisory([BUDGET_344, UNKNOWN_495, TEARDOWN_410]) is TEARDOWN_410
    assert worst_advisory([BUDGET_344, UNKNOWN_495]) is UNKNOWN_495
    # then severity, then the longest section; an unbounded one beats any figure
    critical = replace(TEARDOWN_410, severity="critical", worst_case_ms=31.0)
    assert worst_advisory([TEARDOWN_410, critical]) is critical
    assert worst_advisory([TEARDOWN_410, UNBOUNDED]) is UNBOUNDED
    longer = replace(TEARDOWN_410, worst_case_ms=500.0)
    assert worst_advisory([TEARDOWN_410, longer]) is longer
    assert worst_advisory([TEARDOWN_410, replace(TEARDOWN_410)]) is TEARDOWN_410  # first
    assert worst_advisory([]) is None


def test_headline_is_xsa97_unless_the_run_leaves_it_out() -> None:
    report = advisory_report()
    head = headline(ADV, report)
    assert (head.advisory, head.verdict, head.worst_case_ms, head.xsa97) == (
        "XSA-97", "affected", 1234.5, True)
    assert headline(UAF, report).verdict == "not_affected"  # XSA-97's, though XSA-410 hits
    narrowed = advisory_report(("XSA-344", "XSA-495"))
    head = headline(ADV, narrowed)  # XSA-410 is not reported: the unbounded XSA-344
    assert (head.advisory, head.verdict, head.severity, head.unbounded, head.xsa97) == (
        "XSA-344", "affected", "high", True, False)
    assert head.decisive == UNBOUNDED.decisive and head.fixed is False
    assert headline(UAF, narrowed).advisory == "XSA-344"  # FIXED_344: not affected
    assert headline(UAF, narrowed).verdict == "not_affected"
    # no reported advisory concerns the guest: unknown when it could not be assessed
    xm = headline(XM, narrowed)
    assert (xm.advisory, xm.verdict, xm.reasons) == (None, "unknown", XM.reasons)
    pv = headline(PV, narrowed)
    assert (pv.advisory, pv.verdict, pv.reasons) == (None, "not_affected", ())


def test_summary_of_a_narrowed_run_counts_the_headlines() -> None:
    assert summarize(advisory_report()).by_verdict() == {
        "affected": 1, "not_affected": 2, "unknown": 1}  # XSA-97's
    assert summarize(advisory_report(("XSA-410",))).by_verdict() == {
        "affected": 2, "not_affected": 1, "unknown": 1}  # ADV and UAF: XSA-410
    assert summary_line(advisory_report(("XSA-410",))).startswith(
        "4 guests: 2 affected, 1 not affected, 1 unknown")


def test_guest_advisories_leave_out_what_is_not_reported() -> None:
    report = advisory_report(("XSA-97", "XSA-410"))
    assert guest_advisories(ADV, report) == (TEARDOWN_410,)
    assert guest_advisories(ADV, report, xsa97=True) == (ADV_97, TEARDOWN_410)
    assert guest_advisories(ADV, advisory_report(NARROWED), xsa97=True) == (UNBOUNDED,)
    twice = replace(ADV, advisories=(TEARDOWN_410, INTEGRITY))
    assert guest_advisories(twice, advisory_report()) == (TEARDOWN_410,)  # one per advisory


def test_stated_advisories_keep_an_unassessed_guest_unknown() -> None:
    narrowed = advisory_report(("XSA-344", "XSA-410"))
    stated = stated_advisories(XM, narrowed)
    assert [(a.id, a.verdict, a.reasons) for a in stated] == [
        ("XSA-344", "unknown", XM.reasons), ("XSA-410", "unknown", XM.reasons)]
    assert stated[0].cves == ("CVE-2020-25601",) and stated[0].title  # from the registry
    assert stated_advisories(XM, advisory_report()) == ()  # XSA-97 says it: unknown
    assert stated_advisories(PV, narrowed) == ()  # assessed, concerned by none


def test_related_findings_belong_to_their_advisory() -> None:
    resize = OpStall("set_allocation", ("toolstack",), False, 50.0, related=True)
    guest = replace(BIG_HAP, ops=(*BIG_HAP.ops, resize))  # teardown 40 ms, resize 50 ms
    everything = advisory_report()
    assert [(op.op, owner) for op, owner in reported_related(guest, everything)] == [
        ("set_allocation", None), ("teardown_relinquish", "XSA-410")]
    # an XSA-410 finding of the guest covers the teardown: no second finding
    covered = replace(guest, advisories=(TEARDOWN_410,))
    assert [op.op for op, _ in reported_related(covered, everything)] == ["set_allocation"]
    # a run without XSA-410 (and XSA-495, which covers shadow teardown) never shows it;
    # one without XSA-97 never shows an operation no advisory covers
    assert [op.op for op, _ in reported_related(guest, advisory_report(("XSA-97",)))] == [
        "set_allocation"]
    assert [op.op for op, _ in reported_related(guest, advisory_report(("XSA-410",)))] == [
        "teardown_relinquish"]
    assert reported_related(guest, advisory_report(NARROWED)) == ()
    assert op_advisories("teardown_final") and op_advisories("set_allocation") == ()


def test_advisory_counts_of_reported_advisories() -> None:
    assert advisory_counts(advisory_report()) == [
        ("XSA-97", {"affected": 1, "not_affected": 0, "unknown": 0}),
        ("XSA-344", {"affected": 1, "not_affected": 2, "unknown": 0}),
        ("XSA-410", {"affected": 2, "not_affected": 0, "unknown": 0}),
        ("XSA-495", {"affected": 0, "not_affected": 0, "unknown": 1}),
    ]
    # narrowed: only those, and one the run asked for is listed even if no guest met it
    assert advisory_counts(AuditReport(findings=(ADV,), advisories=("XSA-344", "XSA-999"))) == [
        ("XSA-344", {"affected": 1, "not_affected": 0, "unknown": 0}),
        ("XSA-999", {"affected": 0, "not_affected": 0, "unknown": 0}),
    ]


def test_advisory_text() -> None:
    assert advisory_text(UNBOUNDED) == (
        "affected, high, unbounded (CVE-2020-25601; not fixed in this release); Set "
        "max_event_channels = 1023 or less. Upgrade Xen to 4.13.2 or later (XSA-344 fixed).")
    assert advisory_text(INTEGRITY) == (
        "affected, high, integrity impact (CVE-2022-33746; not fixed in this release)")
    assert advisory_text(UNKNOWN_495) == (
        "unknown (CVE-2026-42493): shadow pool size unknown: shadow_memory not given")
    assert advisory_text(FIXED_344) == (
        "not affected, 0.010-0.050 ms (CVE-2020-25601; fixed in this release)")
    assert advisory_figure(TEARDOWN_410) == "40.0-380 ms" and advisory_figure(INTEGRITY) == "-"


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("advisories", [(), NARROWED, ("XSA-97", "XSA-410"), ("XSA-495",)])
def test_write_gives_what_render_gives_for_narrowed_runs(
    name: str, advisories: tuple[str, ...],
) -> None:
    report = advisory_report(advisories)
    for options in ({}, {"verbose": True}, {"summary_only": True}):
        formatter = get_formatter(name, timestamp=TS, **options)
        out = io.StringIO()
        formatter.write(AuditStream.of(report), out)
        assert out.getvalue() == formatter.render(report)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_a_run_without_xsa97_writes_nothing_of_it(name: str) -> None:
    """Narrowed to other advisories, no format writes an XSA-97 result (its CVEs, rules,
    series, fix, figures), nor anything of an advisory the run leaves out; the guests stay."""
    text = get_formatter(name, timestamp=TS, verbose=True).render(
        advisory_report(NARROWED))
    for absent in ("XSA-97", "CVE-2014-5146", "CVE-2014-5149", "XSA-410", "XSA-495",
                   "CVE-2022-33746", "Upgrade Xen to 4.4.1", "1234", "logdirty"):
        assert absent not in text, absent
    assert "XSA-344" in text
    assert "CVE-2020-25601" in text or name in ("csv", "prometheus", "table")  # ids only
    # every guest is there (SARIF has results for those to look at only: adv's XSA-344)
    assert all(g in text for g in (("adv",) if name == "sarif" else ("adv", "uaf", "quiet")))
    full = get_formatter(name, timestamp=TS, verbose=True).render(advisory_report())
    assert "CVE-2014-5146" in full and "XSA-410" in full
