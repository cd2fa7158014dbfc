"""The `opaque-knapsack` command's face: write failures, interrupts, start-up imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from opaque_knapsack.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A file where a command would need a folder: fails for root and for anyone else."""
    path = tmp_path / "blocker"
    path.write_text("not a folder")
    return path


def one_error_line(err: str, command: str, path: str, reason: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"opaque-knapsack {command}: error: ")
    assert path in lines[0] and reason in lines[0]
    assert "Traceback" not in err


def test_generate_write_failure_is_one_line(capsys, blocker):
    code, _, err = run(capsys, "generate", "--num", "2", "--out", blocker / "tasks", "--quiet")
    assert code == 1
    one_error_line(err, "generate", str(blocker), "Not a directory")


def test_generate_write_failure_in_workers_is_one_line(capsys, blocker):
    code, _, err = run(capsys, "generate", "--num", "2", "--out", blocker / "tasks", "--quiet", "--workers", "2")
    assert code == 1
    one_error_line(err, "generate", str(blocker), "Not a directory")


def test_quickstart_write_failure_is_one_line(capsys, blocker):
    code, _, err = run(capsys, "quickstart", "--num", "1", "--out", blocker / "run")
    assert code == 1
    one_error_line(err, "quickstart", str(blocker), "Not a directory")


def test_read_only_folder_names_the_path(capsys, tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the Not-a-directory tests cover the path")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = run(capsys, "generate", "--num", "1", "--out", folder / "x", "--quiet")
    finally:
        folder.chmod(0o755)
    assert code == 1
    one_error_line(err, "generate", str(folder), "Permission denied")
