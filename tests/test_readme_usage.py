"""Every shell line of the README's usage section runs as written, in order.

Lines that need an API key, a GPU or a model server run up to their one-line
error; a server that does start (``inspect view``) is stopped once it answers.
The section is read from README.md, so a line added there is run here too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Lines that must stop at a clear error here (no key, extra, GPU or server), and what it names.
NEEDS_OUTSIDE = {  # pattern of the line -> pattern of its error
    r"--model openai/": r"OPENAI_API_KEY",
    r"--model google/": r"google-genai|GOOGLE_API_KEY|GEMINI_API_KEY",
    r"^opaque-knapsack train \S+\s*(#.*)?$": r"needs the 'train' extra|needs a CUDA GPU",
    r"^opaque-knapsack serve ": r"needs the 'serve' extra|needs a CUDA GPU",
}
# what a user's shell would not have: keys, a server, and the test run's own quiet display
UNSET = ("OPENAI_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY", "VLLM_BASE_URL", "VLLM_API_KEY", "INSPECT_DISPLAY")


def usage_commands() -> list[str]:
    """Shell lines of the usage section: ```bash blocks and `$ ` lines of transcripts."""
    section = README.read_text(encoding="utf-8").split("## Usage", 1)[1].split("\n## ", 1)[0]
    commands: list[str] = []
    for language, body in re.findall(r"```(\w*)\n(.*?)```", section, re.DOTALL):
        if language == "bash":
            text = body.replace("\\\n", " ")
            commands += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        elif language == "":
            commands += [line[2:].strip() for line in body.splitlines() if line.startswith("$ ")]
    return commands


def test_the_usage_section_is_read():
    commands = usage_commands()
    assert commands[0] == "opaque-knapsack quickstart --out runs/quickstart"
    assert any(c.startswith("inspect score ") for c in commands)
    assert any(c.startswith("opaque-knapsack table examples/table_spec.json") for c in commands)
    assert len(commands) >= 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_server_until_it_answers(command: str, cwd: Path, env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command} --port {port} --host 127.0.0.1"], cwd=cwd, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"{command!r} did not start serving (exit {process.poll()})")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def launcher_ready(command: str) -> bool:
    """What the launcher's own probe says: a machine with the extra and a GPU would really run it."""
    from opaque_knapsack.train.launch import SERVE_MODULES, TRAIN_MODULES, cuda_available, missing_modules

    modules = SERVE_MODULES if " serve " in f" {command} " else TRAIN_MODULES
    return not missing_modules(modules) and cuda_available()


@pytest.mark.slow
def test_every_usage_line_runs_as_written(tmp_path: Path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    env["COLUMNS"] = "160"
    ran: list[str] = []
    for command in usage_commands():
        if command.startswith("export "):
            for assignment in command.split()[1:]:
                key, _, value = assignment.partition("=")
                env[key] = value
            continue
        if command.startswith("inspect view "):
            run_server_until_it_answers(command, tmp_path, env)
            ran.append(command)
            continue
        outside = next((error for line, error in NEEDS_OUTSIDE.items() if re.search(line, command)), None)
        if outside and command.startswith("opaque-knapsack ") and launcher_ready(command):
            continue  # this machine would really train or serve: not in a test
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=400,
        )
        print(f"{time.monotonic() - started:6.1f} s  {command[:100]}")
        output = result.stdout + result.stderr
        assert "Traceback" not in output, f"{command}\n{output[-3000:]}"
        if outside:
            assert result.returncode != 0, f"{command} should stop at its error here\n{output[-2000:]}"
            assert re.search(outside, output), f"{command}: unclear error\n{output[-2000:]}"
        else:
            assert result.returncode == 0, f"{command}\n{output[-3000:]}"
        ran.append(command)
    assert len(ran) >= 20
    assert (tmp_path / "table.tex").read_text().startswith(r"\begin{table*}")
    assert (tmp_path / "traces" / "persistent.jsonl").stat().st_size > 0
    assert (tmp_path / "configs" / "persistent.yaml").is_file()
    assert (tmp_path / "reports" / "behaviour.caption.txt").is_file()
