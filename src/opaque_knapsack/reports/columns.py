"""The ``inspect_ai.analysis`` columns the reports read, exported for researchers.

Inspect keeps a dict score as one JSON column; ``EpisodeScores`` spreads the
episode score (a task family's dict score: ``knapsack_scorer``,
``guess_scorer``, ...) into one float column per key, so

    samples_df(logs, columns=SampleSummary + EpisodeScores)

gives ``episode_optimality``, ``episode_steps``, and so on, for any family. ``ConditionColumns`` and ``EpisodeStatus`` are the rest of what
``load_runs`` and ``episodes_df`` read; ``EpisodeColumns`` is all of them.
"""

from __future__ import annotations

from collections.abc import Callable

from inspect_ai.analysis import Column, EvalColumn, SampleColumn
from inspect_ai.log import EvalLog, EvalSample, EvalSampleSummary

from opaque_knapsack.logs import UNKNOWN, episode_score, score_dict, train_semantics
from opaque_knapsack.records import (
    AGENT_METADATA_KEY,
    DIFFICULTY_METADATA_KEY,
    END_REASON_METADATA_KEY,
    MODEL_ERROR,
    RUNTIME_METADATA_KEY,
    runtime_of,
)
from opaque_knapsack.reports.metrics import SCORE_PREFIX

AnySample = EvalSample | EvalSampleSummary


def errored(sample: AnySample) -> bool:
    """The sample errored: Inspect recorded an error, or (a log from before model
    errors errored the sample) the episode ended on a model error."""
    if sample.error is not None:
        return True
    score = episode_score(sample)
    end_reason = str(((score.metadata or {}) if score is not None else {}).get(END_REASON_METADATA_KEY) or "")
    return end_reason.startswith(MODEL_ERROR)


def _usage_sum(attribute: str) -> Callable[[AnySample], int | None]:
    def extract(sample: AnySample) -> int | None:
        usages = list((sample.model_usage or {}).values())
        if not usages:
            return None
        return int(sum(getattr(usage, attribute) or 0 for usage in usages))

    return extract


def condition_train(log: EvalLog) -> str:
    """The run's training semantics, or the model's name where it has none.

    A run without a ``train`` record in its eval metadata that is not a
    scripted policy (a teacher such as ``google/gemini-2.5-flash``, any model
    evaluated as is) was not trained in a runtime: calling it "unknown" would
    read as a student whose training was lost, so the reports name it by its
    model instead.
    """
    train = train_semantics(log.eval.model, log.eval.metadata)
    return log.eval.model if train == UNKNOWN else train


def _metadata_settings(log: EvalLog) -> dict[str, str]:
    metadata = log.eval.metadata or {}
    keys = (RUNTIME_METADATA_KEY, DIFFICULTY_METADATA_KEY, AGENT_METADATA_KEY)
    return {k: str(metadata[k]) for k in keys if metadata.get(k)}


def _expected_samples(log: EvalLog) -> int | None:
    dataset = log.eval.dataset
    count = len(dataset.sample_ids) if dataset.sample_ids is not None else dataset.samples
    if count is None:
        return None
    return int(count) * int(log.eval.config.epochs or 1)


EpisodeScores: list[Column] = [SampleColumn(f"{SCORE_PREFIX}*", path=score_dict)]

ConditionColumns: list[Column] = [
    EvalColumn("eval_id", path="eval.eval_id", required=True),
    EvalColumn("model", path="eval.model", required=True),
    EvalColumn("status", path="status", required=True),
    EvalColumn("task_arg_*", path="eval.task_args"),
    EvalColumn("train", path=condition_train),
    # the task also records its resolved settings in the eval metadata
    EvalColumn("meta_*", path=_metadata_settings),
    EvalColumn("expected_samples", path=_expected_samples),
    # the runtime as every reader of logs resolves it (records.runtime_of): the sample's, else the task's
    EvalColumn("eval_runtime", path=lambda log: runtime_of(None, log)),
    SampleColumn("sample_difficulty", path=lambda s: (s.metadata or {}).get(DIFFICULTY_METADATA_KEY)),
    SampleColumn("sample_runtime", path=runtime_of),
]
"""What an episode was produced under (model, train, runtime, difficulty, agent), raw."""

EpisodeStatus: list[Column] = [
    SampleColumn("scorers", path=lambda s: ",".join(sorted((s.scores or {}).keys()))),
    SampleColumn("errored", path=errored, type=bool),
    SampleColumn("usage_input_tokens", path=_usage_sum("input_tokens")),
    SampleColumn("usage_output_tokens", path=_usage_sum("output_tokens")),
    SampleColumn("usage_total_tokens", path=_usage_sum("total_tokens")),
    SampleColumn("total_time", path="total_time"),
]
"""Whether the sample errored, which scorers it has, its model usage and time."""

EpisodeColumns: list[Column] = [
    SampleColumn("id", path="id", required=True, type=str),
    SampleColumn("epoch", path="epoch", required=True, type=int),
    *ConditionColumns,
    *EpisodeStatus,
    *EpisodeScores,
]
"""Everything ``load_runs`` and ``episodes_df`` read from a log."""
