"""A tool's error text is bounded end to end: in the reply to the kernel, the call record, the
observation and the log, by the same per-call, per-step and per-episode budgets as the arguments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from opaque_knapsack.knapsack import PRESETS, KnapsackEnvironment, KnapsackToolError, generate_instance, knapsack
from opaque_knapsack.records import RUNTIMES
from opaque_knapsack.sandboxes import step_channel
from opaque_knapsack.sandboxes.registry import REGISTRY

BIG = "é" * 400_000  # 800 kB of a two-byte character, just under the kernel's 1 MiB message limit


def _quoting(value: object) -> str:
    raise ValueError(f"cannot use {value!r}: it is not an item")  # a host function that quotes its argument whole


@pytest.mark.parametrize("semantics", RUNTIMES)
async def test_a_host_error_quoting_a_huge_argument_is_cut_everywhere(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    code = (
        "big = 'é' * 400_000\n"
        "for _ in range(3):\n"
        "    try:\n"
        "        take(big)\n"
        "    except ToolError as e:\n"
        "        print(len(str(e)))\n"
        "take(big)\n"
    )
    result = await kernel.run_code(code, {"take": _quoting})
    shown = [int(line) for line in result.stdout.split()]
    assert len(shown) == 3 and max(shown) <= step_channel._MAX_ERROR_CHARS  # what the step's code was given
    assert result.error is not None and result.error.type == "ToolError"
    assert len(result.error.message) <= step_channel._MAX_ERROR_CHARS
    assert "characters cut" in result.error.message and result.error.message.startswith("cannot use 'éé")
    assert len(result.tool_calls) == 4
    assert all(len(r.error or "") <= step_channel._MAX_ERROR_CHARS for r in result.tool_calls)
    held = sum(len(r.error or "") + len(str(r.args)) for r in result.tool_calls)
    assert held <= 4 * (step_channel._MAX_ERROR_CHARS + step_channel._ARGS_SAMPLE_CHARS)


async def test_error_text_counts_against_the_episode_record_budget(make_kernel, monkeypatch) -> None:
    monkeypatch.setattr(REGISTRY.tunables, "episode_record_bytes", 20_000)
    kernel = await make_kernel("persistent")
    code = "for i in range(5):\n    try:\n        take('x' * 1500)\n    except ToolError:\n        pass\n"
    results = [await kernel.run_code(code, {"take": _quoting}) for _ in range(3)]
    records = [r for result in results for r in result.tool_calls]
    assert len(records) == 15  # every executed call keeps a record ...
    assert not records[0].args_truncated and len(records[0].error or "") > 1500
    # ... but once the episode's budget is spent, arguments and error text are cut to a sample
    assert records[-1].args_truncated and len(records[-1].error or "") <= step_channel._ARGS_SAMPLE_CHARS
    kept = sum(len(r.error or "") + len(str(r.args)) for r in records)
    assert kept <= 20_000 + 15 * 2 * step_channel._ARGS_SAMPLE_CHARS


@pytest.mark.parametrize("tool", ["inspect", "take_item"])
def test_knapsack_tool_errors_quote_a_bounded_head(tool: str) -> None:
    environment = KnapsackEnvironment(generate_instance(PRESETS["easy"], 3, 3))
    with pytest.raises(KnapsackToolError) as small:
        getattr(environment, tool)("item_0123456789ab")
    assert "'item_0123456789ab'" in str(small.value)  # a short id is quoted whole
    with pytest.raises(KnapsackToolError) as huge:
        getattr(environment, tool)(BIG)
    assert len(str(huge.value)) < 200 and "'éé" in str(huge.value) and "400,002 characters" in str(huge.value)


def _reply(text: str) -> ModelOutput:
    output = ModelOutput.from_content("mockllm/model", text)
    output.usage = ModelUsage(input_tokens=10, output_tokens=10, total_tokens=20)
    return output


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_an_episode_of_huge_bad_ids_keeps_a_small_log(tmp_path: Path, runtime: str) -> None:
    flood = (
        "```python\nbig = 'é' * 400_000\nfor _ in range(8):\n    try:\n        take_item(big)\n"
        "    except ToolError as e:\n        print(str(e)[:80])\ntake_item(big)\n```"
    )
    outputs = [_reply(flood) for _ in range(3)] + [_reply("```python\nfinish()\n```")]
    [log] = inspect_eval(
        knapsack(num=1, runtime=runtime, max_tool_calls=25),
        model=get_model("mockllm/model", custom_outputs=outputs),
        log_dir=str(tmp_path),
        display="none",
    )
    assert log.status == "success", log.error
    [sample] = log.samples
    observations = [m.text for m in sample.messages if m.role == "user"][1:]
    assert len(observations) == 3 and all(len(o) < 20_000 for o in observations)
    assert "characters)" in observations[0]  # the tool's message names the length instead of quoting it
    [path] = [p for p in tmp_path.iterdir() if p.suffix == ".eval"]
    assert os.path.getsize(path) < 200_000  # a log of 3 MB steps would be megabytes
