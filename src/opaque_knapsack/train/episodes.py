"""Reading knapsack episodes out of Inspect logs, streamed.

``.eval`` logs are read in batches of ``BATCH`` samples with
``read_eval_log_samples_by_id`` (one zip directory parse per batch, bounded
memory; about 3x faster than ``read_eval_log_samples``, which re-opens the
log for every sample), over the (id, epoch) pairs the log's sample summaries
list, so logs of interrupted runs read too. ``.json`` logs go through
``read_eval_log_samples``. Samples are read without their events, which are
most of a log's bytes and which export does not need (ReAct logs are the
exception: their tool definitions live in the model events).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspect_ai.log import (
    EvalLog,
    EvalSample,
    read_eval_log,
    read_eval_log_sample,
    read_eval_log_sample_summaries,
    read_eval_log_samples,
    read_eval_log_samples_by_id,
)

from opaque_knapsack.logs import UNKNOWN, LogFileError, log_files, score_dict, train_semantics
from opaque_knapsack.records import (
    AGENT_KEY,
    AGENT_METADATA_KEY,
    CODEACT,
    DIFFICULTY_METADATA_KEY,
    END_REASON_KEY,
    FAMILY_METADATA_KEY,
    FINISHED,
    REACT,
    STEPS_KEY,
    TASK_NAME,
    TASK_REGISTRY_NAME,
    ScoreKey,
    runtime_of,
)
from opaque_knapsack.train.unusable import unusable_kinds

BATCH = 64  # samples held in memory at once


class EpisodeLogError(ValueError):
    """A log that cannot be read as knapsack episodes; the message names the file."""


@dataclass
class Episode:
    """One sample of a knapsack log, with what export filters and ranks on."""

    log: str
    sample_id: str | int
    epoch: int
    task_id: str
    runtime: str
    agent: str
    train: str
    model: str
    difficulty: str | None
    scores: dict[str, float] | None
    total_tokens: int
    error_reason: str | None
    sample: EvalSample = field(repr=False)
    unusable: list[str] = field(default_factory=list)
    """Kinds of assistant turn with no usable text the episode holds (``train.unusable``)."""

    @property
    def optimality(self) -> float | None:
        return None if self.scores is None else self.scores.get(ScoreKey.OPTIMALITY)

    @property
    def solved(self) -> bool | None:
        return None if self.scores is None else bool(self.scores.get(ScoreKey.SOLVED))


def expand_log_paths(paths: Sequence[str | Path]) -> list[str]:
    """Files as given; directories replaced by the Inspect logs inside them (sorted)."""
    try:
        return [file for path in paths for file in log_files(path)]
    except LogFileError as error:
        raise EpisodeLogError(str(error)) from None


def read_header(path: str) -> EvalLog:
    """The log's header, checked to be a knapsack log or another family's."""
    try:
        header = read_eval_log(path, header_only=True)
    except Exception as error:  # noqa: BLE001 - any parse failure is a bad input file
        raise EpisodeLogError(f"{path}: not a readable Inspect log ({type(error).__name__}: {error})") from None
    task = header.eval.task_registry_name or header.eval.task
    name = task.split("/")[-1]
    knapsack = name == TASK_NAME or name.startswith(f"{TASK_NAME}-")  # matrix cells: knapsack-<student>-...
    if not knapsack and not (header.eval.metadata or {}).get(FAMILY_METADATA_KEY):
        raise EpisodeLogError(
            f"{path}: log of task {task!r}, not {TASK_REGISTRY_NAME} or another task family "
            f"(eval metadata {FAMILY_METADATA_KEY!r}); export reads the harness's episode logs only"
        )
    return header


def iter_episodes(path: str, header: EvalLog | None = None) -> Iterator[Episode]:
    """Every sample of one knapsack log as an Episode (streamed)."""
    header = header or read_header(path)
    task_args = header.eval.task_args or {}
    agent_default = str(task_args.get(AGENT_METADATA_KEY, CODEACT))
    # ReAct needs the model events (tool definitions), whose long strings are attachments
    react = agent_default == REACT
    exclude = set() if react else {"events", "attachments"}
    train = train_semantics(header.eval.model, header.eval.metadata)
    if not header.eval.dataset.sample_ids:
        raise EpisodeLogError(f"{path}: log has no samples")
    count = 0
    try:
        for sample in _stream_samples(path, exclude, react):
            count += 1
            yield _episode(path, header, sample, train, agent_default)
    except EpisodeLogError:
        raise
    except Exception as error:  # noqa: BLE001
        raise EpisodeLogError(f"{path}: failed reading samples ({type(error).__name__}: {error})") from None
    if count == 0:
        raise EpisodeLogError(f"{path}: log has no samples")


def _stream_samples(path: str, exclude: set[str], resolve: bool) -> Iterator[EvalSample]:
    if not path.endswith(".eval"):
        yield from read_eval_log_samples(
            path, all_samples_required=False, resolve_attachments=resolve, exclude_fields=exclude
        )
        return
    keys = [(summary.id, summary.epoch) for summary in read_eval_log_sample_summaries(path)]
    for start in range(0, len(keys), BATCH):
        yield from read_eval_log_samples_by_id(
            path, keys[start : start + BATCH], resolve_attachments=resolve, exclude_fields=exclude
        )


def _episode(path: str, header: EvalLog, sample: EvalSample, train: str, agent_default: str) -> Episode:
    store = sample.store or {}
    metadata = sample.metadata or {}
    runtime = runtime_of(sample, header) or UNKNOWN
    agent = store.get(AGENT_KEY) or agent_default
    return Episode(
        log=path,
        sample_id=sample.id,
        epoch=sample.epoch,
        task_id=str(metadata.get("task_id") or sample.id),
        runtime=str(runtime),
        agent=str(agent),
        train=train,
        model=header.eval.model,
        difficulty=metadata.get(DIFFICULTY_METADATA_KEY),
        scores=score_dict(sample),
        total_tokens=_total_tokens(sample),
        error_reason=_error_reason(sample),
        sample=sample,
        unusable=unusable_kinds(sample.messages, store.get(STEPS_KEY) or []),
    )


def _total_tokens(sample: EvalSample) -> int:
    scores = score_dict(sample)
    if scores and scores.get(ScoreKey.TOTAL_TOKENS):
        return int(scores[ScoreKey.TOTAL_TOKENS])
    return sum(usage.total_tokens for usage in (sample.model_usage or {}).values())


def _error_reason(sample: EvalSample) -> str | None:
    """Why an episode did not end by the agent's own choice, or None.

    Checked in order: ``sample.error`` (the sample raised), ``sample.limit``
    (an Inspect message/token/time/working limit hit), the harness's store key
    ``knapsack:end_reason`` when it is anything but "finished" (model_error,
    context_length, turn_limit, no_runtime), and a final generation cut off
    by the model's length limit.
    """
    if sample.error is not None:
        return "sample error"
    if sample.limit is not None:
        return f"{sample.limit.type} limit"
    end_reason = (sample.store or {}).get(END_REASON_KEY)
    if end_reason and end_reason != FINISHED:
        return str(end_reason)
    stop_reason = sample.output.stop_reason if sample.output and sample.output.choices else None
    if stop_reason in ("max_tokens", "model_length"):
        return f"stop reason {stop_reason}"
    return None


def sample_tools(episode: Episode) -> list[Any]:
    """The tool definitions offered at the episode's last model call (ReAct).

    They live in the model events; a sample read without its events is read
    again, with them, from its log.
    """
    sample = episode.sample
    if not sample.events or sample.attachments is None or _has_attachment_refs(sample):
        sample = read_eval_log_sample(
            episode.log, id=episode.sample_id, epoch=episode.epoch, resolve_attachments=True
        )
    for event in reversed(sample.events or []):
        if getattr(event, "event", None) == "model" and getattr(event, "tools", None):
            return list(event.tools)
    return []


def _has_attachment_refs(sample: EvalSample) -> bool:
    """Whether the sample's events still point at unresolved attachments."""
    for event in sample.events or []:
        for info in getattr(event, "tools", None) or []:
            if str(info.description).startswith("attachment://"):
                return True
    return False
