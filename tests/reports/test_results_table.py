"""The LaTeX results table: the paper's layout and the compact one, bold best, missing values,
per-episode result directories, spec errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opaque_knapsack.reports import ReportError, build_rows, load_spec, render_latex, render_markdown, table_from_logs
from opaque_knapsack.reports.bootstrap import bootstrap_mean_ci
from opaque_knapsack.reports.results_table import latex_escape
from opaque_knapsack.reports.table_layout import COMPACT

from .logfactory import OPTIMALITY, condition_episodes, write_log, write_matrix


def _body_rows(latex: str) -> list[str]:
    body = latex.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
    return [line for line in body.splitlines() if line.rstrip().endswith(r"\\")]


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.rstrip().removesuffix(r"\\").split("&")]


def _write_spec(tmp_path: Path, spec: dict[str, Any]) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_compact_latex_structure_from_logs(matrix_dir: Path) -> None:
    spec, rows = table_from_logs(matrix_dir)
    latex = render_latex(spec, rows, COMPACT)
    for env in ("table", "tabular"):
        assert latex.count(rf"\begin{{{env}}}") == latex.count(rf"\end{{{env}}}") == 1
    assert latex.index(r"\toprule") < latex.index(r"\midrule") < latex.index(r"\bottomrule")
    assert r"\label{tab:main_results}" in latex
    body = _body_rows(latex)
    assert len(body) == 4
    # persistent->persistent has the best score (80.0) and fewest tokens (3,850)
    first = _cells(body[0])
    assert first[3].startswith(r"\textbf{80.0} $\pm$ ")
    assert first[6] == r"\textbf{3,850}"
    # score per 1k tokens = 80 / 3.85
    assert first[8] == rf"\textbf{{{80 / 3.85:.2f}}}"
    assert latex.count(r"\textbf{") == 6  # score, solved, tokens, per-1k; steps and time go to stateless->stateless
    assert _cells(body[3])[5] == r"\textbf{6.0}" and _cells(body[3])[7] == r"\textbf{3.0}"
    assert _cells(body[3])[4] == "1/5"


def test_score_ci_is_half_the_bootstrap_interval(matrix_dir: Path) -> None:
    spec, rows = table_from_logs(matrix_dir)
    low, high = bootstrap_mean_ci(OPTIMALITY[("persistent", "stateless")], resamples=5_000)
    assert rows[1][1].score_ci == pytest.approx(100 * (high - low) / 2)


def test_summary_json_cells_scales_overrides_and_missing(tmp_path: Path, matrix_paths: dict) -> None:
    (tmp_path / "a.json").write_text(json.dumps({
        "metrics": {"score": {"mean": 0.625}}, "num_tasks_solved": 30, "num_tasks_executed": 100,
        "average_steps": 7.5, "average_total_tokens": 5000, "run_name": "x",
    }))
    (tmp_path / "b.json").write_text(json.dumps({"metrics": {"score": {"mean": 55.0}}, "num_tasks_solved": 40}))
    (tmp_path / "scores.jsonl").write_text("\n".join(json.dumps({"score": s}) for s in [0.5, 0.7, 0.9]) + "\n")
    spec_path = _write_spec(tmp_path, {
        "caption": "Base model and students",
        "cells": [
            {"difficulty": "easy", "train": "base_model", "runtime": "persistent", "path": "a.json",
             "metrics_path": "scores.jsonl"},
            {"difficulty": "easy", "train": "stateless", "runtime": "stateless", "path": "b.json"},
            {"difficulty": "medium", "train": "persistent", "runtime": "persistent",
             "path": str(matrix_paths[("persistent", "persistent")]), "score_override": 0.9},
        ],
    })
    spec = load_spec(spec_path)
    rows = build_rows(spec)
    latex = render_latex(spec, rows, COMPACT)
    body = [_cells(r) for r in _body_rows(latex)]
    assert len(body) == 3
    assert body[0][1] == r"base\_model"
    low, high = bootstrap_mean_ci([0.5, 0.7, 0.9], resamples=5_000)
    assert body[0][3] == rf"\textbf{{62.5}} $\pm$ {100 * (high - low) / 2:.1f}"
    # b.json has no executed count, so solved compares counts: 40 beats 30
    assert body[0][4] == "30/100" and body[1][4] == r"\textbf{40}"
    assert body[1][3] == "55.0" and body[1][5] == "?" and body[1][6] == "?" and body[1][7] == "?"
    assert body[0][7] == "?"  # no average_runtime
    assert body[2][0] == "medium" and body[2][3].startswith("90.0")  # override, alone in its group: not bold
    assert r"\midrule" in latex.split(r"\toprule")[1]
    assert latex.count(r"\midrule") == 2


def test_solved_percent_and_fraction_scale(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"metrics": {"score": {"mean": 1.2}}, "num_tasks_solved": 3, "num_tasks_executed": 4}))
    spec_path = _write_spec(tmp_path, {
        "score_scale": "percent", "solved_format": "percent", "label": "tab:x",
        "cells": [{"difficulty": "hard", "train": "t", "runtime": "r", "path": "a.json"}],
    })
    spec = load_spec(spec_path)
    row = _cells(_body_rows(render_latex(spec, build_rows(spec), COMPACT))[0])
    assert row[3] == "1.2"  # percent scale: taken as is
    assert row[4] == r"75.0\%"


def test_markdown_format(matrix_dir: Path) -> None:
    spec, rows = table_from_logs(matrix_dir)
    markdown = render_markdown(spec, rows, COMPACT)
    lines = markdown.strip().splitlines()
    assert len(lines) == 2 + 4
    assert "**80.0** ± " in lines[2]


def test_three_by_two_with_base_orders_base_first(tmp_path: Path) -> None:
    write_matrix(tmp_path)
    for runtime in ("persistent", "stateless"):
        write_log(tmp_path / f"base_{runtime}.eval", condition_episodes("stateless", runtime),
                  model="vllm/qwen3-8b", train="base", runtime=runtime)
    spec, rows = table_from_logs(tmp_path)
    assert [(c.train, c.runtime) for c in spec.cells] == [
        ("base", "persistent"), ("base", "stateless"), ("persistent", "persistent"),
        ("persistent", "stateless"), ("stateless", "persistent"), ("stateless", "stateless"),
    ]
    assert len(_body_rows(render_latex(spec, rows))) == 6


def test_unknown_field_is_named(tmp_path: Path) -> None:
    spec_path = _write_spec(tmp_path, {
        "cells": [{"difficulty": "easy", "train": "a", "runtime": "b", "path": "x.json", "colour": "red"}],
        "title": "x",
    })
    with pytest.raises(ReportError, match=r"spec\.json: invalid table spec: .*unknown field 'cells\[0\]\.colour'"):
        load_spec(spec_path)
    with pytest.raises(ReportError, match="unknown field 'title'"):
        load_spec(spec_path)


def test_bad_values_missing_fields_and_bad_json(tmp_path: Path) -> None:
    spec_path = _write_spec(tmp_path, {"score_scale": "ratio", "cells": [{"difficulty": "easy"}]})
    with pytest.raises(ReportError, match=r"field 'score_scale'.*missing field 'cells\[0\]\.train'"):
        load_spec(spec_path)
    spec_path.write_text("{not json")
    with pytest.raises(ReportError, match="not valid JSON"):
        load_spec(spec_path)
    with pytest.raises(ReportError, match="table spec not found"):
        load_spec(tmp_path / "absent.json")


def test_missing_cell_and_metrics_files_are_errors_with_strict(tmp_path: Path, matrix_paths: dict) -> None:
    spec = load_spec(_write_spec(tmp_path, {
        "cells": [{"difficulty": "easy", "train": "a", "runtime": "b", "path": "gone.eval"}]}))
    with pytest.raises(ReportError, match=r"gone\.eval: cell file not found \(cell easy/a/b\)"):
        build_rows(spec, strict=True)
    spec = load_spec(_write_spec(tmp_path, {
        "cells": [{"difficulty": "easy", "train": "a", "runtime": "b",
                   "path": str(matrix_paths[("persistent", "persistent")]), "metrics_path": "nope.jsonl"}]}))
    with pytest.raises(ReportError, match=r"nope\.jsonl: metrics file not found"):
        build_rows(spec, strict=True)


def test_a_missing_cell_file_prints_question_marks_in_its_row(tmp_path: Path, matrix_paths: dict, capsys) -> None:
    from opaque_knapsack.cli import main
    from opaque_knapsack.reports import ReportWarning

    spec_path = _write_spec(tmp_path, {"cells": [
        {"difficulty": "easy", "train": "persistent", "runtime": "persistent",
         "path": str(matrix_paths[("persistent", "persistent")])},
        {"difficulty": "easy", "train": "stateless", "runtime": "stateless", "path": "gone.eval",
         "score_override": 0.5},
    ]})
    with pytest.warns(ReportWarning, match=r"gone\.eval: cell file not found"):
        rows = build_rows(load_spec(spec_path))
    present, missing = (_cells(row) for row in _body_rows(render_latex(load_spec(spec_path), rows)))
    assert missing[3:] == ["?"] * 6
    assert "?" not in present[3:]
    assert main(["table", str(spec_path)]) == 0
    captured = capsys.readouterr()
    assert "gone.eval: cell file not found" in captured.err and r"\end{table*}" in captured.out
    assert main(["table", str(spec_path), "--strict"]) == 2
    assert "gone.eval: cell file not found" in capsys.readouterr().err


def test_metrics_path_accepts_lists_objects_and_logs(tmp_path: Path, matrix_paths: dict) -> None:
    (tmp_path / "list.json").write_text(json.dumps([0.2, 0.4]))
    (tmp_path / "obj.json").write_text(json.dumps({"scores": [{"optimality": 0.2}, {"optimality": 0.4}]}))
    (tmp_path / "bad.json").write_text(json.dumps([{"value": 1}]))
    log = str(matrix_paths[("persistent", "stateless")])
    cells = [
        {"difficulty": "easy", "train": "a", "runtime": "b", "path": log, "metrics_path": name}
        for name in ("list.json", "obj.json", log)
    ]
    spec = load_spec(_write_spec(tmp_path, {"cells": cells}))
    rows = build_rows(spec)
    low, high = bootstrap_mean_ci([0.2, 0.4], resamples=5_000)
    assert rows[0][1].score_ci == pytest.approx(100 * (high - low) / 2)
    assert rows[1][1].score_ci == rows[0][1].score_ci
    assert rows[2][1].score_ci == pytest.approx(
        100 * np.subtract(*bootstrap_mean_ci(OPTIMALITY[("persistent", "stateless")], resamples=5_000)[::-1]) / 2
    )
    spec = load_spec(_write_spec(tmp_path, {"cells": [{**cells[0], "metrics_path": "bad.json"}]}))
    with pytest.raises(ReportError, match=r"bad\.json: episode 0 has no numeric 'score'"):
        build_rows(spec)


def test_directory_cell_picks_its_condition(matrix_dir: Path, tmp_path: Path) -> None:
    spec = load_spec(_write_spec(tmp_path, {"cells": [
        {"difficulty": "easy", "train": "persistent", "runtime": "stateless", "path": str(matrix_dir)},
        {"difficulty": "easy", "train": "nobody", "runtime": "stateless", "path": str(matrix_dir)},
    ]}))
    with pytest.raises(ReportError, match=r"no run matches cell easy/nobody/stateless"):
        build_rows(spec)
    spec.cells.pop()
    assert build_rows(spec)[0][1].score == pytest.approx(100 * np.mean(OPTIMALITY[("persistent", "stateless")]))


def test_latex_escape() -> None:
    assert latex_escape("a_b & 50% #1 {x} $") == r"a\_b \& 50\% \#1 \{x\} \$"
    assert re.fullmatch(r"[^_]*", latex_escape("___").replace(r"\_", ""))


# --- the paper's layout -----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def test_example_spec_prints_the_pinned_paper_table(capsys: pytest.CaptureFixture[str]) -> None:
    from opaque_knapsack.cli import main

    assert main(["table", str(ROOT / "examples" / "table_spec.json")]) == 0
    assert capsys.readouterr().out == (Path(__file__).parent / "golden" / "table_spec.tex").read_text()


def _summary(path: Path, score: float, solved: int, steps: float, tokens: float, time_s: float) -> str:
    path.write_text(json.dumps({
        "metrics": {"score": {"mean": score}}, "num_tasks_solved": solved, "num_tasks_executed": 20,
        "average_steps": steps, "average_total_tokens": tokens, "average_runtime": time_s,
    }))
    return path.name


def write_episode_dir(root: Path, results: list[dict[str, Any]]) -> Path:
    """The paper's per-episode result directory: <episode>.json (result) beside <episode>.trace.json."""
    folder = root / "knapsack"
    folder.mkdir(parents=True)
    for index, result in enumerate(results):
        name = f"knapsack-{index:010d}"
        (folder / f"{name}.json").write_text(json.dumps({"task_id": name, "model": "qwen3-8b", **result}))
        (folder / f"{name}.trace.json").write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    return root


