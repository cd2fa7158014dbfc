"""The paper's per-episode result directories, read as a table cell's episodes.

The paper's runs leave one pair of files per episode: ``<episode>.json``, the
episode's result with its score, and ``<episode>.trace.json``, its trace. A
directory (searched recursively, so ``<condition>/knapsack/`` works) that holds
at least one ``*.trace.json`` is such a directory. Of each result file these
keys are read, and only these (any other key is ignored):

- ``score`` (required): the episode's score, a number; a fraction of the
  optimum (0-1) or a percentage, as the spec's ``score_scale`` says;
- ``solved`` (optional): true or false;
- ``steps`` (optional): the episode's number of steps;
- ``total_tokens`` (optional): the episode's total tokens.

The optional keys are named as this package's score keys (``ScoreKey``), so
an episode's figures read the same in both places.

The trace is never read; every trace must have its result beside it, since
an episode without a result would silently leave the confidence interval. A
figure that some episodes lack prints ``?`` (with a warning naming the key),
so it is never a mean over a different set of episodes than the score.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from opaque_knapsack.records import ScoreKey
from opaque_knapsack.reports.errors import ReportError, ReportWarning, validation_message

TRACE_SUFFIX = ".trace.json"
RESULT_SUFFIX = ".json"


class EpisodeResult(BaseModel):
    """The keys read from one ``<episode>.json`` (see the module docstring)."""

    model_config = ConfigDict(extra="ignore")

    score: float = Field(allow_inf_nan=False)
    solved: StrictBool | None = None
    steps: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    total_tokens: float | None = Field(default=None, ge=0, allow_inf_nan=False)


@dataclass
class EpisodeFigures:
    """A directory's episodes reduced to a table row's figures (None where unknown)."""

    scores: list[float]
    solved: float | None
    steps: float | None
    tokens: float | None


def is_episode_dir(path: Path) -> bool:
    """A directory holding the paper's per-episode ``*.trace.json`` / ``*.json`` pairs."""
    return path.is_dir() and next(path.rglob(f"*{TRACE_SUFFIX}"), None) is not None


def _result_path(trace: Path) -> Path:
    return trace.with_name(trace.name[: -len(TRACE_SUFFIX)] + RESULT_SUFFIX)


def read_episode_dir(path: Path) -> list[EpisodeResult]:
    """Every episode's result under ``path``, in file-name order; one-line errors naming the file."""
    traces = sorted(path.rglob(f"*{TRACE_SUFFIX}"))
    orphan = next((t for t in traces if not _result_path(t).is_file()), None)
    if orphan is not None:
        raise ReportError(f"{orphan}: trace without its result file {_result_path(orphan).name}")
    files = sorted(p for p in path.rglob(f"*{RESULT_SUFFIX}") if not p.name.endswith(TRACE_SUFFIX) and p.is_file())
    return [_read_result(file) for file in files]


def _read_result(file: Path) -> EpisodeResult:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportError(f"{file}: episode result is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{file}: episode result is not a JSON object")
    try:
        return EpisodeResult.model_validate(data)
    except ValidationError as error:
        raise ReportError(validation_message(str(file), error, "episode result")) from None


def episode_figures(path: Path) -> EpisodeFigures:
    """Scores, solved count, mean steps and mean tokens of a per-episode result directory."""
    results = read_episode_dir(path)
    return EpisodeFigures(
        scores=[r.score for r in results],
        solved=_complete(path, ScoreKey.SOLVED, [None if r.solved is None else float(r.solved) for r in results], math.fsum),
        steps=_complete(path, ScoreKey.STEPS, [r.steps for r in results], _mean),
        tokens=_complete(path, ScoreKey.TOTAL_TOKENS, [r.total_tokens for r in results], _mean),
    )


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _complete(
    path: Path, key: ScoreKey, values: list[float | None], reduce: Callable[[list[float]], float]
) -> float | None:
    """The reduced figure when every episode has the key; else None, with a warning when only some lack it."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if len(present) < len(values):
        warnings.warn(
            f"{path}: {len(values) - len(present)} of {len(values)} episode results lack '{key}'; "
            "its figure prints ?",
            ReportWarning,
            stacklevel=3,
        )
        return None
    return float(reduce(present))
