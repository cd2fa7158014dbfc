"""The quickstart's face: progress at a terminal, and Ctrl-C that says how to go on."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from polling import wait_until

from opaque_knapsack.quickstart import progress_display


def quickstart_command(out: Path, num: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "opaque_knapsack.cli", "quickstart", "--out", str(out), "--num", str(num), *extra]


def plain_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "INSPECT_DISPLAY"}
    return env | {"COLUMNS": "120", "TERM": "xterm"}


def test_progress_is_shown_only_at_a_terminal():
    assert progress_display("auto", is_terminal=True) == "rich"
    assert progress_display("auto", is_terminal=False) == "none"
    assert progress_display("plain", is_terminal=False) == "plain"


@pytest.mark.slow
def test_quickstart_at_a_terminal_shows_inspects_progress(tmp_path: Path):
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen(
        quickstart_command(tmp_path / "run", 2, "--no-reports"),
        stdin=slave, stdout=slave, stderr=slave, env=plain_environment(), cwd=tmp_path,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert process.wait(timeout=300) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode(errors="replace"))
    assert "tasks complete" in text  # Inspect's live task panel
    assert re.search(r"knapsack.*\d+/2", text)  # a per-task progress row


@pytest.mark.slow
def test_ctrl_c_says_interrupted_and_exits_130(tmp_path: Path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        quickstart_command(out, 40), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=plain_environment(), cwd=tmp_path,
    )
    wait_until(lambda: list((out / "logs").glob("*.eval")) or process.poll() is not None, timeout=240)
    assert process.poll() is None, "the quickstart ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 130
    assert stderr.strip().splitlines() == ["opaque-knapsack quickstart: interrupted; re-run to resume"]
    assert "optimality" not in stdout  # no empty summary table
    assert not (out / "reports").exists()  # no reports of half a run