@pytest.fixture
def two_difficulty_spec(tmp_path: Path) -> Path:
    """Cells interleaved by difficulty; steps 4.001 and 4.004 print alike at two decimals."""
    cells = [
        ("easy", "persistent", "persistent", 0.80, 12, 4.001, 3000, 10.0),
        ("medium", "persistent", "persistent", 0.50, 3, 9.0, 9000, 30.0),
        ("easy", "stateless", "stateless", 0.80, 16, 4.004, 6000, 12.0),
        ("medium", "stateless", "stateless", 0.55, 2, 9.5, 8000, 31.0),
    ]
    spec_cells = []
    for difficulty, train, runtime, *figures in cells:
        name = _summary(tmp_path / f"{difficulty}_{train}.json", *figures)
        spec_cells.append({"difficulty": difficulty, "train": train, "runtime": runtime, "path": name})
    write_episode_dir(tmp_path / "episodes", [{"score": s} for s in (0.6, 0.9, 1.0, 0.7)])
    spec_cells[0]["metrics_path"] = "episodes"
    return _write_spec(tmp_path, {"score_scale": "fraction", "cells": spec_cells})


def test_paper_layout_choice_by_choice(two_difficulty_spec: Path) -> None:
    spec = load_spec(two_difficulty_spec)
    latex = render_latex(spec, build_rows(spec))
    lines = latex.splitlines()
    # the float environment and font size
    assert lines[:3] == [r"\begin{table*}[t]", r"\centering", r"\small"] and lines[-1] == r"\end{table*}"
    # the column specification, its last column shaded
    assert r"\begin{tabular}{cllrrrrr>{\columncolor{gray!15}}r}" in lines
    # bold headers
    header = lines[lines.index(r"\toprule") + 1]
    assert _cells(header) == [rf"\textbf{{{name}}}" for name in (
        "Difficulty", "Train", "Runtime", r"Score (\%)", "Solved", "Steps", "Tokens", "Time (s)", "Score / 1k tok.")]
    body = [_cells(row) for row in _body_rows(latex)]
    # rows grouped by difficulty in order of first appearance, spec order within a group
    assert [(row[1], row[2]) for row in body] == [
        ("persistent", "persistent"), ("stateless", "stateless"), ("persistent", "persistent"), ("stateless", "stateless"),
    ]
    # the difficulty as a rotated multirow label over its group, a rule between groups
    assert body[0][0] == r"\multirow{2}{*}{\rotatebox[origin=c]{90}{easy}}" and body[1][0] == ""
    assert body[2][0] == r"\multirow{2}{*}{\rotatebox[origin=c]{90}{medium}}" and body[3][0] == ""
    assert latex.count(r"\midrule") == 2
    # Solved a plain count, never bold (16 beats 12 and 3 beats 2, unmarked)
    assert [row[4] for row in body] == ["12", "16", "3", "2"]
    # steps with two decimals; bold on the unrounded value: 4.001 beats 4.004 though both print 4.00
    assert (body[0][5], body[1][5]) == (r"\textbf{4.00}", "4.00")
    # percentages with one decimal, ± the half-width of a 5,000-resample percentile bootstrap
    low, high = bootstrap_mean_ci([0.6, 0.9, 1.0, 0.7], resamples=5_000)
    assert body[0][3] == rf"\textbf{{80.0}} $\pm$ {100 * (high - low) / 2:.1f}"
    assert body[1][3] == r"\textbf{80.0}"  # a tie on the unrounded value: both bold
    assert body[3][3] == r"\textbf{55.0}" and body[2][3] == "50.0"
    assert body[0][6] == r"\textbf{3,000}" and body[0][7] == r"\textbf{10.0}" and body[0][8] == r"\textbf{26.67}"


