"""The shared sample report of the format tests, and tests of ``xenvmmu.audit.format.base``.

``sample_report()`` is imported by the other ``test_format_*`` modules: one affected HAP guest
(4.4.0, 64 GiB, decided by its ``memory`` line), one affected shadow guest (``hap=0``), one PV
guest, one xm-era Python config that could not be assessed, one HAP guest on a fixed release
whose name and path contain quotes, a newline, a backslash and non-ASCII characters, one small
HAP guest under budget, and one input error.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenvmmu.audit.findings import (
    AuditReport,
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
    decisive_line,
    decisive_ref,
    display_name,
    dump_json,
    finding_cve,
    format_mib,
    format_ms,
    guest_id,
    host_facts,
    one_line,
    summarize,
    summary_line,
)

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
