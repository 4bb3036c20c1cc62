"""Headless Chromium for the report's browser test, driven over the DevTools protocol.

Chromium is started with ``--remote-debugging-pipe``: it reads protocol messages from file
descriptor 3 and writes to 4, each a JSON object ending with a NUL byte. That needs no
WebSocket client and no port. :func:`find_chromium` returns the browser or installs Debian's
``chromium`` package when the tests run as root; otherwise it says why not.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-extensions", "--hide-scrollbars", "--window-size=1280,900",
    "--remote-debugging-pipe",
)


def find_chromium() -> tuple[str | None, str]:
    """(path, "") when Chromium is there or could be installed, else (None, why not)."""
    found = shutil.which("chromium") or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if found:
        return found, ""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None, (f"headless Chromium is not installed ({CHROMIUM}) and the tests do not "
                      "run as root, so they cannot install it: run `apt-get install -y "
                      "chromium` as root to enable this test")
    if shutil.which("apt-get") is None:
        return None, f"headless Chromium is not installed ({CHROMIUM}) and there is no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ("-o", "DPkg::Lock::Timeout=300")
    for argv, timeout in ((["apt-get", *lock, "update"], 600),
                          (["apt-get", *lock, "install", "-y", "chromium"], 1200)):
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"`{' '.join(argv)}` failed: {e}"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return None, f"`{' '.join(argv)}` failed ({done.returncode}): {' / '.join(tail)}"
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM, ""
    return None, f"apt-get installed chromium but {CHROMIUM} is missing"


class CdpError(Exception):
    pass


@dataclass
class PageCheck:
    """What the browser saw while loading a page."""

    console: list[dict[str, Any]] = field(default_factory=list)  # console and log entries
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # URLs the page asked for
    failed: list[dict[str, Any]] = field(default_factory=list)  # Network.loadingFailed
    images: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    screenshot: bytes = b""

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Console messages and log entries at level error, and uncaught exceptions."""
        bad = [c for c in self.console if c.get("level") == "error" or c.get("type") == "error"]
        return bad + self.exceptions


class Chromium:
    """One headless browser; use as a context manager."""

    def __init__(self, binary: str, profile_dir: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def child_fds() -> None:  # in the child before exec: the pipes as fds 3 and 4
            # (dup2 makes them inheritable; every other descriptor Python opened is not)
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=child_fds, close_fds=False,  # only 3 and 4 are inheritable
        )
        os.close(cmd_r)
        os.close(out_w)
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(CdpError, OSError):
                self.send("Browser.close", timeout=10)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for fd in (self._cmd_w, self._out_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    # --- protocol -------------------------------------------------------------------------

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self._events.append(reply)

    def wait_event(self, method: str, session: str | None,
                   timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, ev in enumerate(self._events):
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return self._events.pop(i)
            event = self._receive(deadline)
            if "method" in event:
                self._events.append(event)

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("timed out waiting for Chromium")
            ready, _, _ = select.select([self._out_r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._out_r, 1 << 16)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise CdpError(f"Chromium closed the pipe: {err[-2000:]}")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    # --- one page -------------------------------------------------------------------------

    def check_page(self, url: str) -> PageCheck:
        """Load ``url`` in a new tab; collect console errors, exceptions, requests, the
        decoding of every image, and a full-page screenshot."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=sid)
        self.send("Page.navigate", {"url": url}, session=sid)
        self.wait_event("Page.loadEventFired", sid)
        images = self.send("Runtime.evaluate", {
            "expression": _IMAGES_JS, "awaitPromise": True, "returnByValue": True,
        }, session=sid)
        title = self.send("Runtime.evaluate", {"expression": "document.title",
                                               "returnByValue": True}, session=sid)
        metrics = self.send("Page.getLayoutMetrics", session=sid)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"],
                     "height": min(size["height"], 16000), "scale": 1},
        }, session=sid)
        check = PageCheck(
            images=images["result"].get("value", []),
            title=str(title["result"].get("value", "")),
            screenshot=base64.b64decode(shot["data"]),
        )
        self.send("Runtime.evaluate", {"expression": "0"}, session=sid)  # flush events
        for ev in self._events:
            if ev.get("sessionId") != sid:
                continue
            p = ev.get("params", {})
            method = ev.get("method")
            if method == "Runtime.consoleAPICalled":
                check.console.append({"type": p.get("type"), "args": p.get("args")})
            elif method == "Log.entryAdded":
                entry = p.get("entry", {})
                check.console.append({"level": entry.get("level"), "text": entry.get("text"),
                                      "url": entry.get("url")})
            elif method == "Runtime.exceptionThrown":
                check.exceptions.append(p.get("exceptionDetails", {}))
            elif method == "Network.requestWillBeSent":
                check.requests.append(str(p.get("request", {}).get("url", "")))
            elif method == "Network.loadingFailed":
                check.failed.append(p)
        self._events = [e for e in self._events if e.get("sessionId") != sid]
        return check


_IMAGES_JS = """
Promise.all(Array.from(document.images).map(img =>
  img.decode().then(
    () => ({ok: img.complete && img.naturalWidth > 0, width: img.naturalWidth,
            height: img.naturalHeight, alt: img.alt}),
    e => ({ok: false, error: String(e), alt: img.alt}))))
"""
