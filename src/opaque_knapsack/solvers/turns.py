"""One model reply in an agent's turn loop, shared by the CodeAct and ReAct agents."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from inspect_ai.agent import AgentState
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    Model,
    ModelOutput,
    ModelUsage,
    StopReason,
)
from inspect_ai.tool import Tool

from opaque_knapsack.records import CONTEXT_LENGTH, EndReason, ScoreKey, StepRecord
from opaque_knapsack.solvers import prompts
from opaque_knapsack.solvers.prompts import Turn

CutOff = Literal["drop", "run"]
"""What the turn loop does with a reply that did not end normally (cut off by
the token limit, stopped by a content filter): ``drop`` it as the paper's loop
does (not run, not kept, not counted; the model is told and the turn is
spent), or ``run`` it like any other reply."""
CUT_OFF_MODES: tuple[CutOff, ...] = get_args(CutOff)
DROP: CutOff = "drop"

def cut_off_mode(value: object) -> CutOff:
    """``value`` as a ``CutOff``; anything else is a ValueError naming the choices (no silent ``run``)."""
    if value not in CUT_OFF_MODES:
        raise ValueError(f"cut_off={value!r} is not one of: {', '.join(CUT_OFF_MODES)}")
    return value  # type: ignore[return-value]


CODEACT_STOPS: tuple[StopReason, ...] = ("stop",)
"""The stop reasons of a CodeAct reply that ended normally (the paper's loop accepts only ``stop``)."""
REACT_STOPS: tuple[StopReason, ...] = ("stop", "tool_calls")
"""The same for ReAct, whose replies end in tool calls."""


def open_conversation(state: AgentState, system: str, few_shot: list[Turn]) -> None:
    """Put the system prompt and the few-shot turns before the task statement.

    Done once, before the first reply, so every prompt the model sees still
    begins the final conversation.
    """
    opening: list[ChatMessage] = [ChatMessageSystem(content=system)]
    for turn in few_shot:
        message = ChatMessageUser if turn.role == "user" else ChatMessageAssistant
        opening.append(message(content=turn.content))
    state.messages[:0] = opening


def usage_figures(usage: ModelUsage | None) -> dict[str, int]:
    """A reply's token figures.

    Inspect's ``input_tokens`` leaves out cached prompt tokens, so input adds
    cache reads and writes back; the total is the provider's own total (the
    paper's token ratios are provider totals).
    """
    if usage is None:
        return {}
    cache_read = usage.input_tokens_cache_read or 0
    cache_write = usage.input_tokens_cache_write or 0
    figures = {
        ScoreKey.INPUT_TOKENS: usage.input_tokens + cache_read + cache_write,
        ScoreKey.CACHED_INPUT_TOKENS: cache_read,
        ScoreKey.OUTPUT_TOKENS: usage.output_tokens,
        ScoreKey.REASONING_TOKENS: usage.reasoning_tokens or 0,
        ScoreKey.TOTAL_TOKENS: usage.total_tokens,
    }
    return {str(key): value for key, value in figures.items()}  # StepRecord fields, by the score keys' names


@dataclass
class Reply:
    """A model reply, its step record, and what the loop does next.

    ``record.cut_off``: the reply was dropped (not in ``state.messages``);
    nothing of it runs. ``end_reason``: set when the episode must end after
    this turn.
    """

    output: ModelOutput
    record: StepRecord
    end_reason: EndReason | None


async def next_reply(
    model: Model,
    state: AgentState,
    turn: int,
    tools: Sequence[Tool] = (),
    *,
    normal_stops: Collection[StopReason] = CODEACT_STOPS,
    cut_off: CutOff = DROP,
    last_turn: bool = False,
) -> Reply:
    """Ask the model for its next reply and append it to ``state.messages``.

    A reply whose stop reason is not in ``normal_stops`` is, with
    ``cut_off="drop"``, not appended: a short user message says it ended
    unexpectedly and asks the model to continue (none after the ``last_turn``),
    and the record keeps only its stop reason and billed tokens. What the
    model saw at every turn stays a prefix of the final conversation.

    A provider error that survives Inspect's own retries propagates and errors
    the sample, so ``--retry-on-error``, ``eval_set`` retries and
    ``--fail-on-error`` treat it as Inspect users expect: an outage is not a
    model that fails the task. An overflowing context (stop reason
    ``model_length``) is kept and ends the episode here, as a scored failure.
    """
    output = await model.generate(state.messages, list(tools))
    stop = output.stop_reason
    figures = usage_figures(output.usage)
    billed = figures.get(ScoreKey.TOTAL_TOKENS, 0)
    if cut_off == DROP and stop != "model_length" and stop not in normal_stops:
        if not last_turn:
            state.messages.append(ChatMessageUser(content=prompts.cut_off_notice(stop)))
        record = StepRecord(turn=turn, code=None, stop_reason=stop, cut_off=True, billed_tokens=billed)
        return Reply(output, record, None)
    state.output = output
    state.messages.append(output.message)
    record = StepRecord(turn=turn, code=None, stop_reason=stop, billed_tokens=billed, **figures)
    return Reply(output, record, CONTEXT_LENGTH if stop == "model_length" else None)
