"""Shared fixtures. Paths to ../shared/data are resolved here so tests never copy that data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("XLING_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Tests never write to the user's cache, except the opt-in real-model test, which
    # sets XLING_CACHE itself.
    if "XLING_TEST_KEEP_CACHE" not in os.environ:
        monkeypatch.setenv("XLING_CACHE", str(tmp_path_factory.getbasetemp() / "xling-cache"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present (set XLING_SHARED_DATA)")
    return SHARED_DATA
