"""``--format prometheus``: parsed back line by line with a small exposition-format parser."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from xenvmmu.audit.findings import AuditReport, SourceRef
from xenvmmu.audit.format import PrometheusFormatter, write_atomic
from xenvmmu.audit.format.prometheus import escape_label, format_value

from .test_format_base import (
    ADV,
    BIG_HAP,
    NARROWED,
    SMALL,
    WEIRD_NAME,
    XM,
    advisory_report,
    sample_report,
    suppressed_report,
)

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_HELP = re.compile(rf"^# HELP ({_NAME}) (.*)$")
_TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")
_SAMPLE = re.compile(rf"^({_NAME})(\{{.*\}})? (\S+)$")  # exactly two fields: no timestamp
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    help: str = ""
    type: str = ""
    samples: dict[Labels, float] = field(default_factory=dict)


def parse_labels(text: str) -> Labels:
    """``{a="x",b="y\\"z"}`` -> ``(("a", "x"), ("b", 'y"z'))``, undoing the escapes."""
    assert text[0] == "{" and text[-1] == "}"
    body, i, out = text[1:-1], 0, []
    while i < len(body):
        m = _LABEL_NAME.match(body, i)
        assert m, f"bad label name at {body[i:]!r}"
        name, i = m.group(), m.end()
        assert body[i:i + 2] == '="', f"expected =\" after {name}"
        i += 2
        value = []
        while body[i] != '"':
            if body[i] == "\\":
                nxt = body[i + 1]
                assert nxt in '\\"n', f"bad escape \\{nxt}"
                value.append("\n" if nxt == "n" else nxt)
                i += 2
            else:
                assert body[i] != "\n"
                value.append(body[i])
                i += 1
        out.append((name, "".join(value)))
        i += 1
        if i < len(body):
            assert body[i] == ",", f"expected , at {body[i:]!r}"
            i += 1
    return tuple(out)


def parse(text: str) -> dict[str, Family]:
    """The exposition text as families; asserts the textfile collector's rules."""
    assert text.endswith("\n")
    families: dict[str, Family] = {}
    current: str | None = None
    for line in text[:-1].split("\n"):
        if m := _HELP.match(line):
            assert m.group(1) not in families, f"family {m.group(1)} twice"
            current = m.group(1)
            families[current] = Family(help=m.group(2))
        elif m := _TYPE.match(line):
            assert current is not None and m.group(1) == current
            assert not families[current].type
            families[current].type = m.group(2)
        else:
            m = _SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, labels, value = m.groups()
            assert name == current, f"{name} outside its family"
            key = parse_labels(labels) if labels else ()
            assert key not in families[name].samples, f"duplicate series {name}{labels}"
            families[name].samples[key] = float(value)
    return families


def guest(name: str, source: str, paging: str) -> Labels:
    return (("guest", name), ("source", source), ("paging", paging))


def test_families_are_gauges_with_help() -> None:
    families = parse(PrometheusFormatter().render(sample_report()))
    assert list(families) == [
        "xenvmmu_audit_budget_seconds",
        "xenvmmu_guests",
        "xenvmmu_input_errors",
        "xenvmmu_guest_info",
        "xenvmmu_guest_affected",
        "xenvmmu_guest_assessed",
        "xenvmmu_guest_worst_case_stall_seconds",
        "xenvmmu_guest_advisory_affected",
        "xenvmmu_guest_advisory_assessed",
        "xenvmmu_guest_advisory_worst_case_stall_seconds",
        "xenvmmu_guest_advisory_suppressed",
    ]
    assert all(f.type == "gauge" and f.help for f in families.values())


def test_values() -> None:
    fam = parse(PrometheusFormatter().render(sample_report()))
    assert fam["xenvmmu_audit_budget_seconds"].samples == {(): 0.03}
    assert fam["xenvmmu_input_errors"].samples == {(): 1.0}
    assert fam["xenvmmu_guests"].samples == {
        (("verdict", "affected"),): 2.0,
        (("verdict", "not_affected"),): 3.0,
        (("verdict", "unknown"),): 1.0,
    }
    weird = guest(WEIRD_NAME, "guests/odd name.cfg", "hap")
    assert fam["xenvmmu_guest_affected"].samples == {
        guest("big-hap", "guests/big-hap.cfg", "hap"): 1.0,
        guest("shadow-db", "guests/shadow-db.cfg", "shadow"): 1.0,
        guest("pv-web", "guests/pv-web.cfg", ""): 0.0,
        guest("xm-guest.cfg", "legacy/xm-guest.cfg", ""): 0.0,
        weird: 0.0,
        guest("small", "guests/small.cfg", "hap"): 0.0,
    }
    assert fam["xenvmmu_guest_assessed"].samples[guest("xm-guest.cfg", "legacy/xm-guest.cfg",
                                                       "")] == 0.0
    assert sum(fam["xenvmmu_guest_assessed"].samples.values()) == 5.0
    stall = fam["xenvmmu_guest_worst_case_stall_seconds"].samples
    assert stall == {
        guest("big-hap", "guests/big-hap.cfg", "hap"): 1.2345,
        guest("shadow-db", "guests/shadow-db.cfg", "shadow"): 0.08725,
        weird: 0.00025,
        guest("small", "guests/small.cfg", "hap"): 0.0095,
    }  # no series for guests whose stall is unknown


def test_info_labels_are_enums_and_identifiers() -> None:
    info = parse(PrometheusFormatter().render(sample_report()))["xenvmmu_guest_info"].samples
    first = next(iter(info))
    assert dict(first) == {
        "guest": "big-hap", "source": "guests/big-hap.cfg", "paging": "hap", "type": "hvm",
        "cve": "CVE-2014-5146", "severity": "high", "verdict": "affected",
        "xen_version": "4.4.0",
    }
    assert set(info.values()) == {1.0}
    all_values = {v for labels in info for _, v in labels}
    for f in sample_report().findings:  # no free text: reasons and mitigations never appear
        for text in (*f.reasons, *(m.text for m in f.mitigations)):
            assert text not in all_values


def test_escaping_on_the_wire() -> None:
    text = PrometheusFormatter().render(sample_report())
    assert (
        'xenvmmu_guest_affected{guest="we\\"ird\\nname\\\\ü-日本",'
        'source="guests/odd name.cfg",paging="hap"} 0\n'
    ) in text
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_parser_rejects_timestamps() -> None:
    """The parser used above would catch a timestamp (which node_exporter refuses)."""
    good = "# HELP m x\n# TYPE m gauge\nm{a=\"b c\"} 1\n"
    assert parse(good)["m"].samples == {(("a", "b c"),): 1.0}
    with pytest.raises(AssertionError, match="not a sample line"):
        parse(good.replace("} 1", "} 1 1700000000000"))


def test_empty_report() -> None:
    assert PrometheusFormatter().render(AuditReport(findings=())) == (
        "# HELP xenvmmu_audit_budget_seconds Latency budget a guest's longest non-preemptible "
        "virtual-MMU section is judged against (XSA-97).\n"
        "# TYPE xenvmmu_audit_budget_seconds gauge\n"
        "xenvmmu_audit_budget_seconds 0.03\n"
        "# HELP xenvmmu_guests Guests audited for XSA-97, by verdict.\n"
        "# TYPE xenvmmu_guests gauge\n"
        'xenvmmu_guests{verdict="affected"} 0\n'
        'xenvmmu_guests{verdict="not_affected"} 0\n'
        'xenvmmu_guests{verdict="unknown"} 0\n'
        "# HELP xenvmmu_input_errors Inputs the XSA-97 audit could not read or understand.\n"
        "# TYPE xenvmmu_input_errors gauge\n"
        "xenvmmu_input_errors 0\n"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1"), (0.0, "0"), (1.2345, "1.2345"), (1e-7, "1e-07"), (math.inf, "+Inf"),
     (math.nan, "NaN")],
)
def test_value_format(value: float, text: str) -> None:
    assert format_value(value) == text
    if not math.isnan(value):
        assert float(text) == value


