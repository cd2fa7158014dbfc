"""Every report command end to end through `opaque-knapsack`, and its user errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from opaque_knapsack.cli import main

from .logfactory import episode, write_log


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_stats_all_formats(capsys: pytest.CaptureFixture[str], matrix_dir: Path) -> None:
    code, out, _ = run(capsys, "stats", matrix_dir)
    assert code == 0
    assert "persistent→stateless" in out and "NameError episode rate (%)" in out
    assert "66.7" in out  # 4 of 6 NameError episodes
    code, out, _ = run(capsys, "stats", matrix_dir, "--format", "markdown")
    assert out.splitlines()[1].startswith("|---|")
    code, out, _ = run(capsys, "stats", matrix_dir, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["label"] for r in rows][0] == "persistent→persistent" and float(rows[0]["optimality"]) == pytest.approx(0.8)
    code, out, _ = run(capsys, "stats", matrix_dir, "--format", "json")
    data = json.loads(out)
    assert len(data["runs"]) == 4 and data["runs"][3]["episodes"] == 5


def test_stats_of_separate_files(capsys: pytest.CaptureFixture[str], matrix_paths: dict) -> None:
    code, out, _ = run(capsys, "stats", *matrix_paths.values(), "--format", "json")
    assert code == 0 and len(json.loads(out)["runs"]) == 4


def test_compare_text_and_json(capsys: pytest.CaptureFixture[str], matrix_paths: dict) -> None:
    a, b = matrix_paths[("persistent", "persistent")], matrix_paths[("stateless", "stateless")]
    code, out, _ = run(capsys, "compare", a, b)
    assert code == 0
    assert "only in A: 1" in out and "Verdict:" in out and "Rank-biserial" in out
    assert "Paper's formula 1 - 2W/(n(n+1))" in out and "std(ddof=1)" in out
    code, out, _ = run(capsys, "compare", a, b, "--metric", "total_tokens", "--format", "json")
    data = json.loads(out)
    assert data["metric"] == "total_tokens" and data["n_pairs"] == 5 and data["only_a"] == 1
    # A - B per task: 11 * (100 - 300, 200 - 600, ...) = -2200 * (1..5); all negative
    assert data["difference"]["mean"] == pytest.approx(-2200 * 3)
    assert data["rank_biserial"] == -1.0 and data["p_value"] == pytest.approx(0.0625)
    assert data["paper_formula_r"] == 1.0 and data["std_ddof"] == 1  # W = 0: the paper's figure is 1
    for key in ("a", "b", "difference", "ci_low", "ci_high", "w_plus", "w_minus", "verdict", "alpha"):
        assert key in data


def test_compare_selects_conditions_from_a_directory(capsys: pytest.CaptureFixture[str], matrix_dir: Path) -> None:
    code, out, err = run(capsys, "compare", matrix_dir, matrix_dir)
    assert code == 2 and "4 conditions match; pick one with --select-a" in err
    code, out, _ = run(
        capsys, "compare", matrix_dir, matrix_dir, "--select-a", "train=persistent,runtime=persistent",
        "--select-b", "train=persistent,runtime=stateless", "--metric", "name_error", "--format", "json",
    )
    assert code == 0 and json.loads(out)["b"]["mean"] == pytest.approx(4 / 6)
    code, _, err = run(capsys, "compare", matrix_dir, matrix_dir, "--select-a", "colour=red")
    assert code == 2 and "--select-a" in err
    code, _, err = run(capsys, "compare", matrix_dir, matrix_dir, "--metric", "flops")
    assert code == 2 and "unknown metric 'flops'" in err


def test_table_spec_and_from_logs(capsys: pytest.CaptureFixture[str], matrix_dir: Path, tmp_path: Path) -> None:
    spec_out = tmp_path / "built.json"
    code, latex, _ = run(capsys, "table", "--from-logs", matrix_dir, "--emit-spec", spec_out)
    assert code == 0 and latex.startswith(r"\begin{table*}") and r"\bottomrule" in latex
    code, again, _ = run(capsys, "table", spec_out)
    assert code == 0 and again == latex
    code, markdown, _ = run(capsys, "table", spec_out, "--format", "markdown")
    assert code == 0 and markdown.startswith("| Difficulty |")
    code, _, err = run(capsys, "table")
    assert code == 2 and "exactly one" in err


def test_figures_command(capsys: pytest.CaptureFixture[str], matrix_dir: Path, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "figures", matrix_dir, "--out", tmp_path / "figs")
    assert code == 0
    paths = [Path(line) for line in out.splitlines()]
    assert len(paths) == 6 and all(p.stat().st_size > 0 for p in paths)  # 2 figures x (png, pdf, caption)
    code, _, err = run(capsys, "figures", matrix_dir, "--out", tmp_path, "--formats", "gif")
    assert code == 2 and "--formats" in err


def test_bad_inputs_exit_2_with_one_clear_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    code, _, err = run(capsys, "stats", text)
    assert code == 2 and err.strip() == f"opaque-knapsack stats: error: {text}: not an Inspect log (expected a .eval or .json file)"
    other = write_log(tmp_path / "other.eval", [episode(0, 1.0)], scorer="accuracy", episode_score=False)
    code, _, err = run(capsys, "compare", other, other)
    assert code == 2 and "other.eval: no episode scores in this log" in err
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"cells": [], "colour": 1}))
    code, _, err = run(capsys, "table", spec)
    assert code == 2 and "unknown field 'colour'" in err
    spec.write_text(json.dumps({"cells": [{"difficulty": "e", "train": "t", "runtime": "r", "path": "missing.eval"}]}))
    code, _, err = run(capsys, "table", spec, "--strict")
    assert code == 2 and "missing.eval: cell file not found" in err
    code, _, err = run(capsys, "figures", tmp_path / "absent", "--out", tmp_path)
    assert code == 2 and "absent: no such file or directory" in err


def test_cancelled_log_prints_a_warning(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_log(tmp_path / "c.eval", [episode(0, 1.0)], status="cancelled", dataset_size=4)
    code, out, err = run(capsys, "stats", path)
    assert code == 0 and "Episodes" in out
    assert "warning:" in err and "3 of 4 samples missing" in err


def test_report_writes_everything(capsys: pytest.CaptureFixture[str], matrix_dir: Path, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "report", matrix_dir, "--out", tmp_path / "all")
    assert code == 0
    names = sorted(Path(line).name for line in out.splitlines())
    assert names == sorted([
        "stats.txt", "stats.md", "compare.txt", "compare.json", "table.tex", "table.md",
        "cost_performance.png", "cost_performance.pdf", "behaviour.png", "behaviour.pdf",
        "cost_performance.caption.txt", "behaviour.caption.txt",
    ])
    assert (tmp_path / "all" / "table.tex").read_text().startswith(r"\begin{table*}")
    assert "Paper's formula" in (tmp_path / "all" / "compare.txt").read_text()
    assert all("paper_formula_r" in record for record in json.loads((tmp_path / "all" / "compare.json").read_text()))


def test_step_timeouts_and_kernel_restarts_are_warned_per_condition(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    clean = [episode(i, 1.0, step_timeouts=0.0, kernel_restarts=0.0) for i in range(3)]
    loaded = [episode(i, 0.5, step_timeouts=float(i), kernel_restarts=float(i == 2)) for i in range(3)]
    write_log(logs / "a.eval", clean, model="scripted/persistent", runtime="persistent")
    write_log(logs / "b.eval", loaded, model="scripted/stateless", runtime="stateless")
    expected = (
        "warning: scripted/stateless in the stateless runtime (easy): 3 step timeouts and 1 kernel restarts "
        "in 3 episodes;"
    )
    commands = [
        ("stats", logs),
        ("table", "--from-logs", logs),
        ("figures", logs, "--out", tmp_path / "figs"),
    ]
    for argv in commands:
        code, _out, err = run(capsys, *argv)
        warned = [line for line in err.splitlines() if line.startswith("warning:")]
        assert code == 0 and len(warned) == 1 and warned[0].startswith(expected), (argv, err)
        assert "lower --max-samples" in warned[0]
