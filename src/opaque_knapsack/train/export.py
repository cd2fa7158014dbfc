"""Inspect logs -> JSONL training conversations for Axolotl's chat_template datasets.

One line per kept episode: the conversation (``messages`` in OpenAI form, or
``conversations`` in ShareGPT form) plus ``task_id``, ``runtime``, ``agent``,
``train`` (the semantics label), ``model`` (the model that produced the
trace: the teacher), ``difficulty``, ``optimality``, ``solved`` and
``total_tokens``; ReAct lines also carry ``tools`` (OpenAI function
definitions, Axolotl's ``field_tools`` default).

Filtering, in this order, each drop counted under its reason in the summary:
error (``--exclude-errors``: sample error, Inspect limit, a harness end reason
other than "finished", or a length-truncated last generation), runtime
(``--runtime``), unscored (no ``knapsack_scorer`` value while a score filter
is on), min_score (``--min-score``, on optimality), not_solved
(``--solved-only``), no_assistant_turn. Then deduplication keeps one episode
per (task id, runtime, agent): the highest optimality, then the fewest total
tokens, then the first read.

Split: an episode goes to validation when the first 64 bits of
sha256(task id), as a fraction of 2**64, fall below ``val_fraction``, so a
task is on the same side in every export and every runtime. Train lines go to
OUT, validation lines to OUT's ``.val.jsonl`` sibling (written whenever
val_fraction > 0, even if empty; a stale one is removed when val_fraction is
0), and the summary to the ``.summary.json`` sibling. All files are written
to temporary names and renamed into place only when the whole export
succeeded, so a failure never leaves a partial file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from opaque_knapsack.records import REACT, Runtime, ScoreKey
from opaque_knapsack.train.conversation import (
    ConversationError,
    TraceFormat,
    to_sharegpt,
    tool_definitions,
    training_messages,
)
from opaque_knapsack.train.episodes import (
    Episode,
    EpisodeLogError,
    expand_log_paths,
    iter_episodes,
    read_header,
    sample_tools,
)
from opaque_knapsack.train.files import create_temporary

__all__ = [
    "ExportError",
    "ExportOptions",
    "ExportSummary",
    "export_traces",
    "split_of",
    "sibling_paths",
]


class ExportError(ValueError):
    """Bad input or an empty result; the message names the file or the filter."""


class ExportOptions(BaseModel):
    """What to keep and how to write it."""

    format: TraceFormat = "openai"
    min_score: float | None = Field(default=None, ge=0.0, le=1.0, description="Minimum optimality.")
    solved_only: bool = False
    runtime: Runtime | None = None
    exclude_errors: bool = False
    val_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    dedup: bool = True


class ExportSummary(BaseModel):
    """What was read, kept and dropped, and where it went."""

    logs: list[str]
    episodes_read: int
    kept: int
    train: int
    validation: int
    dropped: dict[str, int]
    kept_by_runtime: dict[str, int]
    mean_optimality: float | None
    options: ExportOptions
    outputs: dict[str, str]

    def table(self) -> str:
        lines = [
            f"logs read        {len(self.logs)}",
            f"episodes read    {self.episodes_read}",
            f"kept             {self.kept} (train {self.train}, validation {self.validation})",
        ]
        for runtime, count in sorted(self.kept_by_runtime.items()):
            lines.append(f"  runtime {runtime:<12}{count}")
        if self.mean_optimality is not None:
            lines.append(f"mean optimality  {self.mean_optimality:.3f}")
        for reason, count in sorted(self.dropped.items()):
            lines.append(f"dropped: {reason:<20}{count}")
        for kind, path in self.outputs.items():
            lines.append(f"wrote {kind:<11}{path}")
        if self.options.val_fraction > 0 and self.validation == 0:
            lines.append("warning: the validation split is empty (too few tasks for --val-fraction)")
        return "\n".join(lines)


@dataclass
class _Candidate:
    key: tuple[str, str, str]
    rank: tuple[float, int, int]  # (-optimality, tokens, read order): lower is better
    line: str
    runtime: str
    optimality: float | None


def sibling_paths(out: Path) -> dict[str, Path]:
    """OUT and the validation / summary files written beside it."""
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return {
        "train": out,
        "validation": out.with_name(f"{stem}.val.jsonl"),
        "summary": out.with_name(f"{stem}.summary.json"),
    }


def split_of(task_id: str, val_fraction: float) -> Literal["train", "validation"]:
    """Deterministic split from the task id alone."""
    digest = hashlib.sha256(task_id.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "validation" if position < val_fraction else "train"


def export_traces(
    logs: Sequence[str | Path],
    out: str | Path,
    options: ExportOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Export the episodes of LOGS (files or directories) to OUT; see the module docstring.

    ``progress(read, total)`` is called after each episode read; ``total`` is
    what the logs' headers announce (reading 800 episodes takes half a minute).
    """
    options = options or ExportOptions()
    out = Path(out)
    try:
        files = expand_log_paths(logs)
    except EpisodeLogError as error:
        raise ExportError(str(error)) from None
    if not files:
        raise ExportError("no log files given")

    dropped: Counter[str] = Counter()
    best: dict[tuple[str, str, str], _Candidate] = {}
    read = 0
    try:
        headers = {path: read_header(path) for path in files}
    except EpisodeLogError as error:
        raise ExportError(str(error)) from None
    total = sum(_announced_episodes(header) for header in headers.values())
    for path, header in headers.items():
        try:
            for episode in iter_episodes(path, header):
                read += 1
                if progress is not None:
                    progress(read, max(total, read))
                reason = _drop_reason(episode, options)
                if reason is None:
                    candidate, reason = _candidate(episode, options, read)
                    if candidate is not None:
                        reason = _keep_best(best, candidate, options.dedup)
                if reason is not None:
                    dropped[reason] += 1
        except EpisodeLogError as error:
            raise ExportError(str(error)) from None

    kept = sorted(best.values(), key=lambda candidate: candidate.key)
    if not kept:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(dropped.items())) or "none"
        raise ExportError(
            f"no episodes left after filtering ({read} read from {len(files)} log(s); dropped {reasons})"
        )
    return _write(out, files, kept, read, dropped, options)


