"""Episodes per second for the offline 2x2, against Inspect's own per-episode cost.

For each concurrency setting this runs, in the same process:

- harness: the 2x2 (scripted/persistent and scripted/stateless, each in the
  persistent and stateless runtimes) on NUM easy instances through
  ``inspect_ai.eval`` -- the real task, sandboxes, kernels, tools and scorer;
- trivial baseline: Inspect's ``mockllm/model`` on a trivial task with the same
  number of samples and the same number of model turns per sample (the
  harness's mean steps), short messages, no sandbox, no tools: Inspect's own
  per-episode cost for that many turns;
- replay baseline: ``mockllm/model`` replaying exactly the conversations the
  harness produced (the same replies and observations, turn by turn), no
  sandbox, no tools, no scoring: what Inspect costs for the same content, so
  that harness - replay is what the runtime, tools, policy and scorer add.

    python benchmarks/eval_throughput.py [--num 100] [--concurrency 8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("INSPECT_LOG_LEVEL", "error")

from inspect_ai import Task  # noqa: E402
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample  # noqa: E402
from inspect_ai.model import (  # noqa: E402
    ChatMessageAssistant,
    ChatMessageUser,
    ModelOutput,
    ModelUsage,
    get_model,
)
from inspect_ai.scorer import match  # noqa: E402
from inspect_ai.solver import Generate, TaskState, solver  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from opaque_knapsack.knapsack import knapsack  # noqa: E402

Conversation = list[tuple[str, str | None]]  # (assistant reply, following observation)


def _output(text: str) -> ModelOutput:
    """A mockllm reply with usage set (mockllm's own token count needs the network)."""
    output = ModelOutput.from_content("mockllm/model", text)
    output.usage = ModelUsage(input_tokens=100, output_tokens=10, total_tokens=110)
    return output


@solver
def replay(conversations: dict[str, Conversation], delay: Callable[[int, TaskState], float] | None = None):  # type: ignore[no-untyped-def]
    """Call the model once per recorded turn and append the recorded observation.

    ``delay(turn, state)`` seconds pass before each reply: the baseline of a
    model with latency (benchmarks/scale.py) replays the same way.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        turns = conversations[str(state.sample_id)]
        replies = iter([_output(reply) for reply, _ in turns])
        model = get_model("mockllm/model", custom_outputs=lambda *args: next(replies), memoize=False)
        for turn, (_, observation) in enumerate(turns):
            if delay is not None:
                await asyncio.sleep(delay(turn, state))
            output = await model.generate(state.messages)
            state.messages.append(output.message)
            if observation is not None:
                state.messages.append(ChatMessageUser(content=observation))
        return state

    return solve


def run_harness(num: int, concurrency: int, log_dir: str) -> tuple[float, list[Any]]:
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
        score_display=False,  # no display: skip Inspect's running metrics (both sides)
    )
    elapsed = time.perf_counter() - started
    assert all(log.status == "success" for log in logs), [log.error for log in logs]
    return elapsed, logs


def conversations_of(logs: list[Any]) -> list[tuple[str, Conversation, str]]:
    """(sample id, turns, task statement) for every episode the harness ran."""
    episodes = []
    for index, log in enumerate(logs):
        for sample in log.samples:
            messages = sample.messages
            turns: Conversation = []
            for position, message in enumerate(messages):
                if isinstance(message, ChatMessageAssistant):
                    following = messages[position + 1] if position + 1 < len(messages) else None
                    turns.append((message.text, following.text if following is not None else None))
            episodes.append((f"{index}-{sample.id}", turns, messages[1].text))
    return episodes


def run_trivial(episodes: int, turn_count: int, concurrency: int, log_dir: str) -> float:
    conversations = {str(i): [("```python\nprint('ok')\n```", "Observation: ok")] * turn_count for i in range(episodes)}
    return _run_replay([(str(i), "Say something.") for i in range(episodes)], conversations, concurrency, log_dir)


def run_replayed(episodes: list[tuple[str, Conversation, str]], concurrency: int, log_dir: str) -> float:
    conversations = {sample_id: turns for sample_id, turns, _ in episodes}
    return _run_replay([(sample_id, task) for sample_id, _, task in episodes], conversations, concurrency, log_dir)


def _run_replay(samples: list[tuple[str, str]], conversations: dict[str, Conversation], concurrency: int, log_dir: str) -> float:
    quarter = -(-len(samples) // 4)
    tasks = [
        Task(
            name=f"replay_{index}",
            dataset=MemoryDataset(
                [Sample(id=sample_id, input=text, target="x") for sample_id, text in samples[index * quarter : (index + 1) * quarter]]
            ),
            solver=replay(conversations),
            scorer=match(),
        )
        for index in range(4)
    ]
    started = time.perf_counter()
    logs = inspect_eval(
        tasks, model="mockllm/model", log_dir=log_dir, display="none", max_samples=concurrency, max_tasks=4,
        score_display=False,
    )
    assert all(log.status == "success" for log in logs), [log.error for log in logs]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=100, help="instances per condition (default: 100)")
    parser.add_argument("--concurrency", default="8,32", help="max_samples settings (default: 8,32)")
    args = parser.parse_args()

    table = Table(title=f"2x2 offline eval throughput ({4 * args.num} episodes per row)")
    for column in ("max_samples", "harness s", "episodes/s", "ms/episode", "steps/ep",
                   "trivial ms/ep", "vs trivial", "replay ms/ep", "vs replay"):
        table.add_column(column, justify="right")
    for concurrency in (int(c) for c in args.concurrency.split(",")):
        with tempfile.TemporaryDirectory() as log_dir:
            elapsed, logs = run_harness(args.num, concurrency, log_dir)
            recorded = conversations_of(logs)
        episodes = len(recorded)
        steps = sum(len(turns) for _, turns, _ in recorded) / episodes
        with tempfile.TemporaryDirectory() as log_dir:
            trivial = run_trivial(episodes, max(1, round(steps)), concurrency, log_dir)
        with tempfile.TemporaryDirectory() as log_dir:
            replayed = run_replayed(recorded, concurrency, log_dir)
        table.add_row(
            str(concurrency),
            f"{elapsed:.1f}",
            f"{episodes / elapsed:.1f}",
            f"{1000 * elapsed / episodes:.1f}",
            f"{steps:.1f}",
            f"{1000 * trivial / episodes:.1f}",
            f"{elapsed / trivial - 1:+.0%}",
            f"{1000 * replayed / episodes:.1f}",
            f"{elapsed / replayed - 1:+.0%}",
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
