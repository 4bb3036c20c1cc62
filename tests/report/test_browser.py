"""The report in a real browser: headless Chromium loads it, every image decodes, nothing is
fetched from the network, the console stays clean; a screenshot is kept in the test's
temporary directory (``report.png``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenvmmu.cli import main

from .cdp import Chromium
from .conftest import EXAMPLES

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_in_chromium(chromium: str, tiny_sweep: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (xenvmmu[report])")
    out = tmp_path / "report.html"
    status = main(["report", "--host", str(EXAMPLES / "hosts" / "xen-4.4.0-intel.txt"),
                   "--sweep", str(tiny_sweep), "--output", str(out),
                   str(EXAMPLES / "guests")])
    assert status == 1
    with Chromium(chromium, tmp_path / "profile") as browser:
        page = browser.check_page(out.as_uri())
    shot = tmp_path / "report.png"
    shot.write_bytes(page.screenshot)
    assert page.title == "XSA-97 report"
    assert len(page.images) == 2, page.images
    assert all(i["ok"] and i["width"] >= 800 for i in page.images), page.images
    assert page.errors == [], page.errors
    assert not page.failed, page.failed
    assert all(u.startswith(("file:", "data:")) for u in page.requests), page.requests
    assert page.screenshot.startswith(PNG) and len(page.screenshot) > 50_000
