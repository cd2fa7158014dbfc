"""Inspect logs -> JSONL training conversations for Axolotl's chat_template datasets.

One line per kept episode: the conversation (``messages`` in OpenAI form, or
``conversations`` in ShareGPT form) plus ``task_id``, ``runtime``, ``agent``,
``train`` (the semantics label), ``model`` (the model that produced the
trace: the teacher), ``difficulty``, ``optimality``, ``solved`` and
``total_tokens``, and ``cut_messages`` / ``cut_characters`` (what the cut
removed from its end, 0 when nothing); ReAct lines also carry ``tools``
(OpenAI function definitions, Axolotl's ``field_tools`` default), and with
``keep_unusable`` every line carries ``unusable`` (the kinds of unusable turn
it holds, empty for most).

Filtering, in this order, each drop counted under its reason in the summary:
error (``--exclude-errors``: sample error, Inspect limit, a harness end reason
other than "finished", or a length-truncated last generation), runtime
(``--runtime``), unscored (no ``knapsack_scorer`` value while a score filter
is on), min_score (``--min-score``, on optimality), not_solved
(``--solved-only``), unusable_turn (an assistant turn with no usable text,
``train.unusable``; ``--keep-unusable`` keeps and flags it instead),
no_assistant_turn, too_long (not even the first assistant turn fits within
``--truncate-at``). By default nothing but unusable turns is filtered: the
paper trains on every trace. Then deduplication keeps one episode per (task
id, runtime, agent): the highest optimality, then the fewest total tokens,
then the first read.

Length: each conversation is cut at ``truncate_at`` characters, its start
kept, as the paper's conversion does (``train.length``), and the summary
counts the exported conversations longer than ``sequence_len`` tokens (which
Axolotl would silently drop) and says how the tokens were counted.

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
from opaque_knapsack.train.length import (
    PAPER_CUT_CHARACTERS,
    PAPER_SEQUENCE_LEN,
    Cut,
    Message,
    TokenCounter,
    cut_conversation,
    token_counter,
)

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
    truncate_at: int = Field(
        default=PAPER_CUT_CHARACTERS, ge=0, description="Cut conversations at this many characters; 0: keep whole."
    )
    sequence_len: int = Field(default=PAPER_SEQUENCE_LEN, ge=1, description="Count conversations over these tokens.")
    base_model: str | None = Field(default=None, description="Count tokens with this model's local tokenizer.")
    keep_unusable: bool = False
    """Keep episodes with an assistant turn of no usable text, flagged, instead of dropping them."""


class CutReport(BaseModel):
    """What the cut at ``truncate_at`` characters removed from the exported conversations."""

    at_characters: int
    episodes: int
    messages: int
    characters: int


class LengthReport(BaseModel):
    """How many exported conversations are longer than ``sequence_len`` tokens, and how that was counted."""

    sequence_len: int
    counted_with: str
    over: int
    """As exported: Axolotl drops these (its default ``excess_length_strategy``)."""
    over_uncut: int
    """The same episodes, had they been exported whole."""
    over_by_runtime: dict[str, int]
    longest: int


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
    cut: CutReport
    length: LengthReport
    unusable: dict[str, int]
    """Episodes holding each kind of unusable turn, among those the option filters passed."""
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
        lines += self._length_lines()
        for reason, count in sorted(self.dropped.items()):
            lines.append(f"dropped: {reason:<20}{count}")
        if self.unusable:
            kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.unusable.items()))
            what = "kept, flagged in 'unusable'" if self.options.keep_unusable else "dropped (--keep-unusable keeps them)"
            lines.append(f"unusable turns   episodes with {kinds}: {what}")
        for kind, path in self.outputs.items():
            lines.append(f"wrote {kind:<11}{path}")
        if self.options.val_fraction > 0 and self.validation == 0:
            lines.append("warning: the validation split is empty (too few tasks for --val-fraction)")
        return "\n".join(lines)

    def _length_lines(self) -> list[str]:
        cut, length = self.cut, self.length
        if cut.at_characters:
            lines = [
                f"cut at {cut.at_characters} characters: {cut.episodes} episodes lost {cut.messages} messages, "
                f"{cut.characters} characters from their ends"
            ]
        else:
            lines = ["cut: none (--truncate-at 0), conversations exported whole"]
        lines.append(
            f"over {length.sequence_len} tokens: {length.over} as exported ({length.over_uncut} uncut), "
            f"longest {length.longest}; {length.counted_with}"
        )
        lines += [f"  runtime {runtime:<12}{count}" for runtime, count in sorted(length.over_by_runtime.items())]
        if length.over:
            lines.append(
                f"warning: {length.over} conversations are longer than sequence_len {length.sequence_len}: "
                "Axolotl drops them unless its excess_length_strategy says otherwise"
            )
        return lines


@dataclass
class _Candidate:
    key: tuple[str, str, str]
    rank: tuple[float, int, int]  # (-optimality, tokens, read order): lower is better
    record: dict[str, Any]  # the line, written as JSON once the episode is kept
    runtime: str
    optimality: float | None
    cut: Cut
    whole: list[Message]  # the conversation before the cut (equal to cut.messages when nothing was cut)
    tools: list[dict[str, Any]] | None


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

    sifted = _Sift(options)
    try:
        headers = {path: read_header(path) for path in files}
    except EpisodeLogError as error:
        raise ExportError(str(error)) from None
    total = sum(_announced_episodes(header) for header in headers.values())
    for path, header in headers.items():
        try:
            for episode in iter_episodes(path, header):
                sifted.add(episode)
                if progress is not None:
                    progress(sifted.read, max(total, sifted.read))
        except EpisodeLogError as error:
            raise ExportError(str(error)) from None

    kept = sorted(sifted.best.values(), key=lambda candidate: candidate.key)
    if not kept:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(sifted.dropped.items())) or "none"
        raise ExportError(
            f"no episodes left after filtering ({sifted.read} read from {len(files)} log(s); dropped {reasons})"
        )
    return _write(out, files, kept, sifted, options)


def _announced_episodes(header: Any) -> int:
    """Samples x epochs the log's header says it holds (0 when it does not say)."""
    if header.results is not None and header.results.total_samples:
        return int(header.results.total_samples)
    samples = header.eval.dataset.samples or 0
    return int(samples * (header.eval.config.epochs or 1))


