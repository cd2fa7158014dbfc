"""The ReAct baseline's own rules: a reply without tool calls, and the per-reply tool-call limit."""

from __future__ import annotations

from inspect_ai import eval as inspect_eval
from inspect_ai.model import ChatMessageTool, ModelOutput, ModelUsage, get_model
from inspect_ai.tool import ToolCall

from opaque_knapsack.knapsack import knapsack
from opaque_knapsack.records import END_REASON_KEY, STEPS_KEY
from opaque_knapsack.solvers.react import NO_TOOL_CALL


def _reply(*calls: tuple[str, dict[str, str]]) -> ModelOutput:
    output = ModelOutput.from_content("mockllm/model", "thinking")
    output.usage = ModelUsage(input_tokens=10, output_tokens=2, total_tokens=12)
    if calls:
        output.message.tool_calls = [
            ToolCall(id=f"c{index}", function=name, arguments=arguments)
            for index, (name, arguments) in enumerate(calls)
        ]
    return output


def test_no_tool_call_is_nudged_and_calls_over_the_limit_are_refused(tmp_path) -> None:
    outputs = [
        _reply(),
        _reply(("list_items", {}), ("list_items", {}), ("finish", {})),
        _reply(("finish", {})),
    ]
    [log] = inspect_eval(
        knapsack(num=1, agent="react", max_tool_calls=2),
        model=get_model("mockllm/model", custom_outputs=outputs),
        log_dir=str(tmp_path),
        display="none",
    )
    assert log.status == "success", log.error
    [sample] = log.samples
    assert sample.messages[3].text == NO_TOOL_CALL
    results = [m for m in sample.messages if isinstance(m, ChatMessageTool)]
    # the third call of turn 2 (finish) was over the limit: refused, never run, so the episode went on
    assert [r.function for r in results] == ["list_items", "list_items", "finish", "finish"]
    assert results[2].error is not None and results[2].error.type == "limit"
    assert results[3].error is None
    assert [step["tool_calls"] for step in sample.store[STEPS_KEY]] == [0, 2, 1]
    assert sample.store[END_REASON_KEY] == "finished"