def test_infinite_stall() -> None:
    report = AuditReport(findings=(replace(BIG_HAP, worst_case_ms=math.inf),))
    fam = parse(PrometheusFormatter().render(report))
    assert list(fam["xenvmmu_guest_worst_case_stall_seconds"].samples.values()) == [math.inf]


def test_written_atomically_for_the_textfile_collector(tmp_path: Path) -> None:
    out = tmp_path / "xenvmmu.prom"
    out.write_text("old\n")
    text = PrometheusFormatter().render(sample_report())
    write_atomic(out, text)
    assert out.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["xenvmmu.prom"]


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Prometheus) is not installed")
@pytest.mark.parametrize("case", ["sample", "advisories", "narrowed", "advisory-twins", "empty",
                                  "duplicates", "infinite"])
def test_promtool_check_metrics(case: str) -> None:
    """Prometheus's own checker (parser and lint) accepts the output, duplicate guest names
    and unnamed domains of one listing included."""
    twin = replace(XM, source=SourceRef("list.json"))
    adv_twin = replace(ADV, source=SourceRef("list.json"), name=None)
    reports = {
        "sample": sample_report(),
        "advisories": advisory_report(),
        "narrowed": advisory_report(NARROWED),
        "advisory-twins": AuditReport(findings=(adv_twin, adv_twin, ADV), advisories=NARROWED),
        "empty": AuditReport(findings=()),
        "duplicates": AuditReport(findings=(
            replace(SMALL, name="web"), replace(BIG_HAP, name="web"),
            replace(SMALL, name="web", source=SourceRef("other/small.cfg")), twin, twin, twin)),
        "infinite": AuditReport(findings=(replace(BIG_HAP, worst_case_ms=math.inf),)),
    }
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, "check", "metrics"], check=False, capture_output=True,
                          text=True, input=PrometheusFormatter().render(reports[case]),
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not done.stdout.strip() and not done.stderr.strip()  # no lint problem either


