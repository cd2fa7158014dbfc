"""One model reply in an agent's turn loop, shared by the CodeAct and ReAct agents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inspect_ai.agent import AgentState
from inspect_ai.model import Model, ModelOutput, ModelUsage
from inspect_ai.tool import Tool

from opaque_knapsack.records import CONTEXT_LENGTH, EndReason, ScoreKey, StepRecord


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
    """A model reply appended to the conversation, its step record, and whether the episode ends."""

    output: ModelOutput
    record: StepRecord
    end_reason: EndReason | None  # set when the episode must end after this turn


async def next_reply(model: Model, state: AgentState, turn: int, tools: Sequence[Tool] = ()) -> Reply:
    """Ask the model for its next reply and append it to ``state.messages``.

    A provider error that survives Inspect's own retries propagates and errors
    the sample, so ``--retry-on-error``, ``eval_set`` retries and
    ``--fail-on-error`` treat it as Inspect users expect: an outage is not a
    model that fails the task. Only an overflowing context (stop reason
    ``model_length``) ends the episode here, as a scored failure.
    """
    output = await model.generate(state.messages, list(tools))
    state.output = output
    state.messages.append(output.message)
    record = StepRecord(turn=turn, code=None, **usage_figures(output.usage))
    return Reply(output, record, CONTEXT_LENGTH if output.stop_reason == "model_length" else None)
