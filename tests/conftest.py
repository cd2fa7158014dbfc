"""Shared test settings and fixtures: keep Inspect quiet and its logs inside the test's tmp dir."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("INSPECT_DISPLAY", "none")
os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")


def _writable_home() -> None:
    """Inspect keeps its data under the user's data folder (``$XDG_DATA_HOME`` or ``~/.local/share``).
    A researcher's account may have no home folder, or an unwritable one: then the suite (and every
    subprocess it starts, which inherits this environment) uses a scratch folder of its own instead of
    failing in Inspect's start-up."""
    import tempfile

    home = os.environ.get("HOME") or os.path.expanduser("~")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    probe = data
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.access(probe, os.W_OK | os.X_OK):
        return
    scratch = tempfile.mkdtemp(prefix="opaque-knapsack-test-home-")
    os.environ["HOME"] = scratch
    os.environ["XDG_DATA_HOME"] = os.path.join(scratch, ".local", "share")
    os.environ["XDG_CACHE_HOME"] = os.path.join(scratch, ".cache")


_writable_home()


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A file where a command would need a folder: fails for root and for anyone else."""
    path = tmp_path / "blocker"
    path.write_text("not a folder")
    return path
