"""The episode limits: written once, set in the sandbox config or with -T, and obeyed by the kernel."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ChatMessageSystem

from opaque_knapsack.knapsack import knapsack
from opaque_knapsack.knapsack.runtime_handle import knapsack_runtime
from opaque_knapsack.limits import PAPER_LIMITS, EpisodeLimits
from opaque_knapsack.sandboxes import RuntimeConfig
from opaque_knapsack.solvers import codeact, react

from .test_end_to_end import mock_model

THREE_CALLS = "```python\nimport json\nids = json.loads(list_items())\nfor i in ids[:2]:\n    inspect(i)\n```"
SLEEP = "```python\nimport time\ntime.sleep({seconds})\nprint('woke')\n```"


def _system_prompt(sample) -> str:  # type: ignore[no-untyped-def]
    """The system prompt, its line breaks read as spaces."""
    return " ".join(next(m.text for m in sample.messages if isinstance(m, ChatMessageSystem)).split())


def _run(tmp_path: Path, sleep: float, runtime: str = "persistent", **options: object):
    config = tmp_path / "runtime.yaml"
    config.write_text("step_timeout: 1\nmax_tool_calls: 2\n", encoding="utf-8")
    [log] = inspect_eval(
        knapsack(num=1, max_turns=2, runtime=runtime, **options),  # type: ignore[arg-type]
        model=mock_model(THREE_CALLS, SLEEP.format(seconds=sleep)),
        sandbox=(f"{runtime}_python", str(config)),
        log_dir=str(tmp_path / "logs"),
    )
    assert log.status == "success", log.error
    [sample] = log.samples or []
    return sample.scores["knapsack_scorer"].value, _system_prompt(sample)  # type: ignore[index,union-attr]


@pytest.mark.parametrize("runtime", ["persistent", "stateless"])
def test_limits_in_the_sandbox_config_reach_the_kernel_and_the_prompt(tmp_path: Path, runtime: str) -> None:
    figures, system = _run(tmp_path, sleep=30, runtime=runtime)
    assert figures["tool_calls"] == 2  # list_items and one inspect ran; the third call was refused
    assert figures["step_timeouts"] == 1  # the 1 s limit, not the paper's 30 s
    assert "At most 2 tool calls run per block" in system


def test_task_options_override_the_sandbox_config(tmp_path: Path) -> None:
    figures, system = _run(tmp_path, sleep=1.5, step_timeout=20, max_tool_calls=5)
    assert figures["tool_calls"] == 3 and figures["step_timeouts"] == 0
    assert "At most 5 tool calls run per block" in system


def test_without_a_config_or_options_the_paper_limits_hold(tmp_path: Path) -> None:
    [log] = inspect_eval(knapsack(num=1), model=mock_model("```python\nfinish()\n```"), log_dir=str(tmp_path))
    [sample] = log.samples or []
    system = _system_prompt(sample)
    assert f"At most {PAPER_LIMITS.max_tool_calls} tool calls run per block" in system
    assert f"you have {PAPER_LIMITS.max_turns} replies" in system


def test_every_default_is_the_one_model() -> None:
    # nothing re-types a default: the agents, the task and the runtime handle take None ("not set")
    for function in (knapsack, codeact, react, knapsack_runtime):
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(function).parameters.items()
            if name in EpisodeLimits.model_fields
        }
        assert defaults and set(defaults.values()) == {None}, function
    config = RuntimeConfig()
    assert (config.step_timeout, config.max_tool_calls) == (PAPER_LIMITS.step_timeout, PAPER_LIMITS.max_tool_calls)
    assert config.limits() == PAPER_LIMITS


def test_limits_are_frozen_and_updated_only_by_what_is_set() -> None:
    limits = PAPER_LIMITS.updated(max_turns=None, step_timeout=5)
    assert limits.step_timeout == 5 and limits.max_turns == PAPER_LIMITS.max_turns
    with pytest.raises(ValueError):
        PAPER_LIMITS.updated(max_turns=0)
    with pytest.raises(ValueError):
        limits.max_turns = 3  # type: ignore[misc]
