"""What the model reads: the paper's runtime notes, ReAct's own text, and a researcher's prompts file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.log import EvalSample, resolve_sample_attachments
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from inspect_ai.tool import ToolCall

from opaque_knapsack.knapsack import PRESETS, generate_instance, knapsack
from opaque_knapsack.knapsack.family import KNAPSACK
from opaque_knapsack.knapsack.prompts import knapsack_tool_docs, strict_take_clause
from opaque_knapsack.solvers import codeact, prompts
from opaque_knapsack.solvers.prompts import Prompts, PromptsError, load_prompts
from opaque_knapsack.task_options import TaskOptionError


def test_the_runtime_notes_carry_the_papers_instructions_and_no_other_advice() -> None:
    persistent, stateless = prompts.RUNTIME_NOTES["persistent"], prompts.RUNTIME_NOTES["stateless"]
    assert "Do not import a module again" in persistent
    assert "do not paste code from earlier steps" in persistent
    assert "reusable helper functions" in persistent
    assert "Build on" not in persistent
    assert stateless.endswith("nothing your code defines (variables, functions, classes, imports) survives to the next step.")
    for advice in ("literal", "copied", "print whatever", "re-create"):
        assert advice not in stateless
    docs = knapsack_tool_docs(strict_take=True)
    assert "```python\nimport json\n" in docs  # the paper's tool docs show the import in their examples


def test_react_has_its_own_text() -> None:
    strict = prompts.react_system_prompt(
        family=KNAPSACK, values={"strict_take_clause": strict_take_clause(True)}, max_tool_calls=7, max_turns=12
    )
    lax = prompts.react_system_prompt(
        family=KNAPSACK, values={"strict_take_clause": strict_take_clause(False)}, max_tool_calls=7, max_turns=12
    )
    assert "function calling" in strict and "returns an error" in strict
    for codeact_word in ("interpreter", "ToolError", "Python block", "writing Python code"):
        assert codeact_word not in strict
    assert "not been inspected first" in strict and "not been inspected first" not in lax
    assert "At most 7 tool calls run per reply" in strict and "you have 12 replies" in strict
    assert not hasattr(prompts, "tool_docs")  # the older alias is gone


def test_placeholders_are_filled_and_other_braces_stay() -> None:
    text = prompts.fill('{a} {"class": str} {b} {unknown} {{x}}', {"a": 1, "b": "two"})
    assert text == '1 {"class": str} two {unknown} {{x}}'


CODEACT_FILE = {
    "codeact_system": 'SYSTEM <{instructions}> NOTE <{runtime_note}> TOOLS <{tool_docs}> {max_tool_calls}/{max_turns}',
    "codeact_instructions": "Pack the knapsack, the paper's way.",
    "runtime_notes": {"persistent": "State persists. Keep {braces} as written."},
    "codeact_tool_docs": 'list_items() and friends; inspect gives {"class": ..., "value": ...}{strict_take_clause}',
    "task_statement": "Items: {n_items}; capacity {capacity}; budget {inspect_budget}; classes [{class_names}]",
    "few_shot": {
        "persistent": [
            {"role": "user", "content": "Example task: list the items."},
            {"role": "assistant", "content": "```python\nimport json\nids = json.loads(list_items())\n```"},
        ],
        "stateless": [{"role": "user", "content": "never shown in the persistent runtime"}],
    },
}


def _reply(text: str, calls: list[ToolCall] | None = None) -> ModelOutput:
    output = ModelOutput.from_content("mockllm/model", text, stop_reason="tool_calls" if calls else "stop")
    output.usage = ModelUsage(input_tokens=10, output_tokens=2, total_tokens=12)
    output.message.tool_calls = calls
    return output


def _first_prompt(sample: EvalSample) -> list[tuple[str, str]]:
    """The messages of the first model call, as the log's model event holds them."""
    event = next(e for e in resolve_sample_attachments(sample).events if e.event == "model")
    return [(message.role, message.text) for message in event.input]


def _instance_facts() -> tuple[int, int, int, str]:
    instance = generate_instance(PRESETS["easy"], 0, 0)
    public = instance.public
    return len(public.item_ids), public.capacity, public.inspect_budget, ", ".join(instance.class_names())