# --- the advisories of the registry -----------------------------------------------------------


def test_an_advisory_label_per_advisory() -> None:
    fam = parse(PrometheusFormatter().render(advisory_report()))
    adv = guest("adv", "guests/adv.cfg", "hap")
    uaf = guest("uaf", "guests/uaf.cfg", "hap")
    quiet = guest("quiet", "guests/quiet.cfg", "")
    avail = ("impact", "availability")
    assert fam["xenvmmu_guest_advisory_affected"].samples == {
        (*adv, ("advisory", "XSA-97"), avail): 1.0,  # XSA-97's entry too
        (*adv, ("advisory", "XSA-344"), avail): 1.0,
        (*adv, ("advisory", "XSA-410"), avail): 1.0,
        (*adv, ("advisory", "XSA-495"), avail): 0.0,  # unknown
        (*uaf, ("advisory", "XSA-344"), avail): 0.0,
        (*uaf, ("advisory", "XSA-410"), ("impact", "integrity")): 1.0,
        (*quiet, ("advisory", "XSA-344"), avail): 0.0,
    }
    assessed = fam["xenvmmu_guest_advisory_assessed"].samples
    assert assessed[(*adv, ("advisory", "XSA-495"))] == 0.0
    assert assessed[(*adv, ("advisory", "XSA-344"))] == 1.0 and len(assessed) == 7
    # a figure only where the advisory has one: not the unbounded XSA-344, not the
    # integrity finding, not the unknown
    assert fam["xenvmmu_guest_advisory_worst_case_stall_seconds"].samples == {
        (*adv, ("advisory", "XSA-97")): 1.2345,
        (*adv, ("advisory", "XSA-410")): 0.38,
        (*uaf, ("advisory", "XSA-344")): 0.05 / 1000,
        (*quiet, ("advisory", "XSA-344")): 0.511 / 1000,
    }
    assert fam["xenvmmu_advisory_guests"].samples == {
        (("advisory", a), ("verdict", v)): n
        for a, counts in [("XSA-97", (1, 0, 0)), ("XSA-344", (1, 2, 0)),
                          ("XSA-410", (2, 0, 0)), ("XSA-495", (0, 0, 1))]
        for v, n in zip(("affected", "not_affected", "unknown"), counts, strict=True)
    }
    # the XSA-97 families are there: the run reports it
    assert fam["xenvmmu_guest_affected"].samples[adv] == 1.0