def _announced_episodes(header: Any) -> int:
    """Samples x epochs the log's header says it holds (0 when it does not say)."""
    if header.results is not None and header.results.total_samples:
        return int(header.results.total_samples)
    samples = header.eval.dataset.samples or 0
    return int(samples * (header.eval.config.epochs or 1))


def _drop_reason(episode: Episode, options: ExportOptions) -> str | None:
    if options.exclude_errors and episode.error_reason is not None:
        return "error"
    if options.runtime is not None and episode.runtime != options.runtime:
        return "runtime"
    score_filter = options.min_score is not None or options.solved_only
    if score_filter and episode.scores is None:
        return "unscored"
    if options.min_score is not None and (episode.optimality or 0.0) < options.min_score:
        return "min_score"
    if options.solved_only and not episode.solved:
        return "not_solved"
    return None


# What each exported conversation carries of its episode, for filtering and analysis downstream.
# The last three are score keys: named from the contract, so a rename there reaches the export.
RECORD_FIELDS: tuple[str, ...] = (
    "task_id",
    "runtime",
    "agent",
    "train",
    "model",
    "difficulty",
    str(ScoreKey.OPTIMALITY),
    str(ScoreKey.SOLVED),
    str(ScoreKey.TOTAL_TOKENS),
)


def _candidate(episode: Episode, options: ExportOptions, order: int) -> tuple[_Candidate | None, str | None]:
    try:
        messages = training_messages(episode.sample.messages)
    except ConversationError:
        return None, "no_assistant_turn"
    record: dict[str, Any] = {}
    if options.format == "sharegpt":
        record["conversations"] = to_sharegpt(messages)
    else:
        record["messages"] = messages
    if episode.agent == REACT:
        record["tools"] = tool_definitions(sample_tools(episode))
    record.update({name: getattr(episode, name) for name in RECORD_FIELDS})
    optimality = episode.optimality
    candidate = _Candidate(
        key=(episode.runtime, episode.agent, episode.task_id),
        rank=(-(optimality if optimality is not None else -1.0), episode.total_tokens, order),
        line=json.dumps(record, ensure_ascii=False),
        runtime=episode.runtime,
        optimality=optimality,
    )
    return candidate, None


def _keep_best(best: dict[tuple[str, str, str], _Candidate], candidate: _Candidate, dedup: bool) -> str | None:
    key = candidate.key if dedup else (*candidate.key[:2], f"{candidate.key[2]}#{candidate.rank[2]}")
    current = best.get(key)
    if current is None:
        best[key] = candidate
        return None
    if candidate.rank < current.rank:
        best[key] = candidate
    return "duplicate"


def _write(
    out: Path,
    files: list[str],
    kept: list[_Candidate],
    read: int,
    dropped: Counter[str],
    options: ExportOptions,
) -> ExportSummary:
    paths = sibling_paths(out)
    split = {"train": [], "validation": []}  # type: dict[str, list[_Candidate]]
    for candidate in kept:
        split[split_of(candidate.key[2], options.val_fraction)].append(candidate)
    scored = [candidate.optimality for candidate in kept if candidate.optimality is not None]
    outputs = {"train": str(paths["train"]), "summary": str(paths["summary"])}
    if options.val_fraction > 0:
        outputs["validation"] = str(paths["validation"])
    summary = ExportSummary(
        logs=files,
        episodes_read=read,
        kept=len(kept),
        train=len(split["train"]),
        validation=len(split["validation"]),
        dropped=dict(sorted(dropped.items())),
        kept_by_runtime=dict(sorted(Counter(candidate.runtime for candidate in kept).items())),
        mean_optimality=sum(scored) / len(scored) if scored else None,
        options=options,
        outputs=outputs,
    )
    contents: dict[Path, str] = {paths["train"]: _jsonl(split["train"])}
    if options.val_fraction > 0:
        contents[paths["validation"]] = _jsonl(split["validation"])
    contents[paths["summary"]] = summary.model_dump_json(indent=2) + "\n"
    _write_all_or_nothing(contents)
    if options.val_fraction == 0 and paths["validation"].exists():
        paths["validation"].unlink()  # stale output of an earlier export to the same name
    return summary


def _jsonl(candidates: list[_Candidate]) -> str:
    return "".join(candidate.line + "\n" for candidate in candidates)


def _write_all_or_nothing(contents: dict[Path, str]) -> None:
    """Write every file under a temporary name, then rename them all into place."""
    temporary: dict[Path, str] = {}
    try:
        for path, text in contents.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, name = create_temporary(path)
            temporary[path] = name
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
        for path, name in temporary.items():
            os.replace(name, path)
    finally:
        for name in temporary.values():
            if os.path.exists(name):
                os.unlink(name)
