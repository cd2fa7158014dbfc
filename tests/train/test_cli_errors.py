"""User errors of the train commands: flags named as typed, write failures as one line."""

from __future__ import annotations

import json

import pytest
from cli_runner import run


def only_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--runtimes", "foo"], "--runtimes 'foo': Input should be 'persistent' or 'stateless'"),
        (["--num", "0"], "--num 0: Input should be greater than or equal to 1"),
        (["--max-connections", "0"], "--max-connections 0:"),
        (["--difficulty", "extreme"], "--difficulty 'extreme' is not one of: easy, medium, hard"),
        (["--difficulty", "easy,extreme"], "--difficulty 'extreme' is not one of"),
    ],
)
def test_matrix_errors_name_the_flag_before_any_work(capsys, tmp_path, argv, expected):
    code, out, err = run(capsys, "matrix", "--student", "a=scripted/persistent", "--log-dir", tmp_path / "m", *argv)
    assert code == 2
    assert out == ""  # no plan printed before the refusal
    assert only_line(err) == f"opaque-knapsack matrix: error: {expected}" or expected in only_line(err)
    assert "runtimes.0" not in err and "difficulties" not in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--min-score", "5"], "--min-score 5.0: must be between 0 and 1"),
        (["--val-fraction", "2"], "--val-fraction 2.0:"),
    ],
)
def test_export_errors_name_the_flag(capsys, fixture_logs, tmp_path, argv, expected):
    code, _, err = run(capsys, "export", fixture_logs.persistent, "--out", tmp_path / "t.jsonl", *argv)
    assert code == 2
    assert only_line(err).startswith(f"opaque-knapsack export: error: {expected}")
    assert "min_score" not in err and "val_fraction" not in err


def test_export_of_a_fake_log_says_it_is_not_an_inspect_log(capsys, tmp_path):
    fake = tmp_path / "fake.eval"
    fake.write_text("garbage")
    code, _, err = run(capsys, "export", fake, "--out", tmp_path / "t.jsonl")
    assert code == 2
    assert f"{fake}: not a readable Inspect log" in only_line(err)


def test_export_write_failure_is_one_line(capsys, fixture_logs, blocker):
    code, _, err = run(capsys, "export", fixture_logs.persistent, "--out", blocker / "t.jsonl")
    assert code == 1
    assert only_line(err) == f"opaque-knapsack export: error: {blocker}: exists and is not a folder"


def test_exported_traces_follow_the_umask(capsys, fixture_logs, tmp_path):
    import os

    previous = os.umask(0o022)
    try:
        code, _, _ = run(capsys, "export", fixture_logs.persistent, "--out", tmp_path / "t.jsonl", "--val-fraction", "0.5")
    finally:
        os.umask(previous)
    assert code == 0
    for name in ("t.jsonl", "t.val.jsonl", "t.summary.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_axolotl_config_write_failure_is_one_line(capsys, tmp_path, blocker):
    traces = tmp_path / "traces.jsonl"
    record = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                           {"role": "assistant", "content": "a"}],
              "task_id": "knapsack-0000000000", "runtime": "persistent", "agent": "codeact"}
    traces.write_text(json.dumps(record) + "\n")
    code, _, err = run(capsys, "axolotl-config", "--traces", traces, "--runtime", "persistent",
                       "--out", blocker / "c.yaml")
    assert code == 1
    assert only_line(err).startswith(f"opaque-knapsack axolotl-config: error: {blocker}")


def test_export_reports_progress_against_the_announced_total(fixture_logs, tmp_path):
    from opaque_knapsack.train.export import ExportOptions, export_traces

    updates: list[tuple[int, int]] = []
    summary = export_traces([fixture_logs.persistent, fixture_logs.stateless], tmp_path / "t.jsonl",
                            ExportOptions(dedup=False), progress=lambda done, total: updates.append((done, total)))
    assert [done for done, _ in updates] == list(range(1, 9))
    assert {total for _, total in updates} == {8}  # 4 + 4 episodes, known before reading them
    assert summary.kept == 8


def test_export_shows_a_progress_bar_on_a_terminal(fixture_logs, tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from opaque_knapsack._cli import progress_bar

    screen = io.StringIO()
    monkeypatch.setattr("rich.console.Console", lambda **_: Console(file=screen, force_terminal=True, width=100))
    with progress_bar("exporting", quiet=False) as bar:
        for done in range(1, 5):
            bar.update(done, 4)
    assert "exporting" in screen.getvalue() and "4/4" in screen.getvalue()
