"""The LaTeX results table: structure, bold best, missing values, spec errors."""

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


def test_latex_structure_from_logs(matrix_dir: Path) -> None:
    spec, rows = table_from_logs(matrix_dir)
    latex = render_latex(spec, rows)
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
    latex = render_latex(spec, rows)
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
    row = _cells(_body_rows(render_latex(spec, build_rows(spec)))[0])
    assert row[3] == "1.2"  # percent scale: taken as is
    assert row[4] == r"75.0\%"


def test_markdown_format(matrix_dir: Path) -> None:
    spec, rows = table_from_logs(matrix_dir)
    markdown = render_markdown(spec, rows)
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
    assert "gone.eval: cell file not found" in captured.err and r"\end{table}" in captured.out
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
