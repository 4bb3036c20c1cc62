"""Streaming: every format writes guest by guest from an ``AuditStream`` (``iter_audit``),
keeps no finding, and gives what ``render`` gives for the same report; the shape cache of
``iter_audit`` gives the findings a guest-by-guest assessment gives."""

from __future__ import annotations

import gc
import io
import json
import weakref
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xenvmmu.audit import api
from xenvmmu.audit.api import audit_settings, iter_audit, run_audit
from xenvmmu.audit.findings import AuditReport, AuditStream, Finding, SourceRef
from xenvmmu.audit.format import FORMATS, Formatter, get_formatter, open_atomic
from xenvmmu.audit.format.base import JsonListWriter, dump_json, encode_json
from xenvmmu.toolstack import host_from_flags, load_host

from ..conftest import REPO
from .test_format_base import (
    BIG_HAP,
    JSON_VALUES,
    PV,
    SHADOW,
    SMALL,
    WEIRD,
    XM,
    sample_report,
)

EXAMPLES = REPO / "examples"
OPTIONS: list[dict[str, bool | int | None]] = [
    {}, {"verbose": True}, {"summary_only": True}, {"width": 80}, {"verbose": True, "width": 60},
]


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("options", OPTIONS)
def test_write_gives_what_render_gives(name: str, options: dict[str, bool | int | None]) -> None:
    for report in (sample_report(), AuditReport(findings=())):
        # one issue time for both (OpenVEX writes it: "now" could move between the two)
        formatter = get_formatter(name, timestamp=datetime(2026, 1, 2, tzinfo=UTC), **options)
        out = io.StringIO()
        formatter.write(AuditStream.of(report), out)
        assert out.getvalue() == formatter.render(report)


def _fleet(n: int) -> Iterator[Finding]:
    """``n`` fresh findings (each a new object), made only when asked for."""
    kinds = (BIG_HAP, SHADOW, PV, XM, WEIRD, SMALL)
    for i in range(n):
        f = kinds[i % len(kinds)]
        yield replace(f, name=f"g{i}", source=SourceRef(f"d{i % 3}/g{i}.cfg", f.source.line))


STREAMING = sorted(n for n in FORMATS if FORMATS[n].write is not Formatter.write)


@pytest.mark.parametrize("name", STREAMING)
def test_streaming_formats_keep_no_finding(name: str) -> None:
    """While a format writes, the findings it was given are gone (weak references die): it
    keeps compact rows or temporary files, never the Finding objects."""
    alive: list[weakref.ref[Finding]] = []
    most = 0

    def findings() -> Iterator[Finding]:
        nonlocal most
        for f in _fleet(600):
            alive.append(weakref.ref(f))
            gc.collect() if len(alive) % 200 == 0 else None
            most = max(most, sum(r() is not None for r in alive))
            yield f

    audit = AuditStream(findings(), host={"xen_version": "4.4.0"}, tool_version="t")
    out = io.StringIO()
    get_formatter(name, verbose=True).write(audit, out)
    gc.collect()
    assert most <= 3, most  # the one being written (and the generator's frame)
    assert all(r() is None for r in alive)
    assert audit.guests == 600 and audit.counts["affected"] == 200


def test_core_formats_stream() -> None:
    assert {"json", "markdown", "openvex", "prometheus", "sarif", "table"} <= set(STREAMING)


def test_a_render_only_format_still_works() -> None:
    class Plain(Formatter):
        name = "plain-test"
        description = "test"

        def render(self, report: AuditReport) -> str:
            return f"{len(report.findings)} {len(report.errors)}\n"

    out = io.StringIO()
    Plain().write(AuditStream.of(sample_report()), out)
    assert out.getvalue() == "6 1\n"
    with pytest.raises(TypeError, match="write\\(\\) or render\\(\\)"):
        type("Nothing", (Formatter,), {"name": "n", "description": "d"})


def test_stream_is_read_once_and_peek_keeps_the_first() -> None:
    audit = AuditStream.of(sample_report())
    first = audit.peek()
    assert first is BIG_HAP and audit.peek() is first
    assert list(audit) == list(sample_report().findings)
    assert audit.counts == {"affected": 2, "not_affected": 3, "unknown": 1}
    with pytest.raises(RuntimeError):
        list(audit)
    with pytest.raises(RuntimeError):
        audit.peek()
    assert AuditStream(()).peek() is None


@given(JSON_VALUES, st.integers(min_value=0, max_value=4))
def test_fast_encoder_is_dump_json(value: object, level: int) -> None:
    newline = "\n" + "  " * level
    expected = json.dumps(value, indent=2, ensure_ascii=True).replace("\n", newline)
    assert encode_json(value, newline) == expected


