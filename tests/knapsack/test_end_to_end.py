"""End-to-end evals of opaque_knapsack/knapsack, checked against the environment's truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    ModelOutput,
    ModelUsage,
    get_model,
)
from inspect_ai.util import SandboxEnvironmentSpec

from opaque_knapsack.knapsack import PRESETS, generate_instance, knapsack
from opaque_knapsack.sandboxes import RuntimeConfig


def scores(sample) -> dict[str, float]:
    return sample.scores["knapsack_scorer"].value


def reply(text: str) -> ModelOutput:
    """A mockllm output with usage set (mockllm's own token count needs the network)."""
    output = ModelOutput.from_content("mockllm/model", text)
    output.usage = ModelUsage(input_tokens=100, output_tokens=len(text), total_tokens=100 + len(text))
    return output


def mock_model(*replies: str):
    return get_model("mockllm/model", custom_outputs=[reply(text) for text in replies])


SCRIPT = (
    "```python\nimport json\nids = json.loads(list_items())\nfirst = json.loads(inspect(ids[0]))\nprint(first)\n```",
    "```python\nprint(take_item(ids[0]))\n```",
    "```python\nfinish()\n```",
)


@pytest.mark.parametrize("runtime", ["persistent", "stateless"])
def test_codeact_with_mockllm_scores_match_environment_truth(runtime, tmp_path):
    instance = generate_instance(PRESETS["easy"], 0, 2)  # its first listed id is of an allowed class
    first = sorted(instance.public.item_ids)[0]  # list_items() is sorted
    truth = instance.private.items[first]
    [log] = inspect_eval(
        knapsack(num=1, seed_start=2, runtime=runtime), model=mock_model(*SCRIPT), log_dir=str(tmp_path)
    )
    assert log.status == "success", log.error
    [sample] = log.samples
    figures = scores(sample)
    assert figures["items_inspected"] == 1
    assert figures["steps"] == 3
    assert sample.store["knapsack:prebound"] == ["json"]  # the runtime's, never carried state
    if runtime == "persistent":
        assert figures["optimality"] == pytest.approx(truth.value / instance.reference.optimal_value)
        assert figures["capacity_utilization"] == pytest.approx(truth.weight / instance.public.capacity)
        assert figures["name_error_episode"] == 0
        assert figures["state_utilization"] == 1  # `ids` carried from step 1 and served
        assert figures["tool_calls"] == 4
        assert "Globals: first, ids" in sample.messages[3].text  # json is pre-bound, not the user's
    else:
        assert figures["optimality"] == 0
        assert figures["name_error_episode"] == 1 and figures["name_error_count"] == 1
        assert figures["state_utilization"] == 0
        assert "NameError: name 'ids' is not defined" in sample.messages[5].text
        assert "Globals:" not in sample.messages[3].text
    # the conversation ends on the assistant turn that called finish()
    assert isinstance(sample.messages[-1], ChatMessageAssistant)
    assert [type(m) for m in sample.messages] == [
        ChatMessageSystem, ChatMessageUser, ChatMessageAssistant, ChatMessageUser,
        ChatMessageAssistant, ChatMessageUser, ChatMessageAssistant,
    ]


def run_persistent(tmp_path, *steps: str, config: RuntimeConfig | None = None):
    """One scored persistent episode of the given code blocks, then ``finish()``; its only sample."""
    replies = [f"```python\n{code}\n```" for code in (*steps, "finish()")]
    sandbox = SandboxEnvironmentSpec("persistent_python", config) if config is not None else None
    [log] = inspect_eval(
        knapsack(num=1, runtime="persistent"), model=mock_model(*replies), log_dir=str(tmp_path), sandbox=sandbox
    )
    assert log.status == "success", log.error
    return log.samples[0]


def test_a_global_bound_to_none_is_state_the_interpreter_serves(tmp_path):
    sample = run_persistent(tmp_path, "best = None; count = 0", "count += 1\nprint(best, count)")
    assert scores(sample)["state_utilization"] == 2
    assert "Globals: best, count" in sample.messages[3].text
    assert "None 1" in sample.messages[5].text


def test_an_imported_module_is_carried_but_not_on_the_globals_line(tmp_path):
    sample = run_persistent(tmp_path, "import math\nroot = 2", "print(math.floor(root * 1.5))")
    assert scores(sample)["state_utilization"] == 2  # `math` and `root` served by the interpreter
    assert "Globals: root" in sample.messages[3].text and "math" not in sample.messages[3].text


def test_a_bare_final_expression_shows_nothing_and_the_prompt_says_so(tmp_path):
    sample = run_persistent(tmp_path, "x = 1\nx + 41")
    observation = sample.messages[3].text
    assert "42" not in observation and "(no output)" in observation
    assert "shows only what it printed" in sample.messages[0].text
    assert "final expression" not in sample.messages[0].text


def test_the_notebook_echo_is_a_runtime_option_and_the_prompt_says_so(tmp_path):
    sample = run_persistent(tmp_path / "echo", "x = 1\nx + 41", config=RuntimeConfig(echo_last_expression=True))
    assert "42" in sample.messages[3].text
    assert "the value of a bare final expression" in sample.messages[0].text


def test_the_environment_enters_the_log_as_one_change(tmp_path):
    """The final environment is one store change per event, not one per list element.

    Inspect copies and walks every change of a store event when it logs the
    sample; an empty environment written at the start made the final one a
    change per inspected item (~100 per episode).
    """
    [log] = inspect_eval(knapsack(num=1), model="scripted/persistent", log_dir=str(tmp_path))
    [sample] = log.samples
    assert len(sample.store["knapsack:environment"]["inspected"]) >= 2
    store_events = [event for event in sample.events if event.event == "store"]
    environment_changes = [
        change for event in store_events for change in event.changes if change.path.startswith("/knapsack:environment")
    ]
    assert environment_changes
    assert all(change.path == "/knapsack:environment" for change in environment_changes)
    assert sample.scores["knapsack_scorer"].value["items_inspected"] == len(sample.store["knapsack:environment"]["inspected"])


def test_private_data_never_reaches_the_messages(tmp_path):
    [log] = inspect_eval(knapsack(num=2), model="scripted/persistent", log_dir=str(tmp_path))
    for sample in log.samples:
        instance = json.loads(sample.metadata["instance"])
        inspected = set(sample.store["knapsack:environment"]["inspected"])
        text = "\n".join(m.text for m in sample.messages)
        task = sample.messages[1].text
        # the statement holds public facts only: all classes, never which are allowed
        assert f"Capacity: {instance['public']['capacity']}" in task
        assert "allowed_classes" not in text and "optimal_value" not in text
        assert str(instance["reference"]["optimal_value"]) not in task
        for item_id, item in instance["private"]["items"].items():
            revealed = json.dumps({"class": item["class"], "value": item["value"], "weight": item["weight"]})
            if item_id not in inspected:
                assert revealed not in text, item_id


def test_several_blocks_and_no_block_run_nothing(tmp_path):
    replies = (
        "Just thinking.",
        "```python\nprint(1)\n```\n```python\nprint(2)\n```",
        "```python\nfinish()\n```",
    )
    [log] = inspect_eval(knapsack(num=1), model=mock_model(*replies), log_dir=str(tmp_path))
    sample = log.samples[0]
    assert "nothing ran" in sample.messages[3].text
    assert "2 Python blocks" in sample.messages[5].text
    assert scores(sample)["tool_calls"] == 1 and scores(sample)["steps"] == 3
    assert sample.store["knapsack:end_reason"] == "finished"


def test_turn_limit_ends_on_an_assistant_turn(tmp_path):
    replies = ["```python\nprint('hi')\n```"] * 3
    [log] = inspect_eval(knapsack(num=1, max_turns=3), model=mock_model(*replies), log_dir=str(tmp_path))
    sample = log.samples[0]
    assert sample.store["knapsack:end_reason"] == "turn_limit"
    assert isinstance(sample.messages[-1], ChatMessageAssistant)
    assert scores(sample)["steps"] == 3


def test_tool_call_limit_per_block(tmp_path):
    code = "```python\nimport json\nids = json.loads(list_items())\nfor i in ids[:10]:\n    inspect(i)\n```"
    [log] = inspect_eval(
        knapsack(num=1, max_tool_calls=5, max_turns=1), model=mock_model(code), log_dir=str(tmp_path)
    )
    figures = scores(log.samples[0])
    # list_items and four inspects ran; the sixth call was refused by the harness
    assert figures["tool_calls"] == 5
    assert figures["items_inspected"] == 4


def test_prompts_are_a_prefix_of_the_final_conversation(tmp_path):
    seen: list[list[str]] = []

    def policy(input, tools, tool_choice, config):
        seen.append([m.text for m in input])
        turn = len(seen)
        code = "finish()" if turn == 4 else f"x{turn} = {turn}"
        return reply(f"```python\n{code}\n```")

    [log] = inspect_eval(
        knapsack(num=1), model=get_model("mockllm/model", custom_outputs=policy), log_dir=str(tmp_path)
    )
    final = [m.text for m in log.samples[0].messages]
    assert len(seen) == 4
    for prompt in seen:
        assert final[: len(prompt)] == prompt


def test_a_model_error_errors_the_sample_not_a_scored_episode(tmp_path):
    """An outage after Inspect's retries is a sample error (no score), never optimality 0."""

    def policy(input, tools, tool_choice, config):
        raise RuntimeError("backend exploded")

    [log] = inspect_eval(
        knapsack(num=2),
        model=get_model("mockllm/model", custom_outputs=policy),
        log_dir=str(tmp_path),
        fail_on_error=False,
    )
    assert len(log.samples) == 2
    for sample in log.samples:
        assert sample.error is not None and "backend exploded" in sample.error.message
        assert not sample.scores
    # and Inspect's default --fail-on-error stops the eval
    [failed] = inspect_eval(
        knapsack(num=1), model=get_model("mockllm/model", custom_outputs=policy), log_dir=str(tmp_path / "f")
    )
    assert failed.status == "error"


def test_retry_on_error_redoes_an_errored_sample(tmp_path):
    calls = []

    def policy(input, tools, tool_choice, config):
        calls.append(len(input))
        if len(calls) == 1:
            raise RuntimeError("transient outage")
        return reply("```python\nfinish()\n```")

    [log] = inspect_eval(
        knapsack(num=1),
        model=get_model("mockllm/model", custom_outputs=policy),
        log_dir=str(tmp_path),
        retry_on_error=1,
    )
    assert log.status == "success", log.error
    [sample] = log.samples
    assert sample.error is None and sample.error_retries
    assert sample.scores["knapsack_scorer"].value["steps"] == 1


def test_context_overflow_ends_a_scored_episode(tmp_path):
    def policy(input, tools, tool_choice, config):
        output = reply("```python\nx = 1\n```")
        output.choices[0].stop_reason = "model_length"
        return output

    [log] = inspect_eval(
        knapsack(num=1), model=get_model("mockllm/model", custom_outputs=policy), log_dir=str(tmp_path)
    )
    assert log.status == "success", log.error
    [sample] = log.samples
    assert sample.error is None
    assert sample.store["knapsack:end_reason"] == "context_length"
    assert sample.scores["knapsack_scorer"].value["optimality"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-T", "runtime=forgetful"], "runtime='forgetful'"),
        (["-T", "agent=smol"], "agent='smol'"),
        (["-T", "difficulty=impossible"], "difficulty='impossible'"),
    ],
)
def test_bad_task_arguments_fail_before_any_sample(args, message, tmp_path):
    # Inspect prints the one-line error through its display, which the test run's INSPECT_DISPLAY=none mutes
    env = {key: value for key, value in os.environ.items() if key != "INSPECT_DISPLAY"}
    result = subprocess.run(
        [sys.executable, "-m", "inspect_ai", "eval", "opaque_knapsack/knapsack", "--model", "mockllm/model",
         "--log-dir", str(tmp_path), *args],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not list(Path(tmp_path).glob("*.eval"))


def test_task_path_with_no_tasks_is_a_clear_error(tmp_path):
    from opaque_knapsack.task_options import TaskOptionError

    with pytest.raises(TaskOptionError, match=str(tmp_path)):
        knapsack(tasks=str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize(("agent", "runtime"), [("codeact", "persistent"), ("codeact", "stateless"), ("react", "persistent")])
def test_inspect_eval_cli_with_scripted_policy(agent, runtime, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "inspect_ai", "eval", "opaque_knapsack/knapsack", "--model", "scripted/persistent",
         "-T", "num=3", "-T", f"agent={agent}", "-T", f"runtime={runtime}", "--log-dir", str(tmp_path),
         "--display", "none"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    [path] = Path(tmp_path).glob("*.eval")
    log = read_eval_log(str(path))
    assert log.status == "success"
    for sample in log.samples:
        instance = json.loads(sample.metadata["instance"])
        taken = sample.store["knapsack:environment"]["taken"]
        items = instance["private"]["items"]
        value = sum(items[i]["value"] for i in taken)
        assert sum(items[i]["weight"] for i in taken) <= instance["public"]["capacity"]
        assert all(items[i]["class"] in instance["public"]["allowed_classes"] for i in taken)
        assert scores(sample)["optimality"] == pytest.approx(value / instance["reference"]["optimal_value"])
        assert scores(sample)["optimality"] > 0.3
        assert (scores(sample)["name_error_episode"] == 1) == (agent == "codeact" and runtime == "stateless")


def test_sandbox_option_selects_the_runtime_and_samples_record_it(tmp_path):
    [log] = inspect_eval(
        knapsack(num=2), model="scripted/persistent", sandbox="stateless_python", log_dir=str(tmp_path)
    )
    assert log.status == "success", log.error
    for sample in log.samples:
        assert sample.metadata["runtime"] == "stateless"
        assert "STATELESS" in sample.messages[0].text  # the runtime note matches the runtime
        assert scores(sample)["name_error_episode"] == 1

    from opaque_knapsack.reports import load_runs

    [run] = load_runs([str(tmp_path)])
    assert (run.condition.train, run.condition.runtime) == ("persistent", "stateless")


def test_codeact_with_another_sandbox_fails_before_any_model_call(tmp_path):
    calls = []

    def policy(input, tools, tool_choice, config):
        calls.append(1)
        return reply("```python\nfinish()\n```")

    [log] = inspect_eval(
        knapsack(num=1),
        model=get_model("mockllm/model", custom_outputs=policy),
        sandbox="local",
        log_dir=str(tmp_path),
    )
    assert log.status == "error"
    assert "needs a Python runtime sandbox" in log.error.message
    assert "persistent_python" in log.error.message
    assert calls == []


def test_react_with_mockllm_tool_calls_scores_match_environment_truth(tmp_path):
    from inspect_ai.model import ChatMessageTool
    from inspect_ai.tool import ToolCall

    instance = generate_instance(PRESETS["easy"], 0, 0)
    first = instance.public.item_ids[0]
    truth = instance.private.items[first]

    def calls(*pairs):
        output = reply("calling tools")
        output.message.tool_calls = [
            ToolCall(id=f"c{index}", function=name, arguments=arguments)
            for index, (name, arguments) in enumerate(pairs)
        ]
        return output

    outputs = [
        calls(("list_items", {}), ("inspect", {"item_id": first})),
        calls(("take_item", {"item_id": first}), ("take_item", {"item_id": "nope"})),
        calls(("finish", {})),
    ]
    [log] = inspect_eval(
        knapsack(num=1, agent="react"), model=get_model("mockllm/model", custom_outputs=outputs), log_dir=str(tmp_path)
    )
    assert log.status == "success", log.error
    sample = log.samples[0]
    figures = scores(sample)
    assert figures["optimality"] == pytest.approx(truth.value / instance.reference.optimal_value)
    assert figures["tool_calls"] == 5 and figures["steps"] == 3 and figures["items_inspected"] == 1
    results = [m for m in sample.messages if isinstance(m, ChatMessageTool)]
    assert json.loads(results[1].text) == {"class": truth.class_, "value": truth.value, "weight": truth.weight}
    assert results[3].error is not None and "nope" in results[3].error.message
    assert sample.store["knapsack:end_reason"] == "finished"


def test_context_overflow_ends_the_episode_cleanly(tmp_path):
    overflow = reply("```python\nprint('cut off")
    overflow.choices[0].stop_reason = "model_length"
    [log] = inspect_eval(
        knapsack(num=1), model=get_model("mockllm/model", custom_outputs=[overflow]), log_dir=str(tmp_path)
    )
    sample = log.samples[0]
    assert log.status == "success"
    assert sample.store["knapsack:end_reason"] == "context_length"
    assert isinstance(sample.messages[-1], ChatMessageAssistant)
    assert scores(sample)["steps"] == 1 and scores(sample)["tool_calls"] == 0


def test_inspect_score_rescores_a_log_from_what_it_kept(tmp_path):
    from inspect_ai import score

    from opaque_knapsack.knapsack.scorer import knapsack_scorer

    [log] = inspect_eval(knapsack(num=2, runtime="stateless"), model="scripted/stateless", log_dir=str(tmp_path))
    before = [scores(sample) for sample in log.samples]
    rescored = score(read_eval_log(log.location), scorers=[knapsack_scorer()], action="overwrite")
    assert [scores(sample) for sample in rescored.samples] == before
    means = {s.name: s.metrics["mean"].value for s in rescored.results.scores}
    assert means["optimality"] == pytest.approx(sum(b["optimality"] for b in before) / 2)
