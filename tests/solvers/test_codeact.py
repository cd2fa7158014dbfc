"""The CodeAct agent on its own: code extraction, step bookkeeping, and host functions users bring."""

from __future__ import annotations

from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from opaque_knapsack.records import (
    AGENT_KEY,
    END_REASON_KEY,
    PERSISTENT,
    RUNTIME_KEY,
    SEMANTICS,
    STATELESS,
    STEPS_KEY,
    StepRecord,
)
from opaque_knapsack.sandboxes import StepResult, ToolCallRecord
from opaque_knapsack.solvers.codeact import _bound_at_start, codeact, extract_code_blocks, mentioned, record_step

DOCS = "Tools: bump() -> int adds one to the counter and returns it; finish() ends the episode."


def test_only_python_fences_are_code() -> None:
    text = "plan\n```python\na = 1\n```\n```bash\nls\n```\n```py\nb = 2\n```\n```\nc = 3\n```"
    assert extract_code_blocks(text) == ["a = 1\n", "b = 2\n"]
    assert extract_code_blocks("no code") == []


def test_step_bookkeeping_helpers() -> None:
    refused = ToolCallRecord(name="inspect", limit=True, error="at most 1 tool calls per code block")
    failed = ToolCallRecord(name="inspect", error="tool call limit reached: the host function's own words")
    ran = ToolCallRecord(name="inspect")
    result = StepResult(tool_calls=[ran, failed, refused], bound_at_start=["price", "cost"])
    record = record_step(StepRecord(turn=1, code=""), "total = price * 2", result, ["price", "cost"])
    assert record.tool_calls == 2  # the runtime's flag decides, never the wording
    assert record.bound_at_start == ["price"] and record.code == "total = price * 2"
    assert not ToolCallRecord.model_validate({"name": "inspect", "error": "x"}).limit  # old logs load
    assert mentioned("total = price * 2", ["price", "cost", "total"]) == ["price", "total"]
    reported = StepResult(bound_at_start=["a"])
    died = StepResult(bound_at_start=None)
    assert _bound_at_start(reported, SEMANTICS[PERSISTENT], ["x"]) == ["a"]
    assert _bound_at_start(died, SEMANTICS[PERSISTENT], ["x"]) == ["x"]  # the last step's globals: the best knowledge
    assert _bound_at_start(died, SEMANTICS[STATELESS], ["x"]) == []


def _model(*texts: str):
    outputs = []
    for text in texts:
        output = ModelOutput.from_content("mockllm/model", text)
        output.usage = ModelUsage(input_tokens=20, output_tokens=5, total_tokens=25)
        outputs.append(output)
    return get_model("mockllm/model", custom_outputs=outputs)


def test_host_functions_get_steps_recorded_and_finish_ends_the_loop(tmp_path) -> None:
    bumps: list[int] = []

    def bump() -> int:
        bumps.append(1)
        return len(bumps)

    task = Task(
        dataset=[Sample(input="Bump the counter twice, then finish.")],
        solver=codeact(host_functions={"bump": bump}, tool_docs=DOCS, instructions="Count with Python."),
        sandbox="stateless_python",
    )
    replies = ("```python\nbump()\nprint(bump())\n```", "```python\nfinish()\n```", "```python\nbump()\n```")
    [log] = inspect_eval(task, model=_model(*replies), log_dir=str(tmp_path), display="none")
    assert log.status == "success", log.error
    [sample] = log.samples
    assert bumps == [1, 1]  # the third reply was never asked for: finish() ended the episode
    assert [m.role for m in sample.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert "Observation:\n2" in sample.messages[3].text
    system = sample.messages[0].text
    assert system.startswith("Count with Python.") and DOCS in system and "knapsack" not in system.lower()
    assert sample.store[END_REASON_KEY] == "finished"
    assert sample.store[AGENT_KEY] == "codeact" and sample.store[RUNTIME_KEY] == "stateless"
    steps = sample.store[STEPS_KEY]
    assert [(s["turn"], s["tool_calls"], s["total_tokens"]) for s in steps] == [(1, 2, 25), (2, 1, 25)]


def _hello_sample(tmp_path, sandbox: str, *replies: str):
    """One sample of a two-turn CodeAct run with a ``hello()`` host function and no finish()."""
    task = Task(
        dataset=[Sample(input="Say hi.")],
        solver=codeact(max_turns=2, host_functions={"hello": lambda: "hi"}, tool_docs="hello() -> str"),
        sandbox=sandbox,
    )
    [log] = inspect_eval(task, model=_model(*replies), log_dir=str(tmp_path), display="none")
    [sample] = log.samples
    return sample


def test_host_functions_without_finish_run_to_the_turn_limit(tmp_path) -> None:
    sample = _hello_sample(tmp_path, "persistent_python", "```python\nx = hello()\n```", "```python\nprint(x)\n```")
    assert sample.store[END_REASON_KEY] == "turn_limit"
    steps = sample.store[STEPS_KEY]
    assert steps[1]["bound_at_start"] == ["x"] and not steps[1]["is_name_error"]


def test_a_name_error_is_recorded_with_the_name_the_runtime_reported(tmp_path) -> None:
    replies = ("```python\ngreeting = hello()\n```", "```python\nprint(greeting)\n```")
    sample = _hello_sample(tmp_path, "stateless_python", *replies)
    steps = sample.store[STEPS_KEY]
    assert [(s["is_name_error"], s["undefined_name"]) for s in steps] == [(False, None), (True, "greeting")]


def test_a_kernel_restart_is_announced_once(tmp_path) -> None:
    task = Task(
        dataset=[Sample(input="Crash the interpreter.")],
        solver=codeact(max_turns=4, host_functions={"hello": lambda: "hi"}, tool_docs="hello() -> str"),
        sandbox="persistent_python",
    )
    replies = ("```python\nx = 1\n```", "```python\nimport os\nos._exit(3)\n```", "```python\nprint(x)\n```", "ok")
    [log] = inspect_eval(task, model=_model(*replies), log_dir=str(tmp_path), display="none")
    [sample] = log.samples
    observations = [m.text for m in sample.messages if m.role == "user"][1:]
    assert [o.lower().count("restart") for o in observations] == [0, 1, 0]
    assert "NameError" in observations[2]
    assert [s["kernel_restarted"] for s in sample.store[STEPS_KEY]] == [False, True, False, False]
    logged = [e.data for e in sample.events if e.event == "info" and isinstance(e.data, dict)]
    assert [d["kernel_restarted"] for d in logged] == [False, True, False]
