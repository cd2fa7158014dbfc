"""Export and the matrix on logs of the real knapsack task, run by the scripted policies."""

from __future__ import annotations

import json

from inspect_ai.log import read_eval_log

from opaque_knapsack.cli import main
from opaque_knapsack.train.export import ExportOptions, export_traces


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_codeact_round_trip(real_logs, tmp_path):
    out = tmp_path / "traces.jsonl"
    summary = export_traces([real_logs.persistent, real_logs.stateless], out)
    assert summary.kept_by_runtime == {"persistent": 3, "stateless": 3}
    samples = {
        (runtime, sample.id): sample
        for runtime, path in (("persistent", real_logs.persistent), ("stateless", real_logs.stateless))
        for sample in read_eval_log(str(path)).samples
    }
    for record in lines(out):
        sample = samples[(record["runtime"], record["task_id"])]
        messages = [{"role": m.role, "content": m.text} for m in sample.messages]
        while messages[-1]["role"] != "assistant":
            messages.pop()
        assert record["messages"] == messages
        assert record["train"] == record["runtime"]  # scripted/<train> policies
        assert record["model"] == f"scripted/{record['runtime']}"
        observations = [m["content"] for m in record["messages"] if m["role"] == "user"][1:]
        assert observations and all(text.startswith("Observation:") for text in observations)
        has_globals = ["\nGlobals:" in text for text in observations]
        assert all(has_globals) if record["runtime"] == "persistent" else not any(has_globals)
        assert record["optimality"] == sample.scores["knapsack_scorer"].value["optimality"]


def test_react_round_trip(real_logs, tmp_path):
    out = tmp_path / "react.jsonl"
    export_traces([real_logs.react], out, ExportOptions(exclude_errors=True))
    for record in lines(out):
        assert record["agent"] == "react"
        names = {tool["function"]["name"] for tool in record["tools"]}
        assert names == {"list_items", "inspect", "take_item", "finish"}
        assert not any(tool["function"]["description"].startswith("attachment:") for tool in record["tools"])
        ids = [call["id"] for m in record["messages"] for call in m.get("tool_calls", [])]
        answered = [m["tool_call_id"] for m in record["messages"] if m["role"] == "tool"]
        assert set(answered) <= set(ids) and len(answered) >= len(ids) - len(record["messages"][-1].get("tool_calls", []))
        assert record["messages"][-1]["role"] == "assistant"


def test_matrix_with_scripted_students(tmp_path, capsys):
    log_dir = tmp_path / "matrix"
    args = [
        "matrix",
        "--student", "persistent=scripted/persistent",
        "--student", "stateless=scripted/stateless",
        "--runtimes", "persistent,stateless",
        "--difficulty", "easy",
        "--num", "2",
        "--log-dir", str(log_dir),
        "--max-samples", "2",
    ]  # fmt: skip
    assert main(args) == 0
    logs = sorted(log_dir.glob("*.eval"))
    assert len(logs) == 4
    cells = set()
    for path in logs:
        header = read_eval_log(str(path), header_only=True)
        assert header.status == "success" and header.eval.task_registry_name == "opaque_knapsack/knapsack"
        metadata = header.eval.metadata
        # Inspect's display and the log's task name say which cell this is
        assert header.eval.task == f"knapsack-{metadata['train']}-student-{metadata['runtime']}-runtime-easy"
        cells.add((metadata["train"], metadata["runtime"]))
        assert header.eval.task_args["runtime"] == metadata["runtime"]
        assert header.eval.task_args["num"] == 2 and header.eval.task_args["seed_start"] == 123456789
        assert header.eval.model == f"scripted/{metadata['train']}"
    assert cells == {(t, r) for t in ("persistent", "stateless") for r in ("persistent", "stateless")}
    assert main(args) == 0  # resume: nothing re-runs
    assert sorted(log_dir.glob("*.eval")) == logs
    summary = export_traces([log_dir], tmp_path / "all.jsonl", ExportOptions(dedup=False))
    assert summary.kept == 8
    assert {(r["train"], r["runtime"]) for r in lines(tmp_path / "all.jsonl")} == cells
