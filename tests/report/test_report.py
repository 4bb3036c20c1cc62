"""`xenvmmu report`: one self-contained HTML file with every guest, the figures, the costs
and the digests; every string from the inputs escaped."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest

from xenvmmu import __version__
from xenvmmu.cli import main
from xenvmmu.costs import default_profile
from xenvmmu.report.html import SEVERITY_ORDER, ordered_findings

from .conftest import EXAMPLES

HOST = EXAMPLES / "hosts" / "xen-4.4.0-intel.txt"
GUESTS = EXAMPLES / "guests"
HOSTILE = "<script>alert('x')</script>&\"<img src=http://evil/>"


class Page(HTMLParser):
    """Tags, attributes and text of a page, and whether it is well nested."""

    VOID: ClassVar[frozenset[str]] = frozenset({"meta", "link", "img", "br", "hr", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.mismatched: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.mismatched.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert not page.mismatched and not page.stack
    return page


def report(tmp_path: Path, *argv: str) -> tuple[int, Path]:
    out = tmp_path / "report.html"
    return main(["report", "--output", str(out), *argv]), out


def test_example_fleet_report(tmp_path: Path, tiny_sweep: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    status, out = report(tmp_path, "--host", str(HOST), "--sweep", str(tiny_sweep),
                         "--plots-dir", str(tmp_path / "plots"), str(GUESTS))
    assert status == 1  # some guest affected, as `xenvmmu audit`
    assert "7 guest(s)" in capsys.readouterr().err
    page = parse(out)
    text = " ".join(page.text)
    for name in ("analytics", "build-pv", "db-primary", "legacy-win2008", "old-xm.cfg",
                 "dns-pvh", "web-01"):
        assert name in text
    sections = {a.get("id") for _, a in page.tags if a.get("id")}
    assert {"summary", "audit", "guests", "figures", "sweep", "costs", "inputs"} <= sections
    images = [a for t, a in page.tags if t == "img"]
    assert len(images) == 2  # the stall and the victim figures of the attack scenario
    assert all((a.get("src") or "").startswith("data:image/svg+xml;base64,") for a in images)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "stall-attack.png", "stall-attack.svg", "victim-attack.png", "victim-attack.svg"]
    # self-contained: no script, no external resource
    assert not any(t in ("script", "iframe", "object", "embed") for t, _ in page.tags)
    for tag, attrs in page.tags:
        if tag in ("img", "link"):
            assert (attrs.get("src") or attrs.get("href") or "").startswith("data:")
    assert f"xenvmmu {__version__}" in text
    # the cost profile with its sources, and the digests of the inputs
    profile = default_profile()
    assert all(src in text for src in profile.sources.values())
    digest = hashlib.sha256((GUESTS / "analytics.cfg").read_bytes()).hexdigest()
    assert digest in text
    assert hashlib.sha256(HOST.read_bytes()).hexdigest() in text
    assert hashlib.sha256((tiny_sweep / "results.jsonl").read_bytes()).hexdigest() in text


def test_audit_table_is_ordered_by_severity(tmp_path: Path) -> None:
    status, out = report(tmp_path, "--host", str(HOST), str(GUESTS))
    assert status == 1
    html = out.read_text()
    table = html[html.index('id="audit"'):html.index('id="guests"')]
    severities = re.findall(r'class="badge sev-(\w+)"', table)
    assert len(severities) == 7
    assert severities == sorted(severities, key=SEVERITY_ORDER.__getitem__)
    assert severities[0] == "critical"


def test_hostile_names_are_escaped(tmp_path: Path) -> None:
    guests = tmp_path / "guests"
    guests.mkdir()
    quoted = HOSTILE.replace("'", "\\'")
    (guests / "evil.cfg").write_text(
        f"name = '{quoted}'\nbuilder = 'hvm'\nmemory = 65536\nhap = 0\n")
    status, out = report(tmp_path, "--xen-version", "4.4.0", str(guests))
    assert status == 1
    html = out.read_text()
    assert "<script" not in html and "<img src=http" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;&quot;" in html
    page = parse(out)
    assert HOSTILE in " ".join(page.text)  # shown as text, exactly


def test_sweep_only_report(tmp_path: Path, tiny_sweep: Path) -> None:
    status, out = report(tmp_path, "--sweep", str(tiny_sweep))
    assert status == 0
    text = " ".join(parse(out).text)
    assert "8 point(s)" in text and "Fleet summary" not in text


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report(tmp_path)[0] == 2
    assert "nothing to report" in capsys.readouterr().err
    assert report(tmp_path, str(GUESTS))[0] == 2
    assert "describe the host" in capsys.readouterr().err
    assert report(tmp_path, "--sweep", str(tmp_path))[0] == 2
    assert "not a sweep directory" in capsys.readouterr().err
    assert report(tmp_path, "--xen-version", "4.4.0", str(tmp_path / "missing"))[0] == 2
    assert "nothing readable" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


def test_report_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from xenvmmu.report import plots

    monkeypatch.setattr(plots, "available", lambda: False)
    status, out = report(tmp_path, "--host", str(HOST), str(GUESTS))
    assert status == 1
    assert "xenvmmu[report]" in capsys.readouterr().err
    page = parse(out)
    assert not [t for t, _ in page.tags if t == "img"]
    assert "No figures" in " ".join(page.text)


def test_ordered_findings_ties() -> None:
    from xenvmmu.audit import audit_settings, run_audit
    from xenvmmu.toolstack import load_host

    audit = run_audit([GUESTS], load_host(HOST), audit_settings())
    order = ordered_findings(audit.findings)
    assert [f.severity for f in order][:2] == ["critical", "critical"]
    assert order[0].worst_case_ms is not None and order[1].worst_case_ms is not None
    assert order[0].worst_case_ms >= order[1].worst_case_ms


def test_reproducible_with_source_date_epoch(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1400000000")
    a = tmp_path / "a.html"
    b = tmp_path / "b.html"
    for out in (a, b):
        assert main(["report", "--host", str(HOST), "--output", str(out), str(GUESTS)]) == 1
    assert a.read_bytes() == b.read_bytes()
    assert "2014-05-13T16:53:20+00:00" in a.read_text()
