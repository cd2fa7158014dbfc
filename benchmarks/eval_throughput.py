"""Episodes per second for the offline 2x2, against Inspect's own per-sample cost.

For each concurrency setting this runs, in the same process:

- harness: the 2x2 (scripted/persistent and scripted/stateless, each in the
  persistent and stateless runtimes) on NUM easy instances through
  ``inspect_ai.eval`` -- the real task, sandboxes, kernels, tools and scorer;
- baseline: Inspect's ``mockllm/model`` on a trivial task with the same number
  of samples and the same number of model turns per sample (mean steps of the
  harness run), no sandbox and no tools: what Inspect itself costs per episode.

The harness's overhead is (harness time per episode) / (baseline time per
episode) - 1. Goal: at most 20%, and 400 episodes in under 60 s on a 2-core
machine.

    python benchmarks/eval_throughput.py [--num 100] [--concurrency 16,64]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("INSPECT_LOG_LEVEL", "error")

from inspect_ai import Task, eval as inspect_eval  # noqa: E402
from inspect_ai.dataset import MemoryDataset, Sample  # noqa: E402
from inspect_ai.model import ChatMessageUser, ModelOutput, ModelUsage, get_model  # noqa: E402
from inspect_ai.scorer import match  # noqa: E402
from inspect_ai.solver import Generate, TaskState, solver  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from opaque_knapsack.inspect_tasks import knapsack  # noqa: E402


@solver
def turns(count: int):  # type: ignore[no-untyped-def]
    """Call the model `count` times, appending a short user message after each."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model("mockllm/model", custom_outputs=_mock_reply)
        for _ in range(count):
            output = await model.generate(state.messages)
            state.messages.append(output.message)
            state.messages.append(ChatMessageUser(content="Observation: ok"))
        return state

    return solve


def _mock_reply(input, tools, tool_choice, config) -> ModelOutput:  # type: ignore[no-untyped-def]
    """A fixed reply with usage set (mockllm's own token count needs the network)."""
    output = ModelOutput.from_content("mockllm/model", "```python\nprint('ok')\n```")
    output.usage = ModelUsage(input_tokens=100, output_tokens=10, total_tokens=110)
    return output


def run_harness(num: int, concurrency: int, log_dir: str) -> tuple[float, int, float]:
    tasks = [knapsack(num=num, runtime="persistent"), knapsack(num=num, runtime="stateless")]
    started = time.perf_counter()
    logs = inspect_eval(
        tasks,
        model=["scripted/persistent", "scripted/stateless"],
        log_dir=log_dir,
        display="none",
        max_samples=concurrency,
        max_sandboxes=concurrency,
        max_tasks=4,
    )
    elapsed = time.perf_counter() - started
    assert all(log.status == "success" for log in logs), [log.error for log in logs]
    episodes = sum(len(log.samples or []) for log in logs)
    steps = [
        score.metrics["mean"].value
        for log in logs
        for score in log.results.scores
        if score.name == "steps"
    ]
    return elapsed, episodes, sum(steps) / len(steps)


def run_baseline(episodes: int, turn_count: int, concurrency: int, log_dir: str) -> float:
    per_task = episodes // 4
    tasks = [
        Task(
            name=f"trivial_{index}",
            dataset=MemoryDataset([Sample(id=i, input="Say something.", target="x") for i in range(per_task)]),
            solver=turns(turn_count),
            scorer=match(),
        )
        for index in range(4)
    ]
    started = time.perf_counter()
    logs = inspect_eval(
        tasks, model="mockllm/model", log_dir=log_dir, display="none", max_samples=concurrency, max_tasks=4
    )
    assert all(log.status == "success" for log in logs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=100, help="instances per condition (default: 100)")
    parser.add_argument("--concurrency", default="8,32,100", help="max_samples settings (default: 8,32,100)")
    args = parser.parse_args()

    table = Table(title=f"2x2 offline eval throughput ({4 * args.num} episodes per row)")
    for column in ("max_samples", "harness s", "episodes/s", "ms/episode", "steps/ep",
                   "baseline s", "baseline ms/ep", "overhead"):
        table.add_column(column, justify="right")
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        with tempfile.TemporaryDirectory() as log_dir:
            elapsed, episodes, steps = run_harness(args.num, concurrency, log_dir)
        with tempfile.TemporaryDirectory() as log_dir:
            baseline = run_baseline(episodes, max(1, round(steps)), concurrency, log_dir)
        table.add_row(
            str(concurrency),
            f"{elapsed:.1f}",
            f"{episodes / elapsed:.1f}",
            f"{1000 * elapsed / episodes:.1f}",
            f"{steps:.1f}",
            f"{baseline:.1f}",
            f"{1000 * baseline / episodes:.1f}",
            f"{elapsed / baseline - 1:+.0%}",
        )
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
