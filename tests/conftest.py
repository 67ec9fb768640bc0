"""Shared fixtures. Paths to ../shared/data are resolved here so tests never copy that data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("XLING_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_cache(request, tmp_path_factory, monkeypatch):
    # Tests never write to the user's cache, except those that load the real bundled model
    # (marked slow): they share the joined and dequantised model with `xling compare`.
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.setenv("XLING_CACHE", str(tmp_path_factory.getbasetemp() / "xling-cache"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present (set XLING_SHARED_DATA)")
    return SHARED_DATA
