"""One model reply in the turn loop: appended, recorded, and the context overflow that ends an episode."""

from __future__ import annotations

import asyncio

from inspect_ai.agent import AgentState
from inspect_ai.model import ChatMessageUser, ModelOutput, ModelUsage, get_model

from opaque_knapsack.solvers.turns import next_reply


def _output(text: str, stop_reason: str = "stop") -> ModelOutput:
    output = ModelOutput.from_content("mockllm/model", text, stop_reason=stop_reason)
    output.usage = ModelUsage(input_tokens=30, input_tokens_cache_read=10, output_tokens=4, total_tokens=44)
    return output


def test_reply_is_appended_and_recorded_with_its_tokens() -> None:
    model = get_model("mockllm/model", custom_outputs=[_output("hello")])
    state = AgentState(messages=[ChatMessageUser(content="hi")])
    reply = asyncio.run(next_reply(model, state, 3))
    assert reply.end_reason is None
    assert state.messages[-1].text == "hello" and state.output is reply.output
    assert (reply.record.turn, reply.record.code) == (3, None)
    assert (reply.record.input_tokens, reply.record.cached_input_tokens, reply.record.total_tokens) == (40, 10, 44)


def test_context_overflow_ends_the_episode_after_recording_the_turn() -> None:
    model = get_model("mockllm/model", custom_outputs=[_output("cut", stop_reason="model_length")])
    state = AgentState(messages=[ChatMessageUser(content="hi")])
    reply = asyncio.run(next_reply(model, state, 1))
    assert reply.end_reason == "context_length"
    assert reply.record.total_tokens == 44 and state.messages[-1].text == "cut"
