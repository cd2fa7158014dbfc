"""One row per episode, for researchers who live in pandas.

``load_runs`` groups episodes into runs for the report commands; this is the
same read, flat: one row per sample and epoch, every metric a float column,
the condition in columns beside it, and errored samples kept (flagged) so a
researcher can count them, as the reports do, before dropping them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from opaque_knapsack.logs import local_path
from opaque_knapsack.reports.metrics import EPISODE_METRICS, SCORE_PREFIX
from opaque_knapsack.reports.runs import (
    _episode_frame,
    _errored_mask,
    eval_condition,
    read_frames,
    resolve_log_files,
)

if TYPE_CHECKING:
    import pandas as pd

CONDITION_COLUMNS = ("model", "train", "runtime", "difficulty", "agent")
ID_COLUMNS = ("log", "task_id", "epoch", "errored")


def episodes_df(logs: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Episodes of Inspect logs (files or directories): one row per sample and epoch.

    Columns: ``log``, ``task_id``, ``epoch``, ``errored`` (the sample errored:
    never average it in), the condition (``model``, ``train``, ``runtime``,
    ``difficulty``, ``agent``, as ``load_runs`` reads them), then one float
    column per key of the ``knapsack_scorer`` score (NaN where a sample has
    none) and ``total_time``. Raises ReportError for a path that is not a log.
    """
    import pandas as pd

    paths = [logs] if isinstance(logs, str | Path) else list(logs)
    files = sorted({file for path in paths for file in resolve_log_files(path)})
    evals, samples = read_frames(files)
    extra = sorted(
        column[len(SCORE_PREFIX):]
        for column in samples.columns
        if column.startswith(SCORE_PREFIX) and column[len(SCORE_PREFIX):] not in EPISODE_METRICS
    )
    frames = [
        _eval_episodes(row, samples[samples["eval_id"] == row["eval_id"]], extra)
        for _, row in evals.iterrows()
    ]
    if not frames:
        return pd.DataFrame(columns=[*ID_COLUMNS, *CONDITION_COLUMNS, *EPISODE_METRICS, *extra])
    return pd.concat(frames, ignore_index=True)


def _eval_episodes(row: pd.Series, samples: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    import pandas as pd

    metrics = _episode_frame(samples)
    for key in extra:  # score keys the reports do not know (yet): still one float column each
        metrics[key] = pd.to_numeric(samples[f"{SCORE_PREFIX}{key}"], errors="coerce").astype("float64").to_numpy()
    condition = eval_condition(row, samples)
    head = pd.DataFrame(
        {
            "log": local_path(str(row["log"])),
            "task_id": metrics.pop("task_id"),
            "epoch": metrics.pop("epoch"),
            "errored": _errored_mask(samples).to_numpy(),
            **{name: getattr(condition, name) for name in CONDITION_COLUMNS},
        },
        index=metrics.index,
    )
    return pd.concat([head, metrics], axis=1)
