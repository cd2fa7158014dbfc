"""A host function's error text is bounded like the call's arguments: per call, per step, per episode.

The agent's code chooses the arguments, and a host function's message may quote
them, so error text is as untrusted in size as the arguments are.
"""

from __future__ import annotations

import json
import logging

import pytest

from opaque_knapsack.sandboxes import kernel as kernel_module
from opaque_knapsack.sandboxes import step_channel

SEMANTICS = ["persistent", "stateless"]

# 1 MB of UTF-8 in one argument: as large as one frame from the kernel may be.
_ONE_MB_ARGUMENT = "arg = 'é' * 499_000"

_QUOTING = f"""
{_ONE_MB_ARGUMENT}
for i in range(3):
    try:
        echo(arg + str(i))
    except ToolError as e:
        err = e
        print(len(str(e)), str(e)[-60:])
raise ToolError(str(err))
"""


def _echo(value: str) -> str:
    raise ValueError(f"no such thing as {value!r}")  # quotes its whole argument


def _bound_chars() -> int:
    marker = step_channel.bound_error("x" * (step_channel._MAX_ERROR_CHARS + 1_000_000))
    return len(marker)


@pytest.mark.parametrize("semantics", SEMANTICS)
async def test_a_long_error_is_cut_in_the_reply_the_record_and_the_step(make_kernel, semantics: str) -> None:
    kernel = await make_kernel(semantics)
    result = await kernel.run_code(_QUOTING, {"echo": _echo})
    bound = _bound_chars()
    # The code saw each message cut, with the marker that says how much was cut.
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    for line in lines:
        length, tail = line.split(" ", 1)
        assert int(length) <= bound and "error text cut" in tail and "more characters]" in tail
    # The record keeps what the code saw, within the per-call bound (16 KiB of UTF-8).
    assert len(result.tool_calls) == 3
    for record in result.tool_calls:
        assert record.error is not None and len(record.error) <= bound
        assert len(record.error.encode()) <= step_channel._MAX_RECORD_BYTES + 100
        assert record.args_truncated  # the 1 MB argument itself: the head of its JSON text
    assert len(json.dumps([r.model_dump() for r in result.tool_calls], ensure_ascii=False).encode()) < 3 * (step_channel._MAX_RECORD_BYTES + 1024)
    # The step's own error (the code re-raised the message) is within the output bound.
    assert result.error is not None and result.error.type == "ToolError"
    assert len(result.error.message) <= bound and len(result.error.traceback) <= kernel.config.max_output_chars + 300


async def test_short_errors_are_kept_whole(make_kernel) -> None:
    kernel = await make_kernel("persistent")
    result = await kernel.run_code("try:\n    echo('x' * 300)\nexcept ToolError as e:\n    print(str(e))", {"echo": _echo})
    expected = f"no such thing as {'x' * 300!r}"
    assert result.stdout == expected + "\n"
    assert [r.error for r in result.tool_calls] == [expected]


async def test_error_text_counts_against_the_step_and_episode_bounds(
    make_kernel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(step_channel, "_EPISODE_RECORD_BYTES", 60_000)
    kernel = await make_kernel("stateless")  # the budget carries over from step to step in either runtime
    code = "for i in range(4):\n    try:\n        echo('y' * 3_000)\n    except ToolError as e:\n        print(len(str(e)))"
    with caplog.at_level(logging.WARNING, logger=kernel_module.logger.name):
        steps = [await kernel.run_code(code, {"echo": _echo}) for _ in range(3)]
    errors = [len(r.error or "") for result in steps for r in result.tool_calls]
    assert len(errors) == 12  # every executed call keeps its record
    assert errors[:4] == [3_019] * 4  # the first step's fit: kept whole
    assert errors[-1] < 400 and errors.count(3_019) < 10  # past the episode's budget: the head and the marker
    assert all(r.stdout == "3019\n" * 4 for r in steps)  # the code always saw the whole message
    spent = sum(len((r.error or "").encode()) + len(json.dumps(r.args)) for result in steps for r in result.tool_calls)
    assert spent < 60_000 + 4 * 1024
    assert "error text" in caplog.text


async def test_the_step_bound_cuts_error_text_within_one_step(make_kernel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step_channel, "_STEP_RECORD_BYTES", 40_000)
    kernel = await make_kernel("persistent")
    code = "for i in range(8):\n    try:\n        echo('z' * 3_000)\n    except ToolError:\n        pass"
    first, second = [await kernel.run_code(code, {"echo": _echo}) for _ in range(2)]
    for result in (first, second):  # the step's budget starts afresh at each step
        sizes = [len(r.error or "") for r in result.tool_calls]
        assert len(sizes) == 8 and sizes[0] == 3_019 and sizes[-1] < 400
        assert sum(len((r.error or "").encode()) for r in result.tool_calls) < 40_000