def test_a_prompts_file_reaches_the_codeact_model_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "prompts.yaml"
    path.write_text(yaml.safe_dump(CODEACT_FILE))
    [log] = inspect_eval(
        knapsack(num=1, runtime="persistent", max_tool_calls=9, max_turns=3, prompts=str(path)),
        model=get_model("mockllm/model", custom_outputs=[_reply("```python\nfinish()\n```")]),
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    n_items, capacity, budget, classes = _instance_facts()
    docs = 'list_items() and friends; inspect gives {"class": ..., "value": ...}, or it has not been inspected first'
    assert _first_prompt(log.samples[0]) == [
        ("system", f"SYSTEM <Pack the knapsack, the paper's way.> NOTE <State persists. Keep {{braces}} as written.> "
                   f"TOOLS <{docs}> 9/3"),
        ("user", "Example task: list the items."),
        ("assistant", "```python\nimport json\nids = json.loads(list_items())\n```"),
        ("user", f"Items: {n_items}; capacity {capacity}; budget {budget}; classes [{classes}]"),
    ]  # fmt: skip


def test_a_prompts_file_reaches_the_react_model_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps({
        "react_system": "REACT {instructions} | {tool_docs} | {max_tool_calls} calls, {max_turns} replies",
        "react_instructions": "Fill the knapsack with tool calls.",
        "react_tool_docs": "finish() ends it{strict_take_clause}.",
        "few_shot": {"react": [{"role": "user", "content": "A worked example."}, {"role": "assistant", "content": "ok"}]},
    }))  # fmt: skip
    finish = [ToolCall(id="f", function="finish", arguments={})]
    [log] = inspect_eval(
        knapsack(num=1, agent="react", strict_take=False, max_turns=5, prompts=str(path)),
        model=get_model("mockllm/model", custom_outputs=[_reply("done", finish)]),
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    assert log.status == "success", log.error
    prompt = _first_prompt(log.samples[0])
    assert prompt[:3] == [
        ("system", "REACT Fill the knapsack with tool calls. | finish() ends it. | 25 calls, 5 replies"),
        ("user", "A worked example."),
        ("assistant", "ok"),
    ]
    assert prompt[3][1].startswith("New knapsack instance.")  # the file left the task statement as it was


def test_codeact_takes_a_prompts_model_from_python(tmp_path: Path) -> None:
    few_shot = {"stateless": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}
    custom = Prompts(runtime_notes={"stateless": "Nothing survives a step."}, few_shot=few_shot)  # type: ignore[arg-type]
    task = Task(
        dataset=[Sample(input="Say hi.")],
        solver=codeact(host_functions={"hello": lambda: "hi"}, tool_docs="hello() -> str", prompts=custom),
        sandbox="stateless_python",
    )
    [log] = inspect_eval(
        task, model=get_model("mockllm/model", custom_outputs=[_reply("```python\nfinish()\n```")]),
        log_dir=str(tmp_path), display="none",
    )  # fmt: skip
    assert log.status == "success", log.error
    prompt = _first_prompt(log.samples[0])
    assert "Nothing survives a step." in prompt[0][1] and "hello() -> str" in prompt[0][1]
    assert prompt[1:] == [("user", "u"), ("assistant", "a"), ("user", "Say hi.")]


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("runtime_notes:\n  persistnt: x\n", "field runtime_notes.persistnt"),
        ("codeact_sytem: x\n", "field codeact_sytem: Extra inputs are not permitted"),
        ("few_shot:\n  stateless:\n    - role: system\n      content: x\n", "field few_shot.stateless.0.role"),
        ("codeact_system: '{runtime_notes}'\n", "codeact_system: unknown placeholder {runtime_notes}"),
        ("- just a list\n", "must hold a mapping"),
        ("a: [unclosed\n", "is not valid YAML"),
    ],
)
def test_a_bad_prompts_file_is_one_line_naming_file_and_field(tmp_path: Path, content: str, detail: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(PromptsError) as raised:
        load_prompts(str(path))
    assert str(raised.value).startswith(f"prompts file {path}: ") and detail in str(raised.value)
    assert "\n" not in str(raised.value)
    with pytest.raises(TaskOptionError, match="-T prompts="):
        knapsack(prompts=str(path))


def test_a_family_text_may_hold_only_that_familys_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "statement.yaml"
    path.write_text("task_statement: 'Items: {n_itemz}'\n")
    load_prompts(str(path))  # the generic fields are fine; the text is checked against the family that fills it
    with pytest.raises(TaskOptionError, match=r"task_statement: unknown placeholder \{n_itemz\} \(known: \{n_items\}"):
        knapsack(prompts=str(path))


def test_a_bad_prompts_file_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("runtime_notes:\n  persistnt: x\n")
    env = {key: value for key, value in os.environ.items() if key != "INSPECT_DISPLAY"}
    env["COLUMNS"] = "400"  # Inspect's console wraps the line at the terminal's width
    result = subprocess.run(
        [sys.executable, "-m", "inspect_ai", "eval", "opaque_knapsack/knapsack", "--model", "mockllm/model",
         "-T", f"prompts={path}", "--log-dir", str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert str(path) in output and "runtime_notes.persistnt" in output
    missing = tmp_path / "missing.yaml"
    with pytest.raises(TaskOptionError, match="cannot be read"):
        knapsack(prompts=str(missing))
