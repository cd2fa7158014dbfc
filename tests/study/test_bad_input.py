"""Bad input to `study run`: one line naming the stage, the field or path, and what to do."""

from __future__ import annotations

import os
import socket

import pytest
import yaml
from fakes import write_executable
from study_helpers import small_spec, write_spec

from opaque_knapsack.cli import main


def run_error(capsys, spec, *flags: str) -> str:
    capsys.readouterr()
    assert main(["study", "run", str(spec), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def respec(folder, **sections):
    """The spec in FOLDER with SECTIONS changed (the stages done so far stay done where their inputs did not change)."""
    data = yaml.safe_load((folder / "study.yaml").read_text())
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return write_spec(folder, data)


@pytest.mark.slow
def test_a_port_in_use_or_a_missing_vllm_stops_the_matrix_before_a_server_starts(trained, capsys):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        err = run_error(capsys, respec(trained, serve={"port": port}))
    assert f"stage matrix: serve.port {port} is in use on 127.0.0.1: stop what holds it, or set serve.port" in err
    err = run_error(capsys, respec(trained, serve={"port": None, "python": "no-such-env"}))
    assert f"stage matrix: serve.python: {trained / 'no-such-env'} does not exist; give a Python with vLLM" in err
    write_executable(trained / "plain" / "bin" / "python", "#!/bin/sh\necho '{}'\n")
    err = run_error(capsys, respec(trained, serve={"python": "plain"}))
    assert f"stage matrix: serve.python: {trained / 'plain' / 'bin' / 'python'} has no vLLM" in err
    assert "(log:" not in err


@pytest.mark.slow
def test_a_missing_axolotl_environment_is_named(trained, capsys):
    err = run_error(capsys, respec(trained, students={"axolotl": "gone-env"}))
    assert f"stage train: students.axolotl: {trained / 'gone-env'} does not exist; give Axolotl's virtual environment" in err
    # the stages before it are untouched
    assert "stage train" in err and (trained / "study" / ".stages" / "export.json").is_file()


def test_a_model_without_its_api_key_names_the_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    spec = write_spec(tmp_path, small_spec(teacher={"model": "openai/gpt-4.1-mini"}, tasks={"teacher": {"num": 1}}))
    err = run_error(capsys, spec, "--until", "teacher")
    assert "stage teacher: Unable to initialise OpenAI client: No OPENAI_API_KEY" in err
    assert "[bold]" not in err


@pytest.mark.slow
def test_a_model_that_cannot_be_reached_fails_its_stage_with_the_log(tmp_path, capsys, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("NOWHERE_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("NOWHERE_API_KEY", "key")
    teacher = {"model": "openai-api/nowhere/m", "max_retries": 0, "timeout": 2, "retry_attempts": 0, "runtimes": ["persistent"]}
    spec = write_spec(tmp_path, small_spec(teacher=teacher, tasks={"teacher": {"num": 1}}, matrix={"students": ["persistent"]}))
    err = run_error(capsys, spec, "--until", "teacher")
    assert "stage teacher: 1 of 1 tasks did not finish (the model could not be reached: APIConnectionError)" in err
    assert f"(log: {tmp_path / 'study' / 'teacher' / 'logs'}" in err
    assert main(["study", "status", str(spec)]) == 0
    assert "failed" in capsys.readouterr().out


def test_run_flags_are_checked_first(tmp_path, capsys):
    spec = write_spec(tmp_path, small_spec())
    assert "--workers must be at least 1, got 0" in run_error(capsys, spec, "--workers", "0")
    assert "--limit must be at least 1, got 0" in run_error(capsys, spec, "--limit", "0")
    assert not (tmp_path / "study").exists()


def test_student_smoke_is_the_cpu_tiny_study(tmp_path, capsys, monkeypatch):
    ran = []
    import opaque_knapsack.study.cli as study_cli

    monkeypatch.setattr(study_cli, "run_and_report", lambda study, **options: ran.append(study) or 0)
    monkeypatch.setenv("OPAQUE_KNAPSACK_ENVS", "restored after the test")
    assert main(["student-smoke", "--out", str(tmp_path / "smoke"), "--envs", str(tmp_path / "envs")]) == 0
    [study] = ran
    assert study.spec_path == tmp_path / "smoke" / "study.yaml" and study.folder.root == tmp_path / "smoke"
    assert study.spec.profile == "cpu-tiny" and study.spec.students.base_model == "tiny"
    assert os.environ["OPAQUE_KNAPSACK_ENVS"] == str(tmp_path / "envs")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"max_turn": 3}, "teacher.task_options: 'max_turn' is not an option of opaque_knapsack/knapsack (it takes: max_turns"),
        ({"runtime": "stateless"}, "teacher.task_options: 'runtime' is set by the stage itself"),
        ({"max_turns": 0}, "stage teacher: knapsack task: -T max_turns=0 must be at least 1"),
    ],
)
def test_bad_task_options_stop_the_stage_in_one_line(tmp_path, capsys, options, expected):
    spec = write_spec(tmp_path, small_spec(teacher={"task_options": options}))
    assert expected in run_error(capsys, spec, "--until", "teacher")
