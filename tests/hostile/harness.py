"""Running ``xenvmmu.cli.main`` on hostile input and checking what comes out.

``run`` calls ``main`` in-process with stdout and stderr captured, turns argparse's
``SystemExit`` into a status, and lets every other exception escape (the tests assert that
none does). ``check_report`` checks stdout for its format: JSON against the audit schema,
SARIF and OpenVEX against theirs, Prometheus line by line with unique series, and every
format encodable as UTF-8.

Hypothesis profiles (applied per test with ``@HOSTILE``, never globally, so the rest of the
suite keeps its own settings): ``xenvmmu-hostile`` (default, few examples, derandomized so
the default suite is fast and stable) and ``xenvmmu-fuzz`` (``make fuzz``: many random
examples). ``XENVMMU_HYPOTHESIS_PROFILE`` picks one, ``XENVMMU_FUZZ_EXAMPLES`` sets the
number of examples per test.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
from hypothesis import HealthCheck, settings

from xenvmmu.cli import main

from ..conftest import SHARED

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "xenvmmu-hostile",
    max_examples=int(os.environ.get("XENVMMU_FUZZ_EXAMPLES", "15")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_HEALTH,
)
settings.register_profile(
    "xenvmmu-fuzz",
    max_examples=int(os.environ.get("XENVMMU_FUZZ_EXAMPLES", "1000")),
    deadline=None,
    suppress_health_check=_HEALTH,
)
HOSTILE = settings.get_profile(os.environ.get("XENVMMU_HYPOTHESIS_PROFILE", "xenvmmu-hostile"))

#: Documented exit statuses per command (README: Hostile input, limits and output).
STATUSES = {"audit": {0, 1, 2, 3}, "parse": {0, 1, 2}, "simulate": {0, 2}}


@dataclass(frozen=True)
class Result:
    status: int
    out: str
    err: str


class Hang(Exception):
    """A command ran past its alarm: it blocked or looped."""


@contextlib.contextmanager
def alarm(seconds: int) -> Iterator[None]:
    """Raise :class:`Hang` if the block runs longer than ``seconds`` (main thread, POSIX)."""

    def ring(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run(argv: Sequence[str], timeout: int = 120) -> Result:
    """``main(argv)`` with stdout/stderr captured; SystemExit (argparse) is a status."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), alarm(timeout):
        try:
            status = main(list(argv))
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return Result(status, out.getvalue(), err.getvalue())


def check_status(command: str, result: Result) -> None:
    assert result.status in STATUSES[command], (result.status, result.err[-2000:])
    assert "Traceback" not in result.err, result.err[-2000:]


@cache
def _schema_validator(name: str) -> Any:
    if name == "json":
        from xenvmmu.audit.format.jsonfmt import load_schema

        return jsonschema.Draft202012Validator(load_schema())
    path = {"sarif": "sarif-schema-2.1.0.json", "openvex": "openvex-schema-0.2.0.json"}[name]
    schema = json.loads((SHARED / "schemas" / path).read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def loads_deep(text: str) -> Any:
    """``json.loads`` for documents nested thousands deep (the stdlib decoder recurses)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 50_000))
    try:
        return json.loads(text)
    finally:
        sys.setrecursionlimit(old)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def check_report(fmt: str, text: str) -> None:
    """The report is valid for its format (and encodable as UTF-8)."""
    text.encode("utf-8")  # no lone surrogates reach any output
    if fmt in ("json", "sarif", "openvex"):
        _schema_validator(fmt).validate(json.loads(text))
    elif fmt == "prometheus":
        series: set[str] = set()
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            m = _SAMPLE.match(line)
            assert m is not None, line
            key = m.group(1) + (m.group(2) or "")
            assert key not in series, f"duplicate series {key}"
            series.add(key)
    else:
        assert text.endswith("\n")
