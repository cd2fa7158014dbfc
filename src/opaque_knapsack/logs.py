"""Reading the harness's logs: the helpers every reader of logs shares.

The reports and the training export both find log files under a path, take
an episode's figures from its dict score (whichever task family wrote it) and
tell which runtime a model was trained in. Each is one function here, over the names in ``records.py``, so
the readers cannot drift apart. ``inspect_ai.log`` is imported where it is
used, to keep ``import opaque_knapsack.logs`` cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opaque_knapsack.records import RUNTIMES, SCRIPTED_PROVIDER, TRAIN_METADATA_KEY, ScoreKey

if TYPE_CHECKING:
    from inspect_ai.log import EvalSample, EvalSampleSummary
    from inspect_ai.scorer import Score

LOG_SUFFIXES = (".eval", ".json")
UNKNOWN = "unknown"


class LogFileError(ValueError):
    """A path that does not lead to Inspect logs; the message names it."""


def log_files(path: str | Path) -> list[str]:
    """The Inspect log files under a path (a log file, or a directory searched
    recursively), as sorted local paths."""
    from inspect_ai.log import list_eval_logs

    p = Path(path)
    if not p.exists():
        raise LogFileError(f"{path}: no such file or directory")
    if p.is_dir():
        files = [info.name for info in list_eval_logs(str(p), recursive=True)]
        if not files:
            raise LogFileError(f"{path}: directory holds no Inspect logs (*.eval or *.json)")
        return sorted(local_path(f) for f in files)
    if p.suffix not in LOG_SUFFIXES:
        raise LogFileError(f"{path}: not an Inspect log (expected a .eval or .json file)")
    return [str(p)]


def local_path(name: str) -> str:
    """A log's location as Inspect lists it (``file://...``) as a plain path."""
    return name[len("file://") :] if name.startswith("file://") else name


def episode_score(sample: EvalSample | EvalSampleSummary) -> Score | None:
    """The sample's episode score: its first dict score holding the shared step figures, or None.

    Every task family's scorer writes one dict of per-episode figures
    (``knapsack_scorer``, ``guess_scorer``, ...) that includes the step
    figures every family shares (``steps`` among them), so readers of logs
    take the figures of any family from here without knowing its scorer's name.
    """
    return next(
        (
            score
            for score in (sample.scores or {}).values()
            if isinstance(score.value, dict) and ScoreKey.STEPS.value in score.value
        ),
        None,
    )


def score_dict(sample: EvalSample | EvalSampleSummary) -> dict[str, float] | None:
    """An episode's figures: its episode score's numeric values as floats
    (booleans as 0/1), or None when the sample has none."""
    score = episode_score(sample)
    if score is None or not isinstance(score.value, dict):
        return None
    return {key: float(value) for key, value in score.value.items() if isinstance(value, int | float)}


def train_semantics(model: str, metadata: Mapping[str, Any] | None) -> str:
    """The runtime a model was trained in: the eval metadata's record of it, else
    a scripted policy's runtime (``scripted/persistent``), else "unknown"."""
    train = (metadata or {}).get(TRAIN_METADATA_KEY)
    if train:
        return str(train)
    provider, _, name = model.partition("/")
    if provider == SCRIPTED_PROVIDER and name in RUNTIMES:
        return name
    return UNKNOWN
