"""Reading logs into runs: conditions, exact means, bad input, a real Inspect eval."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from opaque_knapsack.logs import train_semantics
from opaque_knapsack.reports import ReportError, ReportWarning, load_runs, summarize

from .logfactory import CONDITIONS, LIFESPAN, NAME_ERROR, OPTIMALITY, OUTPUT_TOKENS, episode, write_log


def test_directory_splits_into_the_four_conditions(matrix_dir: Path) -> None:
    runs = load_runs([matrix_dir])
    assert [(r.condition.train, r.condition.runtime) for r in runs] == list(CONDITIONS)
    assert [r.label for r in runs] == [f"{t}→{r}" for t, r in CONDITIONS]
    assert {r.condition.difficulty for r in runs} == {"easy"}
    assert [r.n_episodes for r in runs] == [6, 6, 6, 5]


def test_summary_means_are_exact(matrix_dir: Path) -> None:
    summary = summarize(matrix_dir).set_index("label")
    for train, runtime in CONDITIONS:
        row = summary.loc[f"{train}→{runtime}"]
        key = (train, runtime)
        opt = np.array(OPTIMALITY[key])
        assert row["optimality"] == pytest.approx(opt.mean())
        assert row["success_rate"] == pytest.approx(100 * np.mean(opt == 1.0))
        assert row["output_tokens"] == pytest.approx(np.mean(OUTPUT_TOKENS[key]))
        assert row["input_tokens"] == pytest.approx(10 * np.mean(OUTPUT_TOKENS[key]))
        assert row["total_tokens"] == pytest.approx(11 * np.mean(OUTPUT_TOKENS[key]))
        assert row["name_error_rate"] == pytest.approx(100 * np.mean(NAME_ERROR[key]))
        assert row["symbol_lifespan"] == pytest.approx(np.mean(LIFESPAN[key]))
        assert row["capacity_utilization"] == pytest.approx(90.0)
        assert row["steps"] == pytest.approx(np.mean([4 + i for i in range(len(opt))]))
        assert row["time_s"] == pytest.approx(np.mean([1 + i for i in range(len(opt))]))
        assert row["episodes"] == len(opt) == row["scored"]


def test_train_semantics_sources() -> None:
    assert train_semantics("scripted/persistent", None) == "persistent"
    assert train_semantics("scripted/stateless", {}) == "stateless"
    assert train_semantics("vllm/student", {"train": "base"}) == "base"
    assert train_semantics("openai/gpt-4o", None) == "unknown"
    assert train_semantics("other/persistent", None) == "unknown"


def test_difficulty_from_sample_metadata_and_labels_with_difficulty(tmp_path: Path) -> None:
    write_log(tmp_path / "a.eval", [episode(0, 1.0)], difficulty=None, runtime="persistent", model="scripted/persistent")
    write_log(tmp_path / "b.eval", [episode(0, 0.5)], difficulty="medium", runtime="persistent", model="scripted/persistent")
    runs = load_runs([tmp_path])
    assert [r.condition.difficulty for r in runs] == ["medium", "custom"]
    assert [r.label for r in runs] == ["persistent→persistent medium", "persistent→persistent custom"]


def test_same_condition_in_two_paths_gets_distinct_labels(matrix_paths: dict) -> None:
    path = matrix_paths[("persistent", "persistent")]
    runs = load_runs([path, path])
    assert len({r.label for r in runs}) == 2


def test_tokens_fall_back_to_model_usage(tmp_path: Path) -> None:
    values = episode(0, 1.0, input_tokens=70.0, output_tokens=30.0)
    path = write_log(tmp_path / "a.eval", [values])
    # rewrite the score without token keys, keeping model usage
    from inspect_ai.log import read_eval_log, write_eval_log

    log = read_eval_log(str(path))
    score = log.samples[0].scores["knapsack_scorer"]
    score.value = {k: v for k, v in score.value.items() if "tokens" not in k}
    write_eval_log(log, str(path))
    run = load_runs([path])[0]
    assert run.episodes.loc[0, ["input_tokens", "output_tokens", "total_tokens"]].tolist() == [70.0, 30.0, 100.0]


def test_json_logs_read_like_eval_logs(tmp_path: Path) -> None:
    path = write_log(tmp_path / "a.json", [episode(0, 0.25), episode(1, 0.75)])
    run = load_runs([path])[0]
    assert run.episodes["optimality"].mean() == pytest.approx(0.5)


def test_cancelled_log_warns_with_the_missing_count(tmp_path: Path) -> None:
    path = write_log(tmp_path / "c.eval", [episode(0, 1.0), episode(1, 0.5)], status="cancelled", dataset_size=6, epochs=2)
    with pytest.warns(ReportWarning, match=r"'cancelled'.*10 of 12 samples missing"):
        runs = load_runs([path])
    assert runs[0].n_episodes == 2 and runs[0].notes


def test_complete_log_does_not_warn(matrix_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReportWarning)
        load_runs([matrix_dir])


def test_not_a_log_is_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ReportError, match=r"notes\.txt: not an Inspect log"):
        load_runs([text])
    fake = tmp_path / "results.json"
    fake.write_text(json.dumps({"score": 1}))
    with pytest.raises(ReportError, match=r"results\.json: not a readable Inspect log"):
        load_runs([fake])
    broken = tmp_path / "broken.eval"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ReportError, match=r"broken\.eval: not a readable Inspect log"):
        load_runs([broken])


def test_missing_path_and_empty_directory_are_named(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"nowhere\.eval: no such file"):
        load_runs([tmp_path / "nowhere.eval"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match=r"empty: directory holds no Inspect logs"):
        load_runs([tmp_path / "empty"])


def test_log_without_our_scorer_is_named(tmp_path: Path) -> None:
    path = write_log(tmp_path / "other.eval", [episode(0, 1.0)], scorer="match", episode_score=False)
    with pytest.raises(ReportError, match=r"other\.eval: no episode scores in this log.*scorers found: match"):
        load_runs([path])


def test_a_real_inspect_eval_reads_back_exactly(tmp_path: Path) -> None:
    """Run inspect_ai.eval on a fake task so the column naming is Inspect's own."""
    from inspect_ai import Task, eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Score, Target, mean, scorer, stderr
    from inspect_ai.solver import Generate, TaskState, solver

    values = {"knapsack-0000000001": 0.25, "knapsack-0000000002": 1.0, "knapsack-0000000003": 0.5}

    @scorer(metrics={"*": [mean(), stderr()]}, name="knapsack_scorer")
    def knapsack_scorer():  # noqa: ANN202
        async def score(state: TaskState, target: Target) -> Score:
            opt = values[str(state.sample_id)]
            return Score(value={**{k: v for k, v in episode(1, opt).items() if k not in ("id", "total_time")}})

        return score

    @solver
    def answer():  # noqa: ANN202
        async def solve(state: TaskState, generate: Generate) -> TaskState:
            state.output = ModelOutput.from_content("mockllm/model", "done")
            return state

        return solve

    def knapsack(runtime: str, difficulty: str) -> Task:
        samples = [Sample(id=k, input="Pack.", metadata={"task_id": k, "difficulty": difficulty}) for k in values]
        return Task(dataset=MemoryDataset(samples), solver=answer(), scorer=knapsack_scorer())

    task = knapsack("stateless", "hard")
    task_args = {"runtime": "stateless", "difficulty": "hard"}
    (log,) = eval(
        task, model="mockllm/model", log_dir=str(tmp_path), display="none", metadata={"train": "persistent"},
        task_args=task_args,
    )
    assert log.status == "success"
    run = load_runs([tmp_path])[0]
    assert run.condition.train == "persistent"
    assert run.condition.difficulty == "hard"
    assert sorted(run.episodes["optimality"]) == [0.25, 0.5, 1.0]
    assert run.episodes["solved"].sum() == 1.0


