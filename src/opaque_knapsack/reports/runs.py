"""Reading Inspect logs into runs: one run per condition, one row per episode.

A *condition* is what an eval was run under: model, training semantics,
runtime semantics, difficulty and agent. Each path the user gives (a log file
or a directory of logs) is split into one run per condition; logs of the same
condition under one path are pooled (an eval split over several files reads
as one run). All reading goes through ``inspect_ai.analysis`` data frames.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opaque_knapsack.logs import UNKNOWN, LogFileError, local_path, log_files
from opaque_knapsack.records import (
    AGENT_METADATA_KEY,
    BASE_TRAIN,
    CUSTOM_DIFFICULTY,
    DIFFICULTIES,
    DIFFICULTY_METADATA_KEY,
    FAULT_KEYS,
    RUNTIMES,
    fault_note,
)
from opaque_knapsack.reports.errors import ReportError, ReportWarning
from opaque_knapsack.reports.metrics import EPISODE_METRICS, SCORE_KEYS, SCORE_PREFIX

if TYPE_CHECKING:
    import pandas as pd

TRAIN_ORDER = (BASE_TRAIN, *RUNTIMES)
RUNTIME_ORDER = RUNTIMES
DIFFICULTY_ORDER = (*DIFFICULTIES, CUSTOM_DIFFICULTY)



@dataclass(frozen=True, order=True)
class Condition:
    """What a run's episodes were produced under."""

    model: str
    train: str
    runtime: str
    difficulty: str
    agent: str = ""

    @property
    def aligned(self) -> bool:
        """Training and runtime semantics agree (the paper's diagonal)."""
        return self.train == self.runtime and self.train in RUNTIME_ORDER

    def sort_key(self) -> tuple[Any, ...]:
        return (
            _rank(self.difficulty, DIFFICULTY_ORDER),
            _rank(self.train, TRAIN_ORDER),
            _rank(self.runtime, RUNTIME_ORDER),
            self.model,
            self.agent,
        )


@dataclass
class Run:
    """The episodes of one condition under one input path."""

    condition: Condition
    source: str
    logs: list[str]
    episodes: pd.DataFrame  # columns: task_id, epoch, then EPISODE_METRICS (float)
    label: str = ""
    notes: list[str] = field(default_factory=list)
    errored: int = 0
    """Samples that errored (a provider error after Inspect's retries): counted,
    never averaged in, and not among ``episodes``."""

    @property
    def n_episodes(self) -> int:
        return int(len(self.episodes))

    def values(self, metric: str) -> pd.Series:
        """Per-episode values of a metric, NaN where the episode has none."""
        return self.episodes[metric]


def _rank(value: str, order: Sequence[str]) -> tuple[int, str]:
    return (order.index(value), "") if value in order else (len(order), value)


def resolve_log_files(path: str | Path) -> list[str]:
    """The Inspect log files under a path (a log file or a directory of logs)."""
    try:
        return log_files(path)
    except LogFileError as error:
        raise ReportError(str(error)) from None


def _check_headers(files: Sequence[str]) -> None:
    """Find which file is not a readable Inspect log (only called after a failure)."""
    from inspect_ai.log import read_eval_log

    for file in files:
        try:
            read_eval_log(file, header_only=True)
        except Exception as error:  # noqa: BLE001 - any failure means "not a log"
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ReportError(f"{file}: not a readable Inspect log ({reason[:200]})") from error


# ``columns`` builds Inspect's analysis columns when imported: loaded when logs are read, so
# importing this module stays cheap (``columns`` itself never imports this one).
def _eval_columns() -> list[Any]:
    from inspect_ai.analysis import EvalColumn

    from opaque_knapsack.reports.columns import ConditionColumns

    return [column for column in ConditionColumns if isinstance(column, EvalColumn)]


def _sample_columns() -> list[Any]:
    from inspect_ai.analysis import EvalColumn

    from opaque_knapsack.reports.columns import EpisodeColumns

    return [column for column in EpisodeColumns if not isinstance(column, EvalColumn)]


# Inspect lists a .json file as a log only if its name starts with a timestamp.
_TIMESTAMPED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}[:-]\d{2}[:-]\d{2}")