def test_narrowed_to_other_advisories_has_no_xsa97_series() -> None:
    text = PrometheusFormatter().render(advisory_report(NARROWED))
    fam = parse(text)
    assert list(fam) == [
        "xenvmmu_audit_budget_seconds",
        "xenvmmu_guests",
        "xenvmmu_advisory_guests",
        "xenvmmu_input_errors",
        "xenvmmu_guest_info",
        "xenvmmu_guest_advisory_affected",
        "xenvmmu_guest_advisory_assessed",
        "xenvmmu_guest_advisory_worst_case_stall_seconds",
        "xenvmmu_guest_advisory_suppressed",
    ]
    assert "XSA-97" not in text and "CVE-2014" not in text
    for family in fam.values():
        for labels in family.samples:
            assert dict(labels).get("advisory", "XSA-344") == "XSA-344"
    # the guest-level verdict: the worst reported advisory's (xm: could not be assessed)
    assert fam["xenvmmu_guests"].samples == {
        (("verdict", "affected"),): 1.0,
        (("verdict", "not_affected"),): 2.0,
        (("verdict", "unknown"),): 1.0,
    }
    info = {dict(k)["guest"]: dict(k) for k in fam["xenvmmu_guest_info"].samples}
    assert (info["adv"]["verdict"], info["adv"]["severity"], info["adv"]["cve"]) == (
        "affected", "high", "")
    assert info["xm-guest.cfg"]["verdict"] == "unknown"


def test_advisory_series_stay_unique() -> None:
    twin = replace(ADV, source=SourceRef("list.json"), name=None)
    fam = parse(PrometheusFormatter().render(AuditReport(findings=(twin, twin, ADV))))
    keys = list(fam["xenvmmu_guest_advisory_affected"].samples)
    assert len(keys) == 3 * 4 and len(set(keys)) == len(keys)  # parse() refuses duplicates
    assert {dict(k).get("occurrence", "") for k in keys} == {"", "2"}


# --- suppressed findings (--suppress) ---------------------------------------------------------


def test_suppressed_gauge_per_guest_and_advisory() -> None:
    families = parse(PrometheusFormatter().render(suppressed_report()))
    family = families["xenvmmu_guest_advisory_suppressed"]
    assert family.type == "gauge" and "--suppress" in family.help
    samples = {(dict(k)["guest"], dict(k)["advisory"]): v for k, v in family.samples.items()}
    assert {a: v for (g, a), v in samples.items() if g == "silenced"} == {
        "XSA-97": 1, "XSA-344": 0, "XSA-410": 1, "XSA-495": 0}
    assert {a: v for (g, a), v in samples.items() if g == "adv"} == {
        "XSA-97": 0, "XSA-344": 0, "XSA-410": 0, "XSA-495": 0}
    # the series of xenvmmu_guest_advisory_affected that are affected or unknown (what a
    # suppression can silence), whose verdict stays
    affected = families["xenvmmu_guest_advisory_affected"].samples
    assessed = families["xenvmmu_guest_advisory_assessed"].samples
    assert set(family.samples) == {k for k, v in affected.items()
                                   if v == 1 or assessed[k[:-1]] == 0}
    assert len(family.samples) < len(affected)  # none for uaf's XSA-344, quiet, ...
    key = next(k for k in family.samples if ("guest", "silenced") in k
               and ("advisory", "XSA-410") in k)
    assert key[-2:] == (("advisory", "XSA-410"), ("impact", "availability"))
    assert affected[key] == 1
