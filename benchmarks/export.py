"""Export throughput on 1000 synthetic CodeAct episodes (~20 turns each).

Writes one ``.eval`` log with the inspect_ai.log APIs (header from a one-sample
mockllm run of a task named like ours, samples built directly), then times:

- baseline: ``read_eval_log`` of the same log (Inspect reading every sample);
- ``opaque-knapsack export`` (``export_traces``), OpenAI form, with a split;
- the same with ``--format sharegpt --exclude-errors --min-score 0.5``;
- the same as the first, cut at 8,192 characters (every episode is cut, and
  its tokens are counted whole and cut).

Every export cuts at the paper's 57,344 characters and counts the
conversations over 16,384 tokens (estimated: no tokenizer); the synthetic
episodes (about 15,000 characters) are shorter than the cut.

Run: ``python benchmarks/export.py [--episodes 1000] [--turns 20]``.
Goal: the export of 1000 episodes in under 30 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.log import EvalSample, read_eval_log, write_eval_log
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    ModelOutput,
    ModelUsage,
    get_model,
)
from inspect_ai.scorer import Score

from opaque_knapsack.records import AGENT_KEY, CODEACT, END_REASON_KEY, FINISHED, PERSISTENT, RUNTIME_KEY, SCORER_NAME
from opaque_knapsack.train.export import ExportOptions, export_traces

SYSTEM = "You are solving an Opaque Knapsack puzzle by writing Python code. " * 20
SCORE_KEYS = (
    "optimality solved capacity_utilization items_inspected steps tool_calls input_tokens output_tokens "
    "total_tokens name_error_episode name_error_count state_utilization reimport_rate symbol_lifespan"
).split()


def header_log(directory: Path):
    """A real log header for a task named like ours (one mockllm sample)."""

    def reply(messages, tools, tool_choice, config) -> ModelOutput:
        output = ModelOutput.from_content(model="mockllm/model", content="done")
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return output

    task = Task(dataset=[Sample(id="seed", input="x")], name="opaque_knapsack/knapsack")
    [log] = eval(
        task,
        model=get_model("mockllm/model", custom_outputs=reply),
        log_dir=str(directory),
        display="none",
        metadata={"train": "teacher"},
    )
    return log


def episode(index: int, turns: int) -> EvalSample:
    task_id = f"knapsack-{index:010d}"
    messages = [
        ChatMessageSystem(content=SYSTEM),
        ChatMessageUser(content=f"New knapsack instance {task_id}. Capacity 120. Inspect budget 30."),
    ]
    for turn in range(turns):
        code = "\n".join(f"info['item_{turn:06x}{k:06x}'] = json.loads(inspect('item_{turn:06x}{k:06x}'))" for k in range(6))
        messages.append(ChatMessageAssistant(content=f"Step {turn}: inspect six more items.\n```python\n{code}\n```"))
        if turn < turns - 1:
            observation = "\n".join(f'{{"class": "B", "value": {10 + k}, "weight": {5 + k}}}' for k in range(6))
            messages.append(ChatMessageUser(content=f"Observation:\n{observation}\nGlobals: budget, info, items, taken"))
    optimality = 1.0 if index % 3 == 0 else 0.8
    value = {key: 0.0 for key in SCORE_KEYS}
    value.update(optimality=optimality, solved=float(optimality == 1.0), steps=float(turns), total_tokens=9000.0)
    return EvalSample(
        id=task_id,
        epoch=1,
        input=messages[1].text,
        target="",
        messages=messages,
        output=ModelOutput.from_content(model="mockllm/model", content=messages[-1].text),
        scores={SCORER_NAME: Score(value=value)},
        metadata={"task_id": task_id, "difficulty": "easy"},
        store={RUNTIME_KEY: PERSISTENT, AGENT_KEY: CODEACT, END_REASON_KEY: FINISHED},
    )


def write_synthetic_log(directory: Path, episodes: int, turns: int) -> Path:
    log = header_log(directory / "header")
    log.samples = [episode(index, turns) for index in range(episodes)]
    log.eval.dataset.samples = episodes
    log.eval.dataset.sample_ids = [sample.id for sample in log.samples]
    log.eval.task_args = {"runtime": "persistent", "agent": "codeact"}
    path = directory / "synthetic.eval"
    write_eval_log(log, str(path))
    return path


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        start = time.perf_counter()
        log = write_synthetic_log(directory, args.episodes, args.turns)
        size = log.stat().st_size / 2**20
        print(f"wrote {args.episodes} episodes x {args.turns} turns: {size:.1f} MiB in {time.perf_counter() - start:.1f} s")
        rows = [
            ("baseline: read_eval_log (all samples)", timed(lambda: read_eval_log(str(log)))),
            (
                "export, openai, val 5%",
                timed(lambda: export_traces([log], directory / "a.jsonl", ExportOptions(val_fraction=0.05))),
            ),
            (
                "export, sharegpt, filters",
                timed(
                    lambda: export_traces(
                        [log],
                        directory / "b.jsonl",
                        ExportOptions(format="sharegpt", exclude_errors=True, min_score=0.5),
                    )
                ),
            ),
            (
                "export, openai, cut at 8,192 characters",
                timed(lambda: export_traces([log], directory / "c.jsonl", ExportOptions(truncate_at=8192))),
            ),
        ]
        written = (directory / "a.jsonl").stat().st_size / 2**20
    print(f"\n{'method':<40}{'seconds':>9}{'episodes/s':>12}{'vs baseline':>13}")
    baseline = rows[0][1]
    for name, seconds in rows:
        print(f"{name:<40}{seconds:>9.2f}{args.episodes / seconds:>12.0f}{seconds / baseline:>12.2f}x")
    print(f"\nexported JSONL: {written:.1f} MiB; goal: export under 30 s for 1000 episodes on 2 cores")


if __name__ == "__main__":
    main()
