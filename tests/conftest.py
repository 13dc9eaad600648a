"""Shared fixtures: where the real benchmark data lives for tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    env = os.environ.get("MMBENCH_DATA")
    candidates = [Path(env)] if env else []
    # The checkout sits next to ``shared/`` (…/main and …/shared), CI clones keep that layout.
    candidates += [REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "shared" / "data"]
    for path in candidates:
        if (path / "README.md").is_file() or (path / "wordsim").is_dir():
            return path
    return None


SHARED_DATA = _shared_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real benchmark data (``../shared/data`` or ``$MMBENCH_DATA``)."""
    if SHARED_DATA is None:
        pytest.skip("real benchmark data not found: set MMBENCH_DATA or place shared/data next to the repo")
    return SHARED_DATA
