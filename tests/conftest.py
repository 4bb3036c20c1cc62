"""Shared test fixtures: the read-only ../shared corpus beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (research notes, fixtures, conformance suite, schemas)."""
    if not (SHARED / "conformance").is_dir():
        pytest.fail(f"the shared corpus is missing: expected it at {SHARED}")
    return SHARED