def test_compact_layout_keeps_the_earlier_table(two_difficulty_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from opaque_knapsack.cli import main

    assert main(["table", str(two_difficulty_spec), "--layout", "compact"]) == 0
    latex = capsys.readouterr().out
    lines = latex.splitlines()
    assert lines[:2] == [r"\begin{table}[t]", r"\centering"] and lines[2].startswith(r"\caption{")
    assert r"\begin{tabular}{lllrrrrrr}" in lines and r"\textbf{Difficulty}" not in latex
    body = [_cells(row) for row in _body_rows(latex)]
    assert [row[0] for row in body] == ["easy", "medium", "easy", "medium"]  # spec order, label on each change
    assert body[1][4] == r"\textbf{3/20}" and body[2][4] == r"\textbf{16/20}"  # solved of executed, bold
    assert (body[0][5], body[2][5]) == (r"\textbf{4.0}", r"\textbf{4.0}")  # bold on the printed value: a tie


def test_episode_directory_as_metrics_path_and_as_path(tmp_path: Path, matrix_paths: dict) -> None:
    results = [
        {"score": 1.0, "solved": True, "steps": 4, "total_tokens": 1000, "extra": {"ignored": [1, 2]}},
        {"score": 0.5, "solved": False, "steps": 6, "total_tokens": 3000},
        {"score": 0.75, "solved": False, "steps": 5, "total_tokens": 2000, "name_errors": 3},
    ]
    write_episode_dir(tmp_path / "run", results)
    log = str(matrix_paths[("persistent", "persistent")])
    spec = load_spec(_write_spec(tmp_path, {"cells": [
        {"difficulty": "easy", "train": "persistent", "runtime": "persistent", "path": log, "metrics_path": "run"},
        {"difficulty": "easy", "train": "stateless", "runtime": "stateless", "path": "run"},
    ]}))
    (_, with_metrics), (_, from_dir) = build_rows(spec)
    low, high = bootstrap_mean_ci([1.0, 0.5, 0.75], resamples=5_000)
    assert with_metrics.score_ci == pytest.approx(100 * (high - low) / 2)
    assert with_metrics.score == pytest.approx(100 * np.mean(OPTIMALITY[("persistent", "persistent")]))
    assert from_dir.score == pytest.approx(75.0) and from_dir.score_ci == with_metrics.score_ci
    assert (from_dir.solved, from_dir.executed, from_dir.steps, from_dir.tokens) == (1, 3, 5, 2000)
    assert from_dir.time_s is None


def test_episode_directory_with_a_key_missing_in_some_results_prints_question_marks(tmp_path: Path) -> None:
    from opaque_knapsack.reports import ReportWarning

    write_episode_dir(tmp_path / "run", [{"score": 1.0, "steps": 4}, {"score": 0.5}])
    spec = load_spec(_write_spec(tmp_path, {"cells": [{"difficulty": "easy", "train": "a", "runtime": "b", "path": "run"}]}))
    with pytest.warns(ReportWarning, match=r"1 of 2 episode results lack 'steps'"):
        rows = build_rows(spec)
    row = _cells(_body_rows(render_latex(spec, rows))[0])
    assert row[3].startswith("75.0") and row[4] == "?" and row[5] == "?" and row[6] == "?"


def test_bad_episode_results_are_one_line_naming_the_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from opaque_knapsack.cli import main

    run = write_episode_dir(tmp_path / "run", [{"score": 1.0}, {"score": "high"}])
    spec_path = _write_spec(tmp_path, {"cells": [{"difficulty": "easy", "train": "a", "runtime": "b", "path": "run"}]})
    assert main(["table", str(spec_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "knapsack-0000000001.json: invalid episode result: field 'score'" in err
    (run / "knapsack" / "knapsack-0000000001.json").unlink()
    with pytest.raises(ReportError, match=r"knapsack-0000000001\.trace\.json: trace without its result file"):
        build_rows(load_spec(spec_path))


def test_a_bad_spec_field_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from opaque_knapsack.cli import main

    spec_path = _write_spec(tmp_path, {"solved_format": "fraction", "cells": [
        {"difficulty": "easy", "train": "a", "runtime": "b", "path": "x.json", "score_override": "lots"}]})
    assert main(["table", str(spec_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "field 'solved_format'" in err and "field 'cells[0].score_override'" in err


def test_a_log_cell_on_the_percent_scale_gets_its_interval_in_percent(tmp_path: Path, matrix_paths: dict) -> None:
    log = str(matrix_paths[("persistent", "stateless")])
    spec = load_spec(_write_spec(tmp_path, {"score_scale": "percent", "cells": [
        {"difficulty": "easy", "train": "persistent", "runtime": "stateless", "path": log}]}))
    [(_, values)] = build_rows(spec)
    low, high = bootstrap_mean_ci(OPTIMALITY[("persistent", "stateless")], resamples=5_000)
    assert values.score == pytest.approx(100 * np.mean(OPTIMALITY[("persistent", "stateless")]))
    assert values.score_ci == pytest.approx(100 * (high - low) / 2)
