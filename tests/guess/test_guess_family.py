"""The guess family end to end: generated, evaluated in both runtimes, reported and exported unchanged.

Nothing here is knapsack: the family is found through the registry, run by the
package's agents and its scripted model provider, and read by the reports and
the export, none of which names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from opaque_knapsack.families import FAMILIES, task_family
from opaque_knapsack.guess.family import GUESS
from opaque_knapsack.guess.generator import make_instance
from opaque_knapsack.guess.task import guess
from opaque_knapsack.records import END_REASON_KEY, STEPS_KEY

ENV = {key: value for key, value in os.environ.items() if key != "INSPECT_DISPLAY"}


def _bisection(low: int, high: int, secret: int) -> list[int]:
    guesses = []
    while True:
        n = (low + high) // 2
        guesses.append(n)
        if n == secret:
            return guesses
        low, high = (n + 1, high) if n < secret else (low, n - 1)


def test_the_family_is_registered_and_declares_what_the_agents_need() -> None:
    assert task_family("guess") is GUESS and "guess" in FAMILIES
    assert GUESS.tools == ("guess", "finish") and GUESS.scorer == "guess_scorer"
    assert "knapsack" not in (GUESS.codeact_instructions + GUESS.codeact_tool_docs + GUESS.task_statement).lower()


def test_generate_writes_guess_files_deterministically_and_resumes(tmp_path: Path, capsys) -> None:
    code, out, _ = run(capsys, "generate", "--family", "guess", "--num", 4, "--seed-start", 7, "--out", tmp_path, "--quiet")
    assert code == 0 and "4 easy task files in" in out and "(4 written, 0 kept, 0 rewritten)" in out
    files = sorted((tmp_path / "tasks" / "guess").glob("guess-*.json"))
    assert [json.loads(f.read_text())["secret"] for f in files] == [make_instance("easy", i, 7 + i).secret for i in range(4)]
    files[0].write_text("{}")
    code, out, _ = run(capsys, "generate", "--family", "guess", "--num", 4, "--seed-start", 7, "--out", tmp_path, "--quiet")
    assert code == 0 and "(0 written, 3 kept, 1 rewritten)" in out


@pytest.mark.parametrize("command", ["generate", "quickstart"])
def test_an_unknown_family_is_one_line_naming_the_flag_and_the_choices(tmp_path: Path, capsys, command: str) -> None:
    code, _, err = run(capsys, command, "--family", "chess", "--out", tmp_path)
    assert code == 2
    assert err == f"opaque-knapsack {command}: error: --family 'chess' is not a task family (choices: knapsack, guess)\n"


def test_a_preset_of_another_family_is_one_line(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "generate", "--family", "guess", "--preset", "medium", "--out", tmp_path)
    assert code == 2 and err.splitlines() == [
        "opaque-knapsack generate: error: --preset 'medium' is not a preset of the guess family (choices: easy, hard)"
    ]
    code, _, err = run(capsys, "generate", "--family", "guess", "--config", "c.json", "--out", tmp_path, "--quiet")
    assert code == 2 and "has no generator config" in err and len(err.splitlines()) == 1


def _means(log) -> dict[str, float]:
    return {score.name: score.metrics["mean"].value for score in log.results.scores}


@pytest.mark.slow
def test_the_scripted_policies_play_guess_in_both_runtimes(tmp_path: Path) -> None:
    means = {}
    for train in ("persistent", "stateless"):
        for runtime in ("persistent", "stateless"):
            [log] = inspect_eval(
                guess(num=3, runtime=runtime), model=f"scripted/{train}", log_dir=str(tmp_path), display="none"
            )
            assert log.status == "success", log.error
            means[train, runtime] = _means(log)
            assert log.eval.metadata["family"] == "guess"
    for condition in means.values():
        assert condition["solved"] == 1.0 and condition["guesses"] > 0
    # the persistent policy's bisect() and bounds are gone in the stateless runtime: a NameError, then it recovers
    assert means["persistent", "stateless"]["name_error_episode"] == 1.0
    assert means["persistent", "persistent"]["name_error_episode"] == 0.0
    assert means["stateless", "stateless"]["name_error_episode"] == 0.0
    assert means["persistent", "persistent"]["state_utilization"] > 0
    assert means["persistent", "stateless"]["steps"] > means["persistent", "persistent"]["steps"]


@pytest.mark.slow
def test_react_plays_guess_with_the_host_functions_as_tools(tmp_path: Path) -> None:
    [log] = inspect_eval(guess(num=2, agent="react"), model="scripted/persistent", log_dir=str(tmp_path), display="none")
    assert log.status == "success", log.error
    sample = log.samples[0]
    system = sample.messages[0].text
    assert system.startswith(GUESS.react_instructions) and "function calling" in system
    calls = [call.function for message in sample.messages if message.role == "assistant" for call in message.tool_calls or []]
    assert set(calls) == {"guess", "finish"} and calls[-1] == "finish"
    secret = sample.metadata["secret"]
    assert sample.scores["guess_scorer"].value["guesses"] == len(_bisection(1, 100, secret))


@pytest.mark.slow
def test_inspect_eval_finds_the_task_on_the_command_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "inspect_ai", "eval", "opaque_knapsack/guess", "--model", "scripted/stateless",
         "-T", "runtime=stateless", "-T", "num=2", "-T", "difficulty=hard", "--log-dir", str(tmp_path), "--display", "none"],
        capture_output=True, text=True, timeout=300, env=ENV,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [path] = list(tmp_path.glob("*.eval"))
    log = read_eval_log(str(path))
    assert log.eval.task_registry_name == "opaque_knapsack/guess" and log.eval.metadata["difficulty"] == "hard"
    assert all(sample.scores["guess_scorer"].value["solved"] == 1.0 for sample in log.samples)


@pytest.mark.slow
def test_quickstart_reports_and_export_read_guess_logs_unchanged(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code, text, err = run(capsys, "quickstart", "--family", "guess", "--num", 3, "--out", out, "--display", "none")
    assert code == 0, err
    assert "guess 2x2" in text and "scripted/persistent" not in err
    assert (out / "tasks" / "guess").is_dir() and len(list((out / "logs").glob("*.eval"))) == 4
    for name in ("stats.txt", "compare.txt", "table.md"):
        assert (out / "reports" / name).stat().st_size > 0, name

    code, text, err = run(capsys, "stats", out / "logs", "--format", "json")
    assert code == 0, err
    assert len(json.loads(text)["runs"]) == 4
    code, text, err = run(
        capsys, "compare", out / "logs", out / "logs", "--metric", "steps",
        "--select-a", "train=persistent,runtime=stateless", "--select-b", "train=persistent,runtime=persistent",
    )  # fmt: skip
    assert code == 0, err
    assert "steps" in text

    code, _, err = run(capsys, "export", out / "logs", "--out", tmp_path / "traces.jsonl", "--quiet")
    assert code == 0, err
    lines = [json.loads(line) for line in (tmp_path / "traces.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and {line["task_id"][:6] for line in lines} == {"guess-"}  # one per task and runtime
    assert all(line["solved"] is True and line["messages"][0]["role"] == "system" for line in lines)

    from opaque_knapsack.reports import episodes_df

    frame = episodes_df(out / "logs")
    assert len(frame) == 12 and "guesses" in frame.columns and frame["solved"].eq(1.0).all()


def _reply(text: str) -> ModelOutput:
    """A mockllm output with usage set (mockllm's own token count needs the network)."""
    output = ModelOutput.from_content("mockllm/model", text)
    output.usage = ModelUsage(input_tokens=50, output_tokens=10, total_tokens=60)
    return output


BISECT = '''```python
low, high = 1, 100
while True:
    answer = (low + high) // 2
    verdict = guess(answer)
    if verdict == "correct":
        break
    if verdict == "higher":
        low = answer + 1
    else:
        high = answer - 1
print(answer)
```'''
REPORT_AND_FINISH = "```python\nprint('found', answer)\nfinish()\n```"


def _run_bisection(tmp_path: Path, runtime: str):
    model = get_model("mockllm/model", custom_outputs=[_reply(t) for t in (BISECT, REPORT_AND_FINISH, "I give up.")])
    [log] = inspect_eval(guess(num=1, runtime=runtime, max_turns=3), model=model, log_dir=str(tmp_path), display="none")
    assert log.status == "success", log.error
    return log.samples[0]


def test_the_codeact_agent_tells_the_model_about_guess_and_keeps_state_in_the_persistent_runtime(tmp_path: Path) -> None:
    sample = _run_bisection(tmp_path, "persistent")
    system = sample.messages[0].text
    assert system.startswith(GUESS.codeact_instructions) and GUESS.codeact_tool_docs in system
    assert "knapsack" not in system.lower()
    assert [m.role for m in sample.messages].count("assistant") == 2  # finish() on turn 2 ended the loop
    assert sample.store[END_REASON_KEY] == "finished"
    steps = sample.store[STEPS_KEY]
    assert steps[1]["bound_at_start"] == ["answer"]  # the persistent runtime kept turn 1's answer
    value = sample.scores["guess_scorer"].value
    bisection = _bisection(1, 100, sample.metadata["secret"])
    assert value["solved"] == 1.0 and value["steps"] == 2.0 and value["guesses"] == len(bisection)
    assert value["tool_calls"] == len(bisection) + 1 and value["state_utilization"] == 1.0
    assert value["total_tokens"] == 120.0


def test_the_stateless_runtime_loses_the_answer_and_the_episode_runs_out_of_turns(tmp_path: Path) -> None:
    sample = _run_bisection(tmp_path, "stateless")
    value = sample.scores["guess_scorer"].value
    assert value["name_error_episode"] == 1.0 and value["state_utilization"] == 0.0
    assert sample.store[END_REASON_KEY] == "turn_limit"  # the NameError stopped turn 2 before finish()
    assert sample.store[STEPS_KEY][1]["is_name_error"] is True
