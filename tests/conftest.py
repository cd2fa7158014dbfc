"""Shared test settings and fixtures: keep Inspect quiet and its logs inside the test's tmp dir."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("INSPECT_DISPLAY", "none")
os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")


def _writable_home() -> None:
    """Inspect keeps its data under the user's home (``XDG_DATA_HOME``): a user whose home does
    not exist or cannot be written gets a scratch one for the session, and so does every
    process the tests start (they inherit the environment)."""
    home = os.environ.get("HOME", "")
    if home and os.path.isdir(home) and os.access(home, os.W_OK | os.X_OK):
        return
    scratch = tempfile.mkdtemp(prefix="opaque-knapsack-home-")
    atexit.register(shutil.rmtree, scratch, True)
    os.environ["HOME"] = scratch
    for variable, folder in (("XDG_DATA_HOME", ".local/share"), ("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config")):
        os.environ[variable] = os.path.join(scratch, folder)


_writable_home()


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A file where a command would need a folder: fails for root and for anyone else."""
    path = tmp_path / "blocker"
    path.write_text("not a folder")
    return path
