"""Bad ``-T`` values: one line naming the option, the value and the choices, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from opaque_knapsack.knapsack import knapsack
from opaque_knapsack.task_options import TaskOptionError

BAD_OPTIONS = [
    ({"runtime": "foo"}, "runtime", "'foo' is not one of: persistent, stateless"),
    ({"num": -1}, "num", "-1 must be at least 1"),
    ({"num": "abc"}, "num", "'abc' is not a whole number"),
    ({"difficulty": "extreme"}, "difficulty", "'extreme' is not one of: easy, medium, hard"),
    ({"agent": "foo"}, "agent", "'foo' is not one of: codeact, react"),
    ({"max_turns": 0}, "max_turns", "0 must be at least 1"),
    ({"max_tool_calls": "many"}, "max_tool_calls", "'many' is not a whole number"),
    ({"step_timeout": 0}, "step_timeout", "must be a positive number of seconds"),
    ({"strict_take": "maybe"}, "strict_take", "'maybe' is not true or false"),
    ({"tasks": "no-such-folder"}, "tasks", "no such file or folder"),
]


@pytest.mark.parametrize(("options", "name", "problem"), BAD_OPTIONS)
def test_bad_option_names_option_value_and_choices(options, name, problem):
    with pytest.raises(TaskOptionError) as caught:
        knapsack(**options)
    assert caught.value.option == name
    assert f"-T {name}=" in str(caught.value)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_corrupt_task_file_names_the_file(tmp_path: Path):
    (tmp_path / "knapsack-0000000000.json").write_text('{"task_id": 3', encoding="utf-8")
    with pytest.raises(TaskOptionError, match=r"-T tasks=.*knapsack-0000000000.json.*not valid JSON"):
        knapsack(tasks=str(tmp_path))


def test_numbers_given_as_text_are_read():
    task = knapsack(num="2", max_turns="3")
    assert len(task.dataset) == 2


def test_the_error_is_a_click_exception_that_shows_its_one_line(capsys):
    """Inspect's command line is click's: a ClickException is printed by its ``show()`` and exits 1."""
    import click

    error = TaskOptionError("num", "x", "is not a whole number", task="knapsack")
    assert isinstance(error, click.ClickException) and isinstance(error, ValueError)
    assert error.exit_code == 1
    error.show()
    assert capsys.readouterr().err == "knapsack task: -T num='x' is not a whole number\n"


@pytest.mark.slow
@pytest.mark.parametrize(("option", "expected"), [
    ("num=abc", "-T num='abc' is not a whole number"),
    ("runtime=foo", "-T runtime='foo' is not one of: persistent, stateless"),
])
def test_inspect_eval_command_prints_one_line(tmp_path: Path, option: str, expected: str):
    env = {key: value for key, value in os.environ.items() if key != "INSPECT_DISPLAY"} | {"COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "inspect_ai", "eval", "opaque_knapsack/knapsack", "--model", "scripted/persistent",
         "-T", option, "--log-dir", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert output.startswith(f"knapsack task: {expected}")
