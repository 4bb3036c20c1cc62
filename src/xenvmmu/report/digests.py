"""sha256 digests of the files a report was made from, so a reader can tell which inputs
(and which versions of them) a report describes, and check them later.

The files are those the findings and input errors came from, every input named on the
command line that is a file, the host's ``xl info`` file, cost profiles and the sweep's
result files. Directories are not digested as such: the files read in them are.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..audit.findings import AuditReport, clean_text

CHUNK = 1 << 20


@dataclass(frozen=True)
class Digest:
    """One file: its ``role`` (``guest``, ``host``, ``costs``, ``sweep``...), its sha256 and
    size, or why it could not be read."""

    path: str
    role: str
    sha256: str | None
    size: int | None
    error: str | None = None


def file_digest(path: str | os.PathLike[str], role: str) -> Digest:
    name = clean_text(os.fspath(path))
    h = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
    except OSError as e:
        return Digest(name, role, None, None, e.strerror or str(e))
    return Digest(name, role, h.hexdigest(), size)


def report_digests(
    report: AuditReport | None,
    inputs: Iterable[str] = (),
    *,
    host_file: str | None = None,
    cost_files: Iterable[str] = (),
    sweep_dir: str | os.PathLike[str] | None = None,
) -> list[Digest]:
    """Digests of every file the report rests on, each file once, by role then path."""
    wanted: dict[str, str] = {}

    def add(path: str, role: str) -> None:
        if path not in wanted and os.path.isfile(path):
            wanted[path] = role

    if host_file:
        add(host_file, "host")
    for f in cost_files:
        add(f, "costs")
    if report is not None:
        for finding in report.findings:
            add(finding.source.path, "guest")
        for error in report.errors:
            add(error.path, "input error")
    for path in inputs:
        add(path, "input")
    if sweep_dir is not None:
        for name in ("sweep.json", "results.jsonl", "results.csv"):
            add(str(Path(sweep_dir) / name), "sweep")
    order = {"host": 0, "guest": 1, "input": 2, "input error": 3, "costs": 4, "sweep": 5}
    return [file_digest(p, r)
            for p, r in sorted(wanted.items(), key=lambda kv: (order[kv[1]], kv[0]))]
