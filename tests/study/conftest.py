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


@pytest.fixture(scope="session")
def trained_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study folder whose tasks, teacher, export and train stages are done (once per session); copy it."""
    from study_helpers import small_spec, write_spec

    from opaque_knapsack.study.context import RunOptions, Study
    from opaque_knapsack.study.runner import run_study

    root = tmp_path_factory.mktemp("trained")
    fake_environments(root)
    spec = write_spec(root, small_spec())
    run_study(Study.load(spec), RunOptions(until="train", echo=lambda line: None))
    return root


@pytest.fixture
def trained(trained_study: Path, tmp_path: Path) -> Path:
    """This test's own copy of the trained study (spec at study.yaml)."""
    import shutil

    copy = tmp_path / "trained"
    shutil.copytree(trained_study, copy, symlinks=True)
    return copy
