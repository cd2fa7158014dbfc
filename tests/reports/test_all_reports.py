"""write_reports (what the quickstart and the report command write), and summarize()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opaque_knapsack.reports import summarize, write_reports
from opaque_knapsack.reports.metrics import STAT_ROWS

from .logfactory import OPTIMALITY, episode, write_log


def test_write_reports(matrix_dir: Path, tmp_path: Path) -> None:
    written = write_reports(matrix_dir, tmp_path / "reports")
    assert set(written) == {
        "stats_text", "stats_markdown", "compare_text", "compare_json", "table_latex", "table_markdown",
        "cost_performance_png", "cost_performance_pdf", "behaviour_png", "behaviour_pdf",
        "cost_performance_caption", "behaviour_caption",
    }
    assert all(p.exists() and p.stat().st_size > 0 for p in written.values())
    comparisons = json.loads(written["compare_json"].read_text())
    assert [c["metric"] for c in comparisons] == ["optimality", "total_tokens"]
    assert comparisons[0]["label_a"] == "persistent→persistent"
    assert comparisons[0]["label_b"] == "stateless→stateless"
    pp = OPTIMALITY[("persistent", "persistent")][:5]
    ss = OPTIMALITY[("stateless", "stateless")]
    assert comparisons[0]["difference"]["mean"] == pytest.approx(sum(pp) / 5 - sum(ss) / 5)
    assert "Verdict:" in written["compare_text"].read_text()
    assert "\\begin{tabular}" in written["table_latex"].read_text()


def test_quickstart_without_aligned_pair_still_writes(tmp_path: Path) -> None:
    write_log(tmp_path / "logs" / "a.eval", [episode(0, 1.0)], model="scripted/persistent", runtime="stateless")
    written = write_reports(tmp_path / "logs", tmp_path / "out")
    assert "No comparison" in written["compare_text"].read_text()
    assert json.loads(written["compare_json"].read_text()) == []


def test_summarize_has_one_row_per_condition(matrix_dir: Path) -> None:
    frame = summarize(matrix_dir)
    assert len(frame) == 4
    assert {row.key for row in STAT_ROWS} <= set(frame.columns)
    assert list(frame["train"]) == ["persistent", "persistent", "stateless", "stateless"]
