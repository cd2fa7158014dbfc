"""A run without training semantics (a teacher, any model evaluated as is) is named by its model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opaque_knapsack.cli import main
from opaque_knapsack.reports import episodes_df, load_runs, table_from_logs

from .logfactory import condition_episodes, write_log

TEACHER = "google/gemini-2.5-flash"


@pytest.fixture(scope="module")
def teacher_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Teacher traces in both runtimes (a Gemini-like name), plus a mockllm run: no `train` metadata."""
    logs = tmp_path_factory.mktemp("teachers")
    for runtime in ("persistent", "stateless"):
        write_log(logs / f"gemini_{runtime}.eval", condition_episodes("persistent", runtime), model=TEACHER,
                  runtime=runtime)
    write_log(logs / "mock.eval", condition_episodes("stateless", "stateless"), model="mockllm/model",
              runtime="stateless", difficulty="medium")
    return logs


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> str:
    assert main([str(a) for a in argv]) == 0
    return capsys.readouterr().out


def test_the_condition_is_the_model_not_unknown(teacher_logs: Path) -> None:
    runs = load_runs([teacher_logs])
    assert {(r.condition.train, r.condition.runtime) for r in runs} == {
        (TEACHER, "persistent"), (TEACHER, "stateless"), ("mockllm/model", "stateless"),
    }
    assert f"{TEACHER}→persistent easy" in {r.label for r in runs}
    assert set(episodes_df(teacher_logs)["train"]) == {TEACHER, "mockllm/model"}


def test_stats_and_compare_name_the_teacher(teacher_logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "stats", teacher_logs, "--format", "json")
    labels = [r["label"] for r in json.loads(out)["runs"]]
    assert labels == [f"{TEACHER}→persistent easy", f"{TEACHER}→stateless easy", "mockllm/model→stateless medium"]
    out = run(capsys, "stats", teacher_logs)
    assert "unknown" not in out and "mockllm/model→stateless" in out
    out = run(capsys, "compare", teacher_logs / "gemini_persistent.eval", teacher_logs / "gemini_stateless.eval")
    assert f"A = {TEACHER}→persistent, B = {TEACHER}→stateless" in out and "unknown" not in out


def test_figures_name_the_teacher(teacher_logs: Path) -> None:
    import matplotlib.pyplot as plt

    from opaque_knapsack.reports.figures import behaviour_figure, cost_performance_figure

    runs = load_runs([teacher_logs])
    for build in (cost_performance_figure, behaviour_figure):
        fig = build(runs)
        labels = {t.get_text() for t in fig.legends[0].get_texts()}
        assert {TEACHER, "mockllm/model"} <= labels, labels
        assert not any("unknown" in label or label.endswith("-trained") for label in labels)
        plt.close(fig)


def test_the_table_from_logs_names_the_teacher(teacher_logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, _ = table_from_logs(teacher_logs)
    assert [cell.train for cell in spec.cells] == [TEACHER, TEACHER, "mockllm/model"]
    latex = run(capsys, "table", "--from-logs", teacher_logs)
    assert r"& google/gemini-2.5-flash & persistent &" in latex and r"& mockllm/model & stateless &" in latex
    assert "unknown" not in latex