def test_errored_samples_are_counted_per_condition_and_never_averaged(tmp_path: Path) -> None:
    from opaque_knapsack.reports.stats import render_stats, summarize_runs

    episodes = [
        episode(0, 1.0, total_tokens=1000.0),
        episode(1, 0.5, total_tokens=3000.0),
        episode(2, 0.0, total_tokens=99999.0, errored=True),
        episode(3, 0.0, total_tokens=99999.0, errored=True),
    ]
    path = write_log(tmp_path / "a.eval", episodes, status="error")
    with pytest.warns(ReportWarning):
        [run] = load_runs([path])
    assert run.errored == 2
    assert run.n_episodes == 2
    assert run.values("optimality").mean() == 0.75
    assert run.values("total_tokens").mean() == 2000.0  # the errored samples' usage is not averaged in
    summary = summarize_runs([run])
    assert summary.loc[0, "errored"] == 2
    line = next(x for x in render_stats(summary).splitlines() if x.startswith("Errored samples"))
    assert line.split() == ["Errored", "samples", "(not", "averaged)", "2"]


def test_a_log_whose_samples_all_errored_is_read_not_refused(tmp_path: Path) -> None:
    path = write_log(tmp_path / "a.eval", [episode(0, 0.0, errored=True)], status="error")
    with pytest.warns(ReportWarning):
        [run] = load_runs([path])
    assert (run.errored, run.n_episodes) == (1, 0)
