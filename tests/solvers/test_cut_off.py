"""Replies that did not end normally: dropped as the paper's loop drops them, or run with ``cut_off=run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import EvalSample, resolve_sample_attachments
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.tool import ToolCall

from opaque_knapsack.knapsack import knapsack
from opaque_knapsack.records import END_REASON_KEY, STEPS_KEY
from opaque_knapsack.solvers import codeact, react
from opaque_knapsack.solvers.prompts import cut_off_notice

TOTAL = 130  # every reply's provider total


def _reply(text: str, stop_reason: str = "stop", calls: list[ToolCall] | None = None) -> ModelOutput:
    output = ModelOutput.from_content("mockllm/model", text, stop_reason=stop_reason)  # type: ignore[arg-type]
    output.usage = ModelUsage(input_tokens=100, output_tokens=30, total_tokens=TOTAL)
    output.message.tool_calls = calls
    return output


def _run(tmp_path: Path, outputs: list[ModelOutput], **task_args: Any) -> EvalSample:
    [log] = inspect_eval(
        knapsack(num=1, **task_args),
        model=get_model("mockllm/model", custom_outputs=outputs),
        log_dir=str(tmp_path),
        display="none",
    )
    assert log.status == "success", log.error
    [sample] = log.samples
    return sample


def _prompts_seen(sample: EvalSample) -> list[list[tuple[str, str]]]:
    """What the model was given at every call, as the log's model events hold it."""
    events = resolve_sample_attachments(sample).events
    return [[(m.role, m.text) for m in event.input] for event in events if event.event == "model"]


CUT = "I will finish now\n```python\nfinish()\n```"  # would end the episode at once if it ran


@pytest.mark.parametrize("stop_reason", ["max_tokens", "content_filter", "unknown"])
def test_codeact_drops_a_reply_that_did_not_stop_and_spends_the_turn(tmp_path: Path, stop_reason: str) -> None:
    outputs = [
        _reply(CUT, stop_reason),
        _reply("```python\nimport json\nids = json.loads(list_items())\n```"),
        _reply("```python\nfinish()\n```"),
    ]
    sample = _run(tmp_path, outputs, runtime="persistent")
    texts = [m.text for m in sample.messages]
    assert CUT not in texts  # never kept ...
    assert sample.store[END_REASON_KEY] == "finished"
    steps = sample.store[STEPS_KEY]
    assert len(steps) == 3  # ... never run (its finish() would have ended turn 1), and the turn is spent
    assert texts[2] == cut_off_notice(stop_reason)
    assert [m.role for m in sample.messages] == ["system", "user", "user", "assistant", "user", "assistant"]
    assert [(s["stop_reason"], s["cut_off"], s["code"] is None) for s in steps] == [
        (stop_reason, True, True), ("stop", False, False), ("stop", False, False)
    ]
    assert [(s["total_tokens"], s["input_tokens"], s["billed_tokens"]) for s in steps][0] == (0, 0, TOTAL)
    figures = sample.scores["knapsack_scorer"].value
    assert figures["cut_off_replies"] == 1
    assert figures["total_tokens"] == 2 * TOTAL and figures["billed_tokens"] == 3 * TOTAL
    assert figures["steps"] == 3
    final = [(m.role, m.text) for m in sample.messages]
    for prompt in _prompts_seen(sample):  # what the model saw at every turn begins the final conversation
        assert final[: len(prompt)] == prompt


def test_cut_off_run_keeps_the_old_behaviour(tmp_path: Path) -> None:
    sample = _run(tmp_path, [_reply(CUT, "max_tokens"), _reply("never asked")], cut_off="run")
    assert sample.messages[-1].text == CUT
    [step] = sample.store[STEPS_KEY]
    assert (step["stop_reason"], step["cut_off"], step["code"]) == ("max_tokens", False, "finish()\n")
    figures = sample.scores["knapsack_scorer"].value
    assert figures["cut_off_replies"] == 0 and figures["total_tokens"] == figures["billed_tokens"] == TOTAL


def test_a_cut_off_last_turn_adds_no_notice(tmp_path: Path) -> None:
    outputs = [_reply("```python\nx = 1\n```"), _reply(CUT, "max_tokens")]
    sample = _run(tmp_path, outputs, max_turns=2)
    assert sample.store[END_REASON_KEY] == "turn_limit"
    assert [m.role for m in sample.messages] == ["system", "user", "assistant", "user"]
    assert sample.messages[-1].text.startswith("Observation:")


def test_react_drops_a_reply_whose_stop_reason_is_neither_stop_nor_tool_calls(tmp_path: Path) -> None:
    finish = [ToolCall(id="f1", function="finish", arguments={})]
    outputs = [
        _reply("cut", "max_tokens", calls=finish),
        _reply("listing", "tool_calls", calls=[ToolCall(id="l1", function="list_items", arguments={})]),
        _reply("done", "tool_calls", calls=[ToolCall(id="f2", function="finish", arguments={})]),
    ]
    sample = _run(tmp_path, outputs, agent="react")
    assert sample.store[END_REASON_KEY] == "finished"
    assert [m.role for m in sample.messages] == ["system", "user", "user", "assistant", "tool", "assistant", "tool"]
    assert sample.messages[2].text == cut_off_notice("max_tokens")
    steps = sample.store[STEPS_KEY]
    assert [(s["cut_off"], s["tool_calls"]) for s in steps] == [(True, 0), (False, 1), (False, 1)]
    assert sample.scores["knapsack_scorer"].value["cut_off_replies"] == 1


def test_a_bad_cut_off_option_is_one_line() -> None:
    from opaque_knapsack.task_options import TaskOptionError

    with pytest.raises(TaskOptionError, match=r"-T cut_off='keep' is not one of: drop, run"):
        knapsack(cut_off="keep")  # type: ignore[arg-type]
    for agent in (codeact, react):
        with pytest.raises(ValueError, match=r"cut_off='keep' is not one of: drop, run"):
            agent(cut_off="keep")  # type: ignore[arg-type]
