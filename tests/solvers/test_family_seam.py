"""A second task family runs through the CodeAct agent, its scorer and the export."""

from __future__ import annotations

import json
from pathlib import Path

from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from opaque_knapsack.records import END_REASON_KEY, STEPS_KEY
from opaque_knapsack.train.export import ExportOptions, export_traces

from .guess_family import BISECT, INSTRUCTIONS, REPORT_AND_FINISH, TOOL_DOCS, guess_number


def _reply(text: str) -> ModelOutput:
    """A mockllm output with usage set (mockllm's own token count needs the network)."""
    output = ModelOutput.from_content("mockllm/model", text)
    output.usage = ModelUsage(input_tokens=50, output_tokens=10, total_tokens=60)
    return output


def _policy(*texts: str):
    return get_model("mockllm/model", custom_outputs=[_reply(text) for text in texts])


def _run(tmp_path: Path, runtime: str):
    [log] = inspect_eval(
        guess_number(runtime=runtime, max_turns=3),
        model=_policy(BISECT, REPORT_AND_FINISH, "I give up."),
        log_dir=str(tmp_path),
        display="none",
    )
    assert log.status == "success", log.error
    return log


def test_guess_family_runs_through_codeact_and_records_its_steps(tmp_path: Path) -> None:
    log = _run(tmp_path, "persistent")
    [sample] = log.samples
    system = sample.messages[0].text
    assert system.startswith(INSTRUCTIONS) and TOOL_DOCS in system and "knapsack" not in system.lower()
    # finish() on turn 2 ended the loop: the third reply was never asked for
    assert [m.role for m in sample.messages].count("assistant") == 2
    assert sample.store[END_REASON_KEY] == "finished"
    steps = sample.store[STEPS_KEY]
    assert [step["turn"] for step in steps] == [1, 2]
    assert steps[1]["bound_at_start"] == ["answer"]  # the persistent runtime kept turn 1's answer
    value = sample.scores["guess_scorer"].value
    assert value["solved"] == 1.0 and value["steps"] == 2.0
    # bisection on 1..100 finds 37 in 3 guesses (50, 25, 37); turn 2 adds finish()
    assert value["guesses"] == 3.0 and value["tool_calls"] == 4.0
    assert value["state_utilization"] == 1.0 and value["name_error_episode"] == 0.0
    assert value["total_tokens"] == 120.0


def test_guess_family_in_the_stateless_runtime_hits_the_name_error(tmp_path: Path) -> None:
    [sample] = _run(tmp_path, "stateless").samples
    value = sample.scores["guess_scorer"].value
    assert value["name_error_episode"] == 1.0 and value["state_utilization"] == 0.0
    # the NameError stopped turn 2 before finish(): the episode ran to its turn limit
    assert sample.store[END_REASON_KEY] == "turn_limit"
    assert [m.role for m in sample.messages].count("assistant") == 3
    assert sample.store[STEPS_KEY][1]["is_name_error"] is True


def test_guess_family_exports_as_training_conversations(tmp_path: Path) -> None:
    log = _run(tmp_path / "logs", "persistent")
    out = tmp_path / "traces.jsonl"
    summary = export_traces([log.location], out, ExportOptions(solved_only=True))
    [line] = [json.loads(text) for text in out.read_text().splitlines()]
    assert summary.kept == 1
    assert line["task_id"] == "guess-37" and line["runtime"] == "persistent" and line["agent"] == "codeact"
    assert line["optimality"] == 1.0 and line["solved"] is True
    roles = [message["role"] for message in line["messages"]]
    assert roles[:3] == ["system", "user", "assistant"] and roles[-1] == "assistant"
    assert "verdict = guess(answer)" in line["messages"][2]["content"]
