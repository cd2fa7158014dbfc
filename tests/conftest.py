"""Shared test settings and fixtures: keep Inspect quiet and its logs inside the test's tmp dir."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("INSPECT_DISPLAY", "none")
os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A file where a command would need a folder: fails for root and for anyone else."""
    path = tmp_path / "blocker"
    path.write_text("not a folder")
    return path
