"""Fixtures of the study tests: a folder with the stand-in environments (see study_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]

from study_helpers import fake_environments  # noqa: E402


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    """A folder with the stand-in environments and base model, ready for a spec."""
    fake_environments(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _no_served_students(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start with no server in the environment, as a user's shell would."""
    for key in ("VLLM_BASE_URL", "VLLM_API_KEY"):
        monkeypatch.delenv(key, raising=False)
