"""Differential test against the real libxlu (``../shared/oracle/xlu``), on inputs no
expected file covers: seeded byte-level mutants of the conformance cases, in every dialect,
on both parser paths. Every field of the JSON must match what the C parser printed.

Needs the oracle's binaries (``build.sh XEN_GIT_DIR`` puts them in ``/tmp/xlu-oracle/bin``;
``XLU_ORACLE_BIN`` names another folder); skipped with that message when they are absent, as
in CI, which does not build them.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from xenvmmu import xlcfg
from xenvmmu.commands.parse import MAX_ERRORS, dumps_json

from .test_conformance import DIALECTS, SUITE

ORACLE_BIN = Path(os.environ.get("XLU_ORACLE_BIN", "/tmp/xlu-oracle/bin"))
MUTANTS = 400  # per dialect; `diff` runs of 20,000 per dialect have matched too
#: Bytes the mutations insert: the grammar's punctuation, quotes, escapes and line ends.
ALPHABET = b"=,;[]\"'\n\t #\\x0aZ(){}+-.:"


def _oracle(dialect: str) -> Path:
    binary = ORACLE_BIN / f"xlu-{dialect}"
    if not os.access(binary, os.X_OK):
        pytest.skip(f"libxlu oracle not built ({binary} absent): see ../shared/oracle/xlu")
    return binary


def _mutant(rng: random.Random, data: bytes) -> bytes:
    """``data`` with one to four random deletions, insertions or copied runs."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op, pos = rng.random(), rng.randrange(len(b) + 1)
        if op < 0.4 and b:
            del b[min(pos, len(b) - 1)]
        elif op < 0.8:
            b[pos:pos] = bytes([rng.choice(ALPHABET)])
        elif b:
            b[pos:pos] = b[rng.randrange(len(b)):][: rng.randint(1, 20)]
    return bytes(b)


def _ours(path: Path, dialect: str, fast: bool) -> dict[str, Any]:
    result = xlcfg.parse(path.read_bytes(), dialect, max_errors=MAX_ERRORS, fast=fast)
    obj = {"file": str(path), **xlcfg.to_json(result)}
    if result.truncated:
        obj["truncated"] = True
    parsed: dict[str, Any] = json.loads(dumps_json(obj))
    return parsed


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mutants_match_libxlu(dialect: str, tmp_path: Path) -> None:
    binary = _oracle(dialect)
    cases = sorted((SUITE / "cases").glob("*.cfg"))
    rng = random.Random(f"xlu-{dialect}")
    files = []
    for i in range(MUTANTS):
        path = tmp_path / f"m{i:04d}.cfg"
        path.write_bytes(_mutant(rng, rng.choice(cases).read_bytes()))
        files.append(path)
    run = subprocess.run([binary, *map(str, files)], capture_output=True, check=False)
    theirs = {}
    for line in run.stdout.decode("utf-8", "surrogateescape").splitlines():
        if line.strip():
            obj = json.loads(line)
            theirs[obj["file"]] = obj
    assert len(theirs) == MUTANTS, run.stderr.decode(errors="replace")[-500:]
    for path in files:
        for fast in (True, False):
            assert _ours(path, dialect, fast) == theirs[str(path)], (path.read_bytes(), fast)