class _Sift:
    """The episodes read so far: the best candidate per key, and what was dropped and why."""

    def __init__(self, options: ExportOptions) -> None:
        self.options = options
        self.read = 0
        self.best: dict[tuple[str, str, str], _Candidate] = {}
        self.dropped: Counter[str] = Counter()
        self.unusable: Counter[str] = Counter()

    def add(self, episode: Episode) -> None:
        self.read += 1
        reason = _drop_reason(episode, self.options)
        if reason is None:
            self.unusable.update(episode.unusable)
            if episode.unusable and not self.options.keep_unusable:
                reason = "unusable_turn"
        if reason is None:
            candidate, reason = _candidate(episode, self.options, self.read)
            if candidate is not None:
                reason = _keep_best(self.best, candidate, self.options.dedup)
        if reason is not None:
            self.dropped[reason] += 1


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
        whole = training_messages(episode.sample.messages)
    except ConversationError:
        return None, "no_assistant_turn"
    cut = cut_conversation(whole, options.truncate_at)
    if cut is None:
        return None, "too_long"
    tools = tool_definitions(sample_tools(episode)) if episode.agent == REACT else None
    record: dict[str, Any] = {}
    if options.format == "sharegpt":
        record["conversations"] = to_sharegpt(cut.messages)
    else:
        record["messages"] = cut.messages
    if tools is not None:
        record["tools"] = tools
    record.update({name: getattr(episode, name) for name in RECORD_FIELDS})
    record.update(cut_messages=cut.removed_messages, cut_characters=cut.removed_characters)
    if options.keep_unusable:
        record["unusable"] = episode.unusable
    optimality = episode.optimality
    candidate = _Candidate(
        key=(episode.runtime, episode.agent, episode.task_id),
        rank=(-(optimality if optimality is not None else -1.0), episode.total_tokens, order),
        record=record,
        runtime=episode.runtime,
        optimality=optimality,
        cut=cut,
        whole=whole,
        tools=tools,
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


def _cut_report(kept: list[_Candidate], options: ExportOptions) -> CutReport:
    cuts = [candidate.cut for candidate in kept if candidate.cut.removed_messages]
    return CutReport(
        at_characters=options.truncate_at,
        episodes=len(cuts),
        messages=sum(cut.removed_messages for cut in cuts),
        characters=sum(cut.removed_characters for cut in cuts),
    )


def _length_report(kept: list[_Candidate], options: ExportOptions) -> LengthReport:
    """Tokens of every kept conversation as exported, and uncut, against ``sequence_len``."""
    counter = token_counter(options.base_model)
    over: Counter[str] = Counter()
    over_uncut = longest = 0
    for candidate in kept:
        tokens = _tokens(counter, candidate, candidate.cut.messages, options.base_model)
        uncut = _tokens(counter, candidate, candidate.whole, options.base_model) if candidate.cut.removed_messages else tokens
        longest = max(longest, tokens)
        over[candidate.runtime] += tokens > options.sequence_len
        over_uncut += uncut > options.sequence_len
    return LengthReport(
        sequence_len=options.sequence_len,
        counted_with=counter.method,
        over=sum(over.values()),
        over_uncut=over_uncut,
        over_by_runtime={runtime: count for runtime, count in sorted(over.items()) if count},
        longest=longest,
    )


def _tokens(counter: TokenCounter, candidate: _Candidate, messages: list[Message], base_model: str | None) -> int:
    try:
        return counter.count(messages, candidate.tools)
    except Exception as error:  # noqa: BLE001 - a chat template that cannot render the conversation
        raise ExportError(
            f"--base-model {base_model}: its chat template failed on task {candidate.key[2]} "
            f"({type(error).__name__}: {error})"
        ) from None


def _write(out: Path, files: list[str], kept: list[_Candidate], sifted: _Sift, options: ExportOptions) -> ExportSummary:
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
        episodes_read=sifted.read,
        kept=len(kept),
        train=len(split["train"]),
        validation=len(split["validation"]),
        dropped=dict(sorted(sifted.dropped.items())),
        kept_by_runtime=dict(sorted(Counter(candidate.runtime for candidate in kept).items())),
        mean_optimality=sum(scored) / len(scored) if scored else None,
        cut=_cut_report(kept, options),
        length=_length_report(kept, options),
        unusable=dict(sorted(sifted.unusable.items())),
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
    return "".join(json.dumps(candidate.record, ensure_ascii=False) + "\n" for candidate in candidates)


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
