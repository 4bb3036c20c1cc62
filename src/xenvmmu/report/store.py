"""The sweep directory: what a sweep has done, kept so that an interrupted sweep loses nothing.

Files in ``DIR``:

``results.jsonl``
    one record per finished point (:mod:`xenvmmu.report.runpoint`), appended the moment the
    point is done with a single ``write`` of the whole line on a file opened for appending,
    then ``fsync``. It is the truth: on start, every complete and valid line counts as done;
    a last line without its newline (the run was killed while writing it) or any line that
    is not a record is dropped, the file is rewritten without it and the point runs again.
``results.csv``
    the same points as rows (columns: :mod:`xenvmmu.report.results`), rebuilt from
    ``results.jsonl`` on start and appended after it, so it never holds a point the JSONL
    lacks.
``sweep.json``
    the settings every point shares and the cost profiles by label. A sweep into a
    directory made with other settings, or with a label that now means other prices, is
    refused: its points would not be comparable.
``.sweep.lock``
    held (``flock``) while a sweep writes, so two sweeps never write one directory.

When a sweep has run all its points, both result files are rewritten (atomically) in the
canonical point order, so a finished sweep's files are the same whatever the number of
workers, the scheduler or the interruptions were.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audit.format.base import write_atomic
from .costspec import CostSpec
from .grid import sort_key
from .results import CSV_COLUMNS, Row, row_from_record
from .runpoint import SCHEMA, RunSettings

JSONL = "results.jsonl"
CSV = "results.csv"
MANIFEST = "sweep.json"
LOCK = ".sweep.lock"


class SweepDirError(Exception):
    """The directory cannot take this sweep (busy, other settings, unwritable...)."""


@dataclass(frozen=True)
class SweepData:
    """What a sweep directory holds, read back (for plots and the report)."""

    directory: Path
    rows: tuple[Row, ...]
    costs: tuple[CostSpec, ...]
    settings: Mapping[str, Any]
    tool_version: str


def _csv_line(cells: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"


def parse_records(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The valid records of a ``results.jsonl`` text, first occurrence of each key, and how
    many lines were dropped (invalid, a duplicate, or a last line without its newline)."""
    records: dict[str, dict[str, Any]] = {}
    dropped = 0
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        lines.pop()  # no newline at the end: a line cut short by a kill
        dropped += 1
    for line in lines:
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or record.get("schema") != SCHEMA:
                raise ValueError("not a sweep record")
            row_from_record(record)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            dropped += 1
            continue
        key = str(record["key"])
        if key in records:
            dropped += 1
            continue
        records[key] = record
    return list(records.values()), dropped


