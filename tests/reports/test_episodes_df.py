"""The public analysis API: episodes_df and the exported SampleColumn sets, on real scripted-policy logs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from inspect_ai.analysis import SampleSummary, samples_df
from inspect_ai.log import list_eval_logs, read_eval_log

from opaque_knapsack.records import SCORE_KEYS
from opaque_knapsack.reports import EpisodeScores, episodes_df, load_runs
from opaque_knapsack.reports.errors import ReportError

from .logfactory import episode, write_log

pytestmark = pytest.mark.slow
NUM, EPOCHS = 2, 2


@pytest.fixture(scope="module")
def scripted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both scripted policies in the stateless runtime, two instances, two epochs each."""
    from inspect_ai import eval

    log_dir = tmp_path_factory.mktemp("episodes")
    logs = eval(
        "opaque_knapsack/knapsack",
        model=["scripted/persistent", "scripted/stateless"],
        task_args={"num": NUM, "runtime": "stateless"},
        epochs=EPOCHS,
        log_dir=str(log_dir),
        display="none",
    )
    assert [log.status for log in logs] == ["success", "success"]
    return log_dir


def _direct(log_dir: Path) -> dict[tuple[str, str, int], dict[str, float]]:
    """Score dicts read straight from the logs, by (model, sample id, epoch)."""
    found = {}
    for info in list_eval_logs(str(log_dir)):
        log = read_eval_log(info.name)
        for sample in log.samples:
            found[(log.eval.model, str(sample.id), sample.epoch)] = sample.scores["knapsack_scorer"].value
    return found


def test_one_row_per_episode_with_every_score_key_as_a_float(scripted_dir: Path) -> None:
    frame = episodes_df(scripted_dir)
    direct = _direct(scripted_dir)
    assert len(frame) == 2 * NUM * EPOCHS == len(direct)
    assert not frame.duplicated(["model", "task_id", "epoch"]).any()
    for key in SCORE_KEYS:
        assert frame[key].dtype == "float64", key
    for _, row in frame.iterrows():
        values = direct[(row["model"], row["task_id"], row["epoch"])]
        assert set(values) == set(SCORE_KEYS)
        assert {key: row[key] for key in SCORE_KEYS} == pytest.approx({k: float(v) for k, v in values.items()})
        assert row["train"] == row["model"].split("/")[1]
        assert (row["runtime"], row["difficulty"], row["agent"]) == ("stateless", "easy", "codeact")
        assert not row["errored"] and row["total_time"] > 0
    # the mismatch the study is about shows in the frame: the persistent policy hits NameErrors here
    by_train = frame.groupby("train")["name_error_episode"].mean()
    assert by_train["persistent"] > by_train["stateless"]


def test_the_same_episodes_load_runs_reads(scripted_dir: Path) -> None:
    frame = episodes_df([scripted_dir])
    for run in load_runs([scripted_dir]):
        mine = frame[(frame["model"] == run.condition.model) & (frame["train"] == run.condition.train)]
        assert len(mine) == run.n_episodes
        assert mine["optimality"].mean() == pytest.approx(run.values("optimality").mean())


def test_samples_df_with_episode_scores_gives_one_column_per_key(scripted_dir: Path) -> None:
    files = [info.name for info in list_eval_logs(str(scripted_dir))]
    plain = samples_df(files, columns=SampleSummary, quiet=True)
    assert "score_knapsack_scorer" in plain.columns  # Inspect's own: one JSON column
    assert "episode_optimality" not in plain.columns
    spread = samples_df(files, columns=SampleSummary + EpisodeScores, quiet=True)
    for key in SCORE_KEYS:
        assert pd.api.types.is_float_dtype(spread[f"episode_{key}"]), key
    frame = episodes_df(scripted_dir)
    for key in SCORE_KEYS:  # the same values episodes_df holds (its rows carry the model; these do not)
        assert sorted(spread[f"episode_{key}"]) == sorted(frame[key]), key


def test_errored_samples_are_rows_flagged_and_unknown_keys_still_columns(tmp_path: Path) -> None:
    from inspect_ai.log import write_eval_log

    log = write_log(tmp_path / "mixed.eval", [episode(0, 1.0), episode(1, 0.5, errored=True)], train="persistent")
    written = read_eval_log(str(log))
    written.samples[0].scores["knapsack_scorer"].value["extra_metric"] = 3  # a metric added after this code
    write_eval_log(written, str(log))
    frame = episodes_df(log).set_index("task_id")
    assert list(frame["errored"]) == [False, True]
    assert frame.loc["knapsack-0000000000", "extra_metric"] == 3.0
    assert pd.isna(frame.loc["knapsack-0000000001", "optimality"])
    assert set(frame["train"]) == {"persistent"}
    with pytest.raises(ReportError, match="no such file"):
        episodes_df(tmp_path / "missing.eval")