@given(st.lists(JSON_VALUES, max_size=5), st.integers(min_value=0, max_value=3))
def test_list_writer_is_dump_json(items: list[object], errors: int) -> None:
    out = io.StringIO()
    w = JsonListWriter(out)
    w.begin({"head": [1, {"a": "b"}], "runs": [{"results": w.placeholder, "n": 0}]})
    for item in items:
        w.item(item)
    w.end({"head": [1, {"a": "b"}], "runs": [{"results": w.placeholder, "n": errors}]})
    assert out.getvalue() == dump_json(
        {"head": [1, {"a": "b"}], "runs": [{"results": items, "n": errors}]})


def test_deep_values_fall_back_to_the_encoder_without_recursion() -> None:
    deep: object = "x"
    for _ in range(3000):
        deep = [deep]
    assert encode_json(deep, "\n") + "\n" == dump_json(deep)


# --- the library: iter_audit ------------------------------------------------------------------


def test_iter_audit_is_run_audit_guest_by_guest() -> None:
    host = load_host(EXAMPLES / "hosts" / "xen-4.4.0-intel.txt")
    paths = [str(EXAMPLES / "guests"), "/nonexistent/x.cfg"]
    report = run_audit(paths, host, audit_settings())
    audit = iter_audit(paths, host, audit_settings())
    assert audit.host == report.host and audit.inputs_read == 0 and not audit.errors
    findings = list(audit)
    assert tuple(findings) == report.findings
    assert audit.errors == list(report.errors) and audit.inputs_read == report.inputs_read == 7
    assert audit.counts == {"affected": 2, "not_affected": 4, "unknown": 1}


def test_iter_audit_refuses_bad_arguments_at_once() -> None:
    with pytest.raises(ValueError, match="patched or profile"):
        iter_audit([], host_from_flags("4.4.0"), audit_settings(), patched=frozenset({"x"}),
                   profile=host_from_flags("4.4.0").profile())


def _weird_fleet(d: Path) -> None:
    """Guests of few shapes under names and paths that test the shape cache's stand-ins."""
    body = ('builder="hvm"\nmemory=65536\nvcpus=4\n', 'builder="hvm"\nmemory=1024\nhap=0\n',
            'memory=2048\n', 'builder="hvm"\nmemory=99999999999999999999\n',
            'builder="hvm"\nmemory=4096\nshadow_memory=8\nhap=0\n', "import os\nmemory=1\n")
    names = ["web", "web", 'q"uote', "tab\there", "caf\u00e9", None, "x" * 200, "web"]
    for i in range(48):
        sub = d / f"d{i % 4}" / ("ü" if i % 5 == 0 else "plain")
        sub.mkdir(parents=True, exist_ok=True)
        name = names[i % len(names)]
        head = "" if name is None else f'name="{name}"\n'
        (sub / f"vm {i}.cfg").write_text(head + body[i % len(body)])
    (d / "list.json").write_text(json.dumps([
        {"domid": n, "config": {"c_info": {"name": "web", "type": "hvm",
                                           "uuid": f"00000000-0000-4000-8000-{n:012d}"},
                                "b_info": {"max_memkb": 1 << 26, "target_memkb": 1 << 26,
                                           "max_vcpus": 2}}}
        for n in range(1, 5)]))


@pytest.mark.parametrize("host_file", ["xen-4.4.0-intel", "xen-4.4.2-intel-watchdog",
                                       "xen-4.17.3-amd"])
def test_shape_cache_gives_the_findings_of_one_by_one(
    tmp_path: Path, host_file: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _weird_fleet(tmp_path)
    host = load_host(EXAMPLES / "hosts" / f"{host_file}.txt")
    paths = [str(EXAMPLES / "guests"), str(tmp_path)]
    calls = 0
    assess = api.assess

    def counted(*args: object) -> Finding:
        nonlocal calls
        calls += 1
        return assess(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "assess", counted)
    cached = run_audit(paths, host, audit_settings())
    assert calls < 40  # 59 guests of a few shapes
    monkeypatch.setattr(api, "SHAPE_CACHE_SIZE", 0)
    alone = run_audit(paths, host, audit_settings())
    assert len(cached.findings) == 7 + 48 + 4
    assert cached == alone
    uuids = [f.uuid for f in cached.findings if f.source.path.endswith("list.json")]
    assert uuids == [f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 5)]


def test_open_atomic_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), open_atomic(target) as out:
        out.write("half a report")
        raise RuntimeError("the audit failed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
