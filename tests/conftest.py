"""Shared test set-up: Qt offscreen, an artifacts folder for screenshots, no network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own VOLTKEEPER_HOME: no test touches the user's data or key."""
    home = tmp_path_factory.mktemp("vkhome")
    monkeypatch.setenv("VOLTKEEPER_HOME", str(home))
    return home
