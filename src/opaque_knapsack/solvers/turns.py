"""One model reply in an agent's turn loop, shared by the CodeAct and ReAct agents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inspect_ai.agent import AgentState
from inspect_ai.model import Model, ModelOutput
from inspect_ai.tool import Tool

from opaque_knapsack.records import StepRecord


@dataclass
class Reply:
    """A model reply appended to the conversation, or why there is none."""

    output: ModelOutput | None
    record: StepRecord | None
    end_reason: str | None  # set when the episode must end after this turn


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
    usage = output.usage
    record = StepRecord(
        turn=turn,
        code=None,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
    )
    return Reply(output, record, "context_length" if output.stop_reason == "model_length" else None)
