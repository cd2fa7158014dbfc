"""A refused call's error text stays bounded from the tool to the log, whatever the argument.

The knapsack tools name the id they refuse; an agent can pass an id of 1 MB.
Neither the record, the step's error, the observation nor the log may grow
with it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ChatMessageTool, ChatMessageUser, ModelOutput, ModelUsage, get_model
from inspect_ai.tool import ToolCall

from opaque_knapsack.inspect_tasks import knapsack

_ATTACK = """```python
for i in range(5):
    try:
        inspect('é' * 499_000 + str(i))  # 1 MB of UTF-8, a new id each time
    except ToolError as e:
        err = e
print(str(err))
raise err
```"""
_PLAIN = "```python\nprint(list_items())\n```"


def _reply(text: str) -> ModelOutput:
    output = ModelOutput.from_content("mockllm/model", text)
    output.usage = ModelUsage(input_tokens=10, output_tokens=10, total_tokens=20)
    return output


def _run(tmp_path: Path, runtime: str, code: str):
    replies = [_reply(code), _reply(code), _reply("```python\nfinish()\n```")]
    [log] = inspect_eval(
        knapsack(num=1, runtime=runtime, max_turns=3),
        model=get_model("mockllm/model", custom_outputs=replies),
        log_dir=str(tmp_path),
        display="none",
    )
    assert log.status == "success", log.error
    [path] = tmp_path.glob("*.eval")
    with zipfile.ZipFile(path) as archive:
        logged = sum(entry.file_size for entry in archive.infolist())
    return log.samples[0], logged


def _resolved(sample, text: str | None) -> str:
    text = text or ""
    prefix = "attachment://"
    return sample.attachments.get(text[len(prefix):], text) if text.startswith(prefix) else text


@pytest.mark.parametrize("runtime", ["persistent", "stateless"])
def test_a_one_megabyte_id_leaves_every_error_text_short(tmp_path: Path, runtime: str) -> None:
    sample, logged = _run(tmp_path / "attack", runtime, _ATTACK)
    _, plain_logged = _run(tmp_path / "plain", runtime, _PLAIN)
    steps = [e.data for e in sample.events if e.event == "info" and isinstance(e.data, dict) and "tool_calls" in e.data]
    assert len(steps) == 3
    for step in steps[:2]:
        records = step["tool_calls"]
        assert len(records) == 5
        for record in records:  # the record: the id's head and its length, not the id
            error = _resolved(sample, record["error"])
            assert error.startswith("Unknown item id 'ééé") and "(499,001 characters)" in error
            assert len(error) < 200
        assert len(_resolved(sample, step["error"])) < 1_000  # the step's error: the re-raised message
    observations = [m.text for m in sample.messages if isinstance(m, ChatMessageUser)][1:]
    assert len(observations) == 2 and all(len(text) < 1_000 for text in observations)
    assert "(499,001 characters)" in observations[0]
    # The log (uncompressed) grows by what the records hold, not by the arguments: before the
    # bound it held ~1 MB of error text per call.
    assert logged < plain_logged + 50_000, (logged, plain_logged)


def test_react_names_a_long_id_in_a_short_error(tmp_path: Path) -> None:
    output = _reply("calling a tool")
    output.message.tool_calls = [ToolCall(id="c0", function="inspect", arguments={"item_id": "é" * 500_000})]
    [log] = inspect_eval(
        knapsack(num=1, agent="react", max_turns=1),
        model=get_model("mockllm/model", custom_outputs=[output]),
        log_dir=str(tmp_path),
        display="none",
    )
    assert log.status == "success", log.error
    [result] = [m for m in log.samples[0].messages if isinstance(m, ChatMessageTool)]
    assert result.error is not None and len(result.error.message) < 200
    assert "(500,000 characters)" in result.error.message
