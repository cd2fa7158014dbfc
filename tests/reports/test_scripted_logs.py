"""All report commands on logs the real task writes with the scripted policies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from opaque_knapsack.cli import main
from opaque_knapsack.reports import load_runs, summarize, write_reports

pytestmark = pytest.mark.slow
EPISODES = 3


@pytest.fixture(scope="module")
def scripted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2x2 matrix from `opaque_knapsack/knapsack` with scripted/persistent and scripted/stateless."""
    from inspect_ai import eval

    log_dir = tmp_path_factory.mktemp("scripted")
    for runtime in ("persistent", "stateless"):
        logs = eval(
            "opaque_knapsack/knapsack",
            model=["scripted/persistent", "scripted/stateless"],
            task_args={"num": EPISODES, "runtime": runtime},
            log_dir=str(log_dir),
            display="none",
        )
        assert [log.status for log in logs] == ["success", "success"]
    return log_dir


def test_conditions_and_means_match_a_direct_read(scripted_dir: Path) -> None:
    from inspect_ai.log import list_eval_logs, read_eval_log

    runs = load_runs([scripted_dir])
    assert sorted((r.condition.train, r.condition.runtime) for r in runs) == [
        ("persistent", "persistent"), ("persistent", "stateless"),
        ("stateless", "persistent"), ("stateless", "stateless"),
    ]
    assert all(r.condition.difficulty == "easy" and r.n_episodes == EPISODES for r in runs)
    summary = summarize(scripted_dir).set_index(["train", "runtime"])
    for info in list_eval_logs(str(scripted_dir)):
        log = read_eval_log(info.name)
        values = [s.scores["knapsack_scorer"].value for s in log.samples]
        row = summary.loc[(log.eval.model.split("/")[1], log.eval.task_args["runtime"])]
        assert row["optimality"] == pytest.approx(np.mean([v["optimality"] for v in values]))
        assert row["total_tokens"] == pytest.approx(np.mean([v["total_tokens"] for v in values]))
        assert row["name_error_rate"] == pytest.approx(100 * np.mean([v["name_error_episode"] for v in values]))
        assert row["reimport_rate"] == pytest.approx(np.mean([v["reimport_rate"] for v in values]))
        assert row["time_s"] == pytest.approx(np.mean([s.total_time for s in log.samples]))


def test_every_command_runs(scripted_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(scripted_dir), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 4
    for metric in ("optimality", "total_tokens", "steps"):
        assert main([
            "compare", str(scripted_dir), str(scripted_dir), "--metric", metric, "--format", "json",
            "--select-a", "train=persistent,runtime=persistent", "--select-b", "train=stateless,runtime=stateless",
        ]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["n_pairs"] == EPISODES and result["verdict"]
    assert main(["table", "--from-logs", str(scripted_dir)]) == 0
    latex = capsys.readouterr().out
    body = latex.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
    assert len([line for line in body.splitlines() if line.endswith(r"\\")]) == 4
    assert latex.count("easy") == 1  # the difficulty shows once, on its group's first row
    assert main(["figures", str(scripted_dir), "--out", str(tmp_path / "figs")]) == 0
    assert len(capsys.readouterr().out.split()) == 6  # two figures: png, pdf and the caption text
    written = write_reports(scripted_dir, tmp_path / "quick")
    assert len(json.loads(written["compare_json"].read_text())) == 2
