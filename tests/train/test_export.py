"""Export: round trip, forms, filters, dedup, split, summary, bad input, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log

from opaque_knapsack.cli import main
from opaque_knapsack.train.export import ExportError, ExportOptions, export_traces, split_of


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def only_log(directory: Path) -> Path:
    [path] = sorted(directory.glob("*.eval"))
    return path


def test_round_trip_equals_the_sample_messages(fixture_logs, tmp_path):
    out = tmp_path / "traces.jsonl"
    export_traces([fixture_logs.persistent], out)
    log = read_eval_log(str(only_log(fixture_logs.persistent)))
    exported = {record["task_id"]: record for record in lines(out)}
    assert sorted(exported) == [sample.id for sample in log.samples]
    for sample in log.samples:
        record = exported[sample.id]
        expected = [{"role": message.role, "content": message.text} for message in sample.messages]
        assert record["messages"] == expected  # the final assistant turn ends the sample already
        assert [m["role"] for m in record["messages"][:3]] == ["system", "user", "assistant"]
        assert record["messages"][-1]["role"] == "assistant"
        observations = [m["content"] for m in record["messages"][3:-1:2]]
        assert observations and all(text.startswith("Observation:") for text in observations)
        assert all("\nGlobals: item_" in text for text in observations)
        assert "```python" in record["messages"][2]["content"]
        assert record["runtime"] == "persistent" and record["agent"] == "codeact"
        assert record["train"] == "persistent" and record["model"] == "mockllm/model"
        assert record["optimality"] == sample.scores["knapsack_scorer"].value["optimality"]
        assert record["solved"] == (record["optimality"] == 1.0)
        assert record["difficulty"] == "easy"


def test_stateless_observations_have_no_globals_line(fixture_logs, tmp_path):
    out = tmp_path / "traces.jsonl"
    export_traces([fixture_logs.stateless], out)
    for record in lines(out):
        assert record["runtime"] == "stateless"
        assert record["train"] == "unknown"  # no eval metadata, not a scripted model
        assert not any("Globals:" in m["content"] for m in record["messages"])


def test_trailing_non_assistant_messages_are_dropped():
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    from opaque_knapsack.train.conversation import training_messages

    messages = [
        ChatMessageSystem(content="sys"),
        ChatMessageUser(content="task"),
        ChatMessageAssistant(content="```python\nprint(1)\n```"),
        ChatMessageUser(content="Observation: 1"),
    ]
    assert [m["role"] for m in training_messages(messages)] == ["system", "user", "assistant"]


def test_sharegpt_form(fixture_logs, tmp_path):
    out = tmp_path / "traces.jsonl"
    export_traces([fixture_logs.persistent], out, ExportOptions(format="sharegpt"))
    record = lines(out)[0]
    assert "messages" not in record
    speakers = [turn["from"] for turn in record["conversations"]]
    assert speakers[:3] == ["system", "human", "gpt"] and speakers[-1] == "gpt"
    assert set(speakers) == {"system", "human", "gpt"}
    assert record["conversations"][3]["value"].startswith("Observation:")


def test_react_tool_call_form(fixture_logs, tmp_path):
    out = tmp_path / "traces.jsonl"
    export_traces([fixture_logs.react], out)
    record = lines(out)[0]
    assert record["agent"] == "react"
    assert {tool["function"]["name"] for tool in record["tools"]} == {"inspect", "finish"}
    inspect_tool = next(tool for tool in record["tools"] if tool["function"]["name"] == "inspect")
    assert inspect_tool["type"] == "function"
    assert inspect_tool["function"]["parameters"]["properties"]["item_id"]["type"] == "string"
    messages = record["messages"]
    calls = [m for m in messages if m.get("tool_calls")]
    results = [m for m in messages if m["role"] == "tool"]
    assert len(calls) == len(results) == 4
    for call, result in zip(calls, results, strict=True):
        [tool_call] = call["tool_calls"]
        assert tool_call["type"] == "function"
        assert isinstance(tool_call["function"]["arguments"], str)
        json.loads(tool_call["function"]["arguments"])
        assert result["tool_call_id"] == tool_call["id"]
        assert result["name"] == tool_call["function"]["name"]
    assert json.loads(calls[0]["tool_calls"][0]["function"]["arguments"]) == {"item_id": "item_000000000000"}
    assert results[1]["content"] == "Error: Unknown item id 'item_000000000001'."
    assert messages[-1] == {"role": "assistant", "content": "Finished."}


def test_dedup_keeps_best_then_fewest_tokens(fixture_logs, tmp_path):
    out = tmp_path / "traces.jsonl"
    summary = export_traces(
        [fixture_logs.persistent, fixture_logs.persistent_short, fixture_logs.persistent_worse], out
    )
    records = {record["task_id"]: record for record in lines(out)}
    assert len(records) == 4 and summary.kept == 4
    assert summary.dropped == {"duplicate": 4}
    # tasks 0-1: same optimality, the 3-turn episodes use fewer tokens
    assert all(len(records[f"knapsack-000000000{i}"]["messages"]) == 7 for i in (0, 1))
    # tasks 2-3: the 3-turn episodes scored worse, so the 4-turn ones stay
    assert all(len(records[f"knapsack-000000000{i}"]["messages"]) == 9 for i in (2, 3))
    no_dedup = export_traces(
        [fixture_logs.persistent, fixture_logs.persistent_short], tmp_path / "all.jsonl", ExportOptions(dedup=False)
    )
    assert no_dedup.kept == 6


def test_dedup_keeps_one_episode_per_runtime(fixture_logs, tmp_path):
    summary = export_traces([fixture_logs.persistent, fixture_logs.stateless], tmp_path / "t.jsonl")
    assert summary.kept_by_runtime == {"persistent": 4, "stateless": 4}


def test_filters_and_summary(fixture_logs, tmp_path):
    out = tmp_path / "traces.jsonl"
    logs = [fixture_logs.persistent, fixture_logs.stateless, fixture_logs.errored]
    summary = export_traces(logs, out, ExportOptions(runtime="persistent", exclude_errors=True, min_score=0.6))
    records = lines(out)
    # persistent tasks 0-3 score 1.0, 0.6, 0.7, 1.0; the errored ones are dropped first
    assert sorted(r["task_id"] for r in records) == [f"knapsack-000000000{i}" for i in range(4)]
    assert summary.dropped == {"error": 2, "runtime": 4}
    solved = export_traces(logs, out, ExportOptions(solved_only=True, min_score=0.65))
    assert {r["optimality"] for r in lines(out)} == {1.0}
    # 0.6 and 0.5 fall below 0.65; 0.7 passes min_score but is not solved
    assert solved.dropped == {"min_score": 4, "not_solved": 2} and solved.kept == 4
    on_disk = json.loads((tmp_path / "traces.summary.json").read_text())
    assert on_disk["kept"] == solved.kept and on_disk["dropped"] == solved.dropped
    assert on_disk["options"]["solved_only"] is True
    without = export_traces([fixture_logs.errored], out)
    assert without.kept == 2  # errors are kept unless --exclude-errors


def test_split_is_deterministic_and_by_task_id(fixture_logs, tmp_path):
    ids = [f"knapsack-{i:010d}" for i in range(2000)]
    share = sum(split_of(task_id, 0.05) == "validation" for task_id in ids) / len(ids)
    assert 0.03 < share < 0.07
    assert [split_of(t, 0.05) for t in ids] == [split_of(t, 0.05) for t in ids]
    assert all(split_of(t, 0.0) == "train" for t in ids)
    out = tmp_path / "traces.jsonl"
    # sha256 positions of tasks 0-3: 0.51, 0.95, 0.69, 0.66
    summary = export_traces([fixture_logs.persistent, fixture_logs.stateless], out, ExportOptions(val_fraction=0.68))
    train, validation = lines(out), lines(tmp_path / "traces.val.jsonl")
    assert summary.train == len(train) == 4 and summary.validation == len(validation) == 4
    assert {r["task_id"] for r in validation} == {"knapsack-0000000000", "knapsack-0000000003"}
    assert {r["runtime"] for r in validation} == {"persistent", "stateless"}
    assert {r["task_id"] for r in train}.isdisjoint({r["task_id"] for r in validation})
    export_traces([fixture_logs.persistent], out)  # val_fraction 0: a stale .val.jsonl goes
    assert not (tmp_path / "traces.val.jsonl").exists()


def test_bad_inputs_name_the_file(fixture_logs, tmp_path):
    out = tmp_path / "traces.jsonl"
    other = only_log(fixture_logs.other_task)
    with pytest.raises(ExportError, match=f"{other.name}.*some_other_task"):
        export_traces([other], out)
    with pytest.raises(ExportError, match="no such file"):
        export_traces([tmp_path / "missing.eval"], out)
    garbage = tmp_path / "garbage.eval"
    garbage.write_text("not a zip")
    with pytest.raises(ExportError, match="garbage.eval: not a readable Inspect log"):
        export_traces([garbage], out)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(ExportError, match="holds no Inspect logs"):
        export_traces([empty_dir], out)
    with pytest.raises(ExportError, match=r"no episodes left after filtering \(4 read.*runtime: 4"):
        export_traces([fixture_logs.persistent], out, ExportOptions(runtime="stateless"))
    assert not out.exists()


def test_log_without_samples(fixture_logs, tmp_path):
    from inspect_ai.log import write_eval_log

    log = read_eval_log(str(only_log(fixture_logs.persistent)))
    log.samples = []
    log.eval.dataset.sample_ids = []
    empty = tmp_path / "empty.eval"
    write_eval_log(log, str(empty))
    with pytest.raises(ExportError, match="empty.eval: log has no samples"):
        export_traces([empty], tmp_path / "traces.jsonl")


def test_failure_midway_leaves_no_partial_file(fixture_logs, tmp_path, monkeypatch):
    out = tmp_path / "traces.jsonl"
    out.write_text("previous export\n")
    with pytest.raises(ExportError):
        export_traces([fixture_logs.persistent, only_log(fixture_logs.other_task)], out)
    assert out.read_text() == "previous export\n"
    # a failure while renaming the second file: nothing new lands, no temporaries stay
    import opaque_knapsack.train.export as export_module

    real_replace = os.replace
    calls = []

    def failing_replace(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(export_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        export_traces([fixture_logs.persistent], out, ExportOptions(val_fraction=0.5))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cli_export(fixture_logs, tmp_path, capsys):
    out = tmp_path / "traces.jsonl"
    code = main(["export", str(fixture_logs.persistent), str(fixture_logs.react), "--out", str(out), "--format", "sharegpt"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "episodes read    6" in printed and "kept             6" in printed
    assert len(lines(out)) == 6
    code = main(["export", str(fixture_logs.persistent), "--out", str(out), "--runtime", "stateless"])
    assert code == 2
    assert "no episodes left after filtering" in capsys.readouterr().err
    assert main(["export", str(fixture_logs.persistent), "--out", str(out), "--min-score", "2"]) == 2


def test_json_format_logs_export_the_same(fixture_logs, tmp_path):
    from inspect_ai.log import write_eval_log

    log = read_eval_log(str(only_log(fixture_logs.persistent)))
    as_json = tmp_path / "persistent.json"
    write_eval_log(log, str(as_json), format="json")
    export_traces([as_json], tmp_path / "from_json.jsonl")
    export_traces([fixture_logs.persistent], tmp_path / "from_eval.jsonl")
    assert lines(tmp_path / "from_json.jsonl") == lines(tmp_path / "from_eval.jsonl")


def test_the_readme_exports_every_trace_as_the_paper_does_and_explains_each_filter():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Export traces", 1)[1].split("\n### ", 1)[0]
    command = section.split("```bash\n", 1)[1].split("```", 1)[0]
    assert command.startswith("opaque-knapsack export ")
    filters = ("--exclude-errors", "--min-score", "--solved-only", "--runtime", "--no-dedup", "--keep-unusable")
    assert not [flag for flag in filters if flag in command]
    prose = section.split("```", 2)[2]
    assert all(f"`{flag}" in prose for flag in filters)