class SweepStore:
    """The result files of one sweep directory, open for one sweep at a time."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._records: dict[str, dict[str, Any]] = {}
        self._costs: tuple[CostSpec, ...] = ()
        self._lock_fd: int | None = None
        self._jsonl_fd: int | None = None
        self._csv_fd: int | None = None
        self.repaired = 0

    # --- open / close ---------------------------------------------------------------------

    def open(self, settings: RunSettings, costs: Iterable[CostSpec], tool_version: str) -> None:
        """Take the directory for this sweep: lock it, check and update ``sweep.json``,
        drop what an interrupted sweep left half-written and rebuild ``results.csv``.
        Raises :class:`SweepDirError`."""
        if self.directory.exists() and not self.directory.is_dir():
            raise SweepDirError(f"{self.directory}: not a directory")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock()
            self._costs = self._check_manifest(settings, tuple(costs), tool_version)
            self._recover()
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            self._jsonl_fd = os.open(self.directory / JSONL, flags, 0o666)
            self._csv_fd = os.open(self.directory / CSV, flags, 0o666)
        except OSError as e:
            self.close()
            raise SweepDirError(f"{self.directory}: {e.strerror or e}") from e
        except SweepDirError:
            self.close()
            raise

    def close(self) -> None:
        for name in ("_jsonl_fd", "_csv_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)  # closing the lock's descriptor releases the lock
                setattr(self, name, None)

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lock(self) -> None:
        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SweepDirError(f"{self.directory}: another sweep is writing this "
                                "directory") from None
        self._lock_fd = fd

    def _check_manifest(self, settings: RunSettings, costs: tuple[CostSpec, ...],
                        tool_version: str) -> tuple[CostSpec, ...]:
        path = self.directory / MANIFEST
        known: list[CostSpec] = []
        if path.exists():
            try:
                old = json.loads(path.read_bytes())
                if old.get("schema") != SCHEMA:
                    raise ValueError(f"schema is {old.get('schema')!r}")
                old_settings = old["settings"]
                known = [CostSpec.from_dict(c) for c in old["costs"]]
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise SweepDirError(f"{path}: not a sweep manifest ({e})") from None
            if old_settings != settings.as_dict():
                raise SweepDirError(
                    f"{self.directory} holds a sweep made with other settings "
                    f"({_differences(old_settings, settings.as_dict())}): use another --out "
                    "directory or the same settings")
        by_label = {c.label: c for c in known}
        for spec in costs:
            old_spec = by_label.get(spec.label)
            if old_spec is None:
                known.append(spec)
                by_label[spec.label] = spec
            elif old_spec.digest != spec.digest:
                raise SweepDirError(
                    f"{self.directory}: the cost profile {spec.label!r} had other prices in "
                    "this sweep (sha256 differs): rename the file or use another --out")
        manifest = {
            "schema": SCHEMA, "tool_version": tool_version, "settings": settings.as_dict(),
            "costs": [c.as_dict() for c in known],
        }
        write_atomic(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return tuple(known)

    def _recover(self) -> None:
        for name in (JSONL, CSV, MANIFEST):  # temporary files of a run killed mid-rewrite
            for stale in self.directory.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)
        path = self.directory / JSONL
        data = path.read_bytes() if path.exists() else b""
        records, dropped = parse_records(data)
        self._records = {str(r["key"]): r for r in records}
        self.repaired = dropped
        if dropped:
            write_atomic(path, self._jsonl_text(records))
        write_atomic(self.directory / CSV, self._csv_text(records))

    # --- results --------------------------------------------------------------------------

    @property
    def done(self) -> frozenset[str]:
        """Keys of the points already in the directory."""
        return frozenset(self._records)

    @property
    def failed(self) -> frozenset[str]:
        """Keys of the stored points that the model refused."""
        return frozenset(k for k, r in self._records.items() if "error" in r)

    def append(self, record: Mapping[str, Any]) -> None:
        """Store one finished point: its JSONL line, then its CSV row, each written whole."""
        if self._jsonl_fd is None or self._csv_fd is None:
            raise RuntimeError("the store is not open")
        key = str(record["key"])
        if key in self._records:
            return
        row = row_from_record(record)
        _write_all(self._jsonl_fd, _json_line(record).encode())
        self._records[key] = dict(record)
        _write_all(self._csv_fd, _csv_line(row.csv_row()).encode())

    def finish(self) -> None:
        """Rewrite both files in the canonical point order (after the last point)."""
        records = self._ordered(self._records.values())
        write_atomic(self.directory / JSONL, self._jsonl_text(records))
        write_atomic(self.directory / CSV, self._csv_text(records))

    def _ordered(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        order = [c.label for c in self._costs]
        return sorted(records, key=lambda r: sort_key(row_from_record(r).point, order))

    @staticmethod
    def _jsonl_text(records: Iterable[Mapping[str, Any]]) -> str:
        return "".join(_json_line(r) for r in records)

    @staticmethod
    def _csv_text(records: Iterable[Mapping[str, Any]]) -> str:
        lines = [_csv_line(list(CSV_COLUMNS))]
        lines += [_csv_line(row_from_record(r).csv_row()) for r in records]
        return "".join(lines)


def _write_all(fd: int, data: bytes) -> None:
    """One ``write`` of the whole line (a regular file takes it whole), looping only if the
    kernel takes less; then ``fsync``, so a finished point survives a crash."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    os.fsync(fd)


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    return ", ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now"
                     for k in keys if old.get(k) != new.get(k))


def load_sweep(directory: str | os.PathLike[str]) -> SweepData:
    """Read a sweep directory (read-only; lines that are not records are ignored).
    Raises :class:`SweepDirError` when it holds no sweep."""
    d = Path(directory)
    try:
        manifest = json.loads((d / MANIFEST).read_bytes())
        costs = tuple(CostSpec.from_dict(c) for c in manifest["costs"])
        data = (d / JSONL).read_bytes()
    except FileNotFoundError as e:
        raise SweepDirError(f"{d}: not a sweep directory (no {Path(str(e.filename)).name})") \
            from None
    except OSError as e:
        raise SweepDirError(f"{d}: {e.strerror or e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise SweepDirError(f"{d / MANIFEST}: not a sweep manifest ({e})") from None
    records, _ = parse_records(data)
    order = [c.label for c in costs]
    rows = sorted((row_from_record(r) for r in records), key=lambda r: sort_key(r.point, order))
    return SweepData(d, tuple(rows), costs, dict(manifest.get("settings", {})),
                     str(manifest.get("tool_version", "")))


def iter_rows(data: SweepData, scenario: str | None = None) -> Iterator[Row]:
    """The rows with figures (failed points left out), of one scenario if given."""
    for row in data.rows:
        if row.ok and (scenario is None or row.point.scenario == scenario):
            yield row