def read_frames(files: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(evals, samples) data frames for log files, with clear errors for bad files.

    A .json log named by hand (no timestamp prefix) is read with
    ``read_eval_log`` and handed to the data frame functions as an EvalLog,
    since Inspect would skip it when given its path.
    """
    import pandas as pd
    from inspect_ai.analysis import evals_df, samples_df
    from inspect_ai.log import read_eval_log

    by_path = [f for f in files if f.endswith(".eval") or _TIMESTAMPED.match(Path(f).name)]
    by_object = [f for f in files if f not in by_path]
    try:
        sources: list[Any] = [by_path] if by_path else []
        sources += [[read_eval_log(f)] for f in by_object]
        with warnings.catch_warnings():
            # pandas 3 deprecation inside inspect_ai's own samples_df; not the user's concern
            warnings.filterwarnings("ignore", message="The inplace keyword")
            evals = [evals_df(src, columns=_eval_columns(), quiet=True) for src in sources]
            samples = [samples_df(src, columns=_sample_columns(), quiet=True) for src in sources]
    except Exception as error:  # noqa: BLE001 - narrowed to the culprit below
        _check_headers(files)
        raise ReportError(f"could not read logs {', '.join(files)}: {error}") from error
    if len(sources) == 1:
        return evals[0], samples[0]
    return pd.concat(evals, ignore_index=True), pd.concat(samples, ignore_index=True)


def _task_arg(row: pd.Series, name: str) -> str | None:
    """A task setting: the task argument, else the eval metadata's record of it."""
    for column in (f"task_arg_{name}", f"meta_{name}"):
        value = row.get(column)
        if value is not None and not _isna(value):
            return str(value)
    return None


def _isna(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _episode_frame(samples: pd.DataFrame) -> pd.DataFrame:
    """Per-episode metrics as floats, with model usage as the tokens fallback."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {"task_id": samples["id"].astype(str).to_numpy(), "epoch": samples["epoch"].astype(int).to_numpy()}
    )
    for key in EPISODE_METRICS:
        column = f"{SCORE_PREFIX}{key}" if key in SCORE_KEYS else key
        if column in samples.columns:
            values = pd.to_numeric(samples[column], errors="coerce").astype("float64").to_numpy()
        else:
            values = np.full(len(samples), np.nan)
        usage = f"usage_{key}"
        if usage in samples.columns:
            fallback = pd.to_numeric(samples[usage], errors="coerce").astype("float64").to_numpy()
            values = np.where(np.isnan(values), fallback, values)
        frame[key] = values
    return frame


def _runtime(row: pd.Series, samples: pd.DataFrame) -> str:
    """The runtime that ran, as ``records.runtime_of`` resolves it: the
    samples' (a --sandbox override shows there), else the task's."""
    if "sample_runtime" in samples.columns:
        values = samples["sample_runtime"].dropna().astype(str)
        if len(values):
            return str(values.mode().iloc[0])
    value = row.get("eval_runtime")
    return UNKNOWN if value is None or _isna(value) else str(value)


def _difficulty(row: pd.Series, samples: pd.DataFrame) -> str:
    difficulty = _task_arg(row, DIFFICULTY_METADATA_KEY)
    if difficulty:
        return difficulty
    if "sample_difficulty" in samples.columns:
        values = samples["sample_difficulty"].dropna().astype(str)
        if len(values):
            return str(values.mode().iloc[0])
    return UNKNOWN


def eval_condition(row: pd.Series, samples: pd.DataFrame) -> Condition:
    """The condition of one eval (a row of the evals frame) with its samples."""
    return Condition(
        model=str(row["model"]),
        train=str(row["train"]),
        runtime=_runtime(row, samples),
        difficulty=_difficulty(row, samples),
        agent=_task_arg(row, AGENT_METADATA_KEY) or "",
    )


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Runs for each path, in path order and condition order within a path.

    Raises ReportError for a path that is not a log, or a log without an
    episode score (a task family's dict score); warns (ReportWarning) for unfinished evals.
    """
    runs: list[Run] = []
    for path in paths:
        runs.extend(_load_path(str(path)))
    label_runs(runs)
    return runs


def _load_path(source: str) -> list[Run]:
    import pandas as pd

    files = resolve_log_files(source)
    evals, samples = read_frames(files)
    grouped: dict[Condition, list[tuple[str, pd.DataFrame]]] = {}
    notes: dict[Condition, list[str]] = {}
    for _, row in evals.iterrows():
        log = local_path(str(row["log"]))
        mine = samples[samples["eval_id"] == row["eval_id"]]
        note = _completeness_note(log, row, len(mine))
        scorable = mine[~_errored_mask(mine)]
        if len(scorable) and not _has_scores(scorable):
            found = sorted({s for value in mine["scorers"].dropna() for s in str(value).split(",") if s})
            raise ReportError(
                f"{log}: no episode scores in this log (a task family's dict score with the step figures, "
                f"such as knapsack_scorer's; scorers found: {', '.join(found) or 'none'}); is it an opaque-knapsack eval?"
            )
        condition = eval_condition(row, mine)
        grouped.setdefault(condition, []).append((log, mine))
        if note:
            warnings.warn(note, ReportWarning, stacklevel=3)
            notes.setdefault(condition, []).append(note)
    runs = []
    for condition in sorted(grouped, key=Condition.sort_key):
        parts = grouped[condition]
        errored = sum(int(_errored_mask(frame).sum()) for _, frame in parts)
        parts = [(log, frame[~_errored_mask(frame)]) for log, frame in parts]
        frames = [_episode_frame(frame) for _, frame in parts if len(frame)]
        episodes = (
            pd.concat(frames, ignore_index=True)
            if frames
            else _episode_frame(samples.iloc[0:0])
        )
        run_notes = notes.get(condition, [])
        fault = _fault_note(condition, episodes)
        if fault:
            warnings.warn(fault, ReportWarning, stacklevel=3)
            run_notes.append(fault)
        runs.append(
            Run(
                condition=condition,
                source=source,
                logs=[log for log, _ in parts],
                episodes=episodes,
                notes=run_notes,
                errored=errored,
            )
        )
    return runs


def _errored_mask(samples: pd.DataFrame) -> pd.Series:
    if "errored" not in samples.columns:
        return samples["id"].astype(bool) & False
    return samples["errored"].fillna(False).astype(bool)


def _fault_note(condition: Condition, episodes: pd.DataFrame) -> str | None:
    """Warn when a condition's episodes hit step timeouts or kernel restarts (logs without the keys: no note)."""
    totals = [float(episodes[key].sum(skipna=True)) if key in episodes else 0.0 for key in FAULT_KEYS]
    where = f"{condition.model} in the {condition.runtime} runtime"
    if condition.difficulty and condition.difficulty != UNKNOWN:
        where += f" ({condition.difficulty})"
    return fault_note(where, totals[0], totals[1], len(episodes))


def _has_scores(samples: pd.DataFrame) -> bool:
    columns = [f"{SCORE_PREFIX}{key}" for key in SCORE_KEYS]
    present = [c for c in columns if c in samples.columns]
    return bool(present) and bool(samples[present].notna().any(axis=None))


def _completeness_note(log: str, row: pd.Series, present: int) -> str | None:
    status = str(row["status"])
    if status == "success":
        return None
    expected = row.get("expected_samples")
    if expected is None or _isna(expected):
        return f"{log}: eval status is '{status}'; {present} samples present (expected count unknown)"
    missing = max(int(expected) - present, 0)
    return (
        f"{log}: eval status is '{status}' (not finished): {missing} of {int(expected)} "
        f"samples missing, reading the {present} present"
    )


def label_runs(runs: list[Run]) -> None:
    """Short, unique labels: train->runtime, plus whatever else tells runs apart."""
    if not runs:
        return

    def varies(attribute: str) -> bool:
        return len({getattr(run.condition, attribute) for run in runs}) > 1

    parts_for = []
    for run in runs:
        c = run.condition
        parts = [f"{c.train}→{c.runtime}"]
        if varies("difficulty"):
            parts.append(c.difficulty)
        if varies("agent") and c.agent:
            parts.append(c.agent)
        parts_for.append(parts)
    labels = [" ".join(parts) for parts in parts_for]
    if len(set(labels)) < len(labels) and varies("model"):
        labels = [f"{label} [{run.condition.model}]" for label, run in zip(labels, runs, strict=True)]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({Path(run.source).name})" for label, run in zip(labels, runs, strict=True)]
    seen: dict[str, int] = {}
    for run, label in zip(runs, labels, strict=True):
        seen[label] = seen.get(label, 0) + 1
        run.label = label if seen[label] == 1 else f"{label} #{seen[label]}"


def select_run(runs: Sequence[Run], **wanted: str) -> Run | None:
    """The one run whose condition matches every given field, or None."""
    matches = [r for r in runs if all(getattr(r.condition, k) == v for k, v in wanted.items())]
    return matches[0] if len(matches) == 1 else None
