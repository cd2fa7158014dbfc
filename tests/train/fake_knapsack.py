"""A stand-in for the opaque_knapsack/knapsack task, for export and matrix tests.

It produces logs shaped like the real task's (contract in CONTRACTS.md): a
CodeAct conversation (system, task, assistant with a ```python block, user
"Observation: ..." with a "Globals: ..." line in the persistent runtime, ...,
final assistant) or a ReAct one with native tool calls; the harness's store
keys; and a ``knapsack_scorer`` whose value is the contract's dict. The model
is ``mockllm/model`` driven by a callable, so every turn is deterministic.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.log import EvalLog
from inspect_ai.model import (
    ChatMessage,
    ChatMessageSystem,
    ChatMessageUser,
    ModelOutput,
    ModelUsage,
    get_model,
)
from inspect_ai.scorer import Score, Target, mean, scorer, stderr
from inspect_ai.solver import Generate, TaskState, solver
from inspect_ai.tool import tool

SCORE_KEYS = (
    "optimality solved capacity_utilization items_inspected steps tool_calls input_tokens "
    "output_tokens total_tokens name_error_episode name_error_count state_utilization "
    "reimport_rate symbol_lifespan"
).split()

CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def task_id(index: int) -> str:
    return f"knapsack-{index:010d}"


def optimality_of(index: int) -> float:
    """Deterministic per-task score: every third task is solved."""
    return 1.0 if index % 3 == 0 else round(0.5 + 0.1 * (index % 5), 2)


def codeact_turn(turn: int, turns: int) -> str:
    if turn == turns - 1:
        return "I have taken the best items I found. Done."
    return f"Step {turn}: inspect the next item.\n```python\nitem_{turn} = inspect('item_{turn:012x}')\nprint(item_{turn})\n```"


def with_usage(output: ModelOutput, messages) -> ModelOutput:
    """Set token usage ourselves: mockllm would otherwise count with tiktoken (a download)."""
    prompt = sum(len(message.text) for message in messages) // 4
    completion = len(output.completion) // 4 + 1
    output.usage = ModelUsage(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)
    return output


def codeact_model(turns: int):
    """Callable mockllm outputs: the reply depends only on how many turns came before."""

    def outputs(messages, tools, tool_choice, config) -> ModelOutput:
        turn = sum(1 for message in messages if message.role == "assistant")
        output = ModelOutput.from_content(model="mockllm/model", content=codeact_turn(turn, turns))
        return with_usage(output, messages)

    return outputs


def react_model(turns: int):
    def outputs(messages, tools, tool_choice, config) -> ModelOutput:
        turn = sum(1 for message in messages if message.role == "assistant")
        if turn < turns - 2:
            output = ModelOutput.for_tool_call(
                "mockllm/model", "inspect", {"item_id": f"item_{turn:012x}"}, content=f"Inspecting item {turn}."
            )
        elif turn == turns - 2:
            output = ModelOutput.for_tool_call("mockllm/model", "finish", {})
        else:
            output = ModelOutput.from_content(model="mockllm/model", content="Finished.")
        return with_usage(output, messages)

    return outputs


@solver
def fake_codeact(runtime: str, end_reason: str = "finished"):
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.store.set("knapsack:runtime", runtime)
        state.store.set("knapsack:agent", "codeact")
        model = get_model()
        while True:
            output = await model.generate(state.messages)
            state.messages.append(output.message)
            match = CODE_BLOCK.search(output.message.text)
            if not match:
                break
            name = re.search(r"(item_\d+) =", match.group(1)).group(1)
            observation = 'Observation: {"class": "A", "value": 10, "weight": 5}'
            if runtime == "persistent":
                observation += f"\nGlobals: {name}"
            state.messages.append(ChatMessageUser(content=observation))
        state.store.set("knapsack:end_reason", end_reason)
        return state

    return solve


@tool(name="inspect")
def inspect_tool():
    async def execute(item_id: str) -> str:
        """Inspect one item.

        Args:
            item_id: The opaque id of the item.
        """
        if item_id == "item_000000000001":
            from inspect_ai.tool import ToolError

            raise ToolError("Unknown item id 'item_000000000001'.")
        return '{"class": "A", "value": 10, "weight": 5}'

    return execute


@tool
def finish():
    async def execute() -> str:
        """End the episode."""
        return "Episode finished."

    return execute


@solver
def fake_react(runtime: str):
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.store.set("knapsack:runtime", runtime)
        state.store.set("knapsack:agent", "react")
        state.tools = [inspect_tool(), finish()]
        state = await generate(state, tool_calls="loop")
        state.store.set("knapsack:end_reason", "finished")
        return state

    return solve


@scorer(metrics={"*": [mean(), stderr()]}, name="knapsack_scorer")
def knapsack_scorer():
    async def score(state: TaskState, target: Target) -> Score:
        index = int(state.metadata["task_id"].split("-")[1])
        optimality = round(optimality_of(index) * state.metadata.get("quality", 1.0), 3)
        value = {key: 0.0 for key in SCORE_KEYS}
        steps = sum(1 for message in state.messages if message.role == "assistant")
        value.update(
            optimality=optimality,
            solved=1.0 if optimality == 1.0 else 0.0,
            steps=float(steps),
            total_tokens=float(100 * steps),
        )
        return Score(value=value)

    return score


def fake_task(
    runtime: str = "persistent",
    difficulty: str = "easy",
    num: int = 3,
    seed_start: int = 0,
    agent: str = "codeact",
    end_reason: str = "finished",
    name: str = "opaque_knapsack/knapsack",
    quality: float = 1.0,
) -> Task:
    samples = [
        Sample(
            id=task_id(seed_start + index),
            input=f"Solve knapsack instance {seed_start + index}. Items: item_000000000000 ... item_000000000009. Capacity 30.",
            metadata={"task_id": task_id(seed_start + index), "difficulty": difficulty, "quality": quality},
        )
        for index in range(num)
    ]
    system = ChatMessageSystem(content=f"You are a CodeAct agent. Runtime: {runtime}.")
    for sample in samples:
        sample.input = [system, ChatMessageUser(content=sample.input)]
    solver_ = fake_react(runtime) if agent == "react" else fake_codeact(runtime, end_reason)
    return Task(dataset=samples, solver=solver_, scorer=knapsack_scorer(), name=name)


def run_fake(
    log_dir: Path,
    *,
    runtime: str = "persistent",
    agent: str = "codeact",
    num: int = 3,
    seed_start: int = 0,
    turns: int = 4,
    end_reason: str = "finished",
    metadata: dict[str, Any] | None = None,
    name: str = "opaque_knapsack/knapsack",
    quality: float = 1.0,
) -> EvalLog:
    """Run the fake task once and return its log (header and samples)."""
    outputs = react_model(turns) if agent == "react" else codeact_model(turns)
    task = fake_task(
        runtime, num=num, seed_start=seed_start, agent=agent, end_reason=end_reason, name=name, quality=quality
    )
    [log] = eval(
        task,
        model=get_model("mockllm/model", custom_outputs=outputs),
        log_dir=str(log_dir),
        display="none",
        metadata=metadata,
        task_args={"runtime": runtime, "agent": agent},
    )
    assert log.status == "success", log.error.message if log.error else log.status
    return log


def hand_built_log(source: Path, out: Path, episodes: list[tuple[list[ChatMessage], list[dict[str, Any]]]]) -> Path:
    """A log at OUT like the one in SOURCE, whose samples hold exactly the given (messages, step records).

    For conversations no model run produces on demand: a signed thought, a
    blocked prompt, a safety stop, an over-long trace. Sample i is task
    ``knapsack-00000001ii``; its scores and the rest of its store are those of
    SOURCE's first sample.
    """
    from inspect_ai.log import read_eval_log, write_eval_log

    from opaque_knapsack.records import STEPS_KEY

    [path] = sorted(source.glob("*.eval"))
    log = read_eval_log(str(path))
    template = log.samples[0]
    samples = []
    for index, (messages, steps) in enumerate(episodes):
        sample = template.model_copy(deep=True)
        sample.id = task_id(100 + index)
        sample.metadata = {**sample.metadata, "task_id": sample.id}
        sample.messages = messages
        sample.store = {**sample.store, STEPS_KEY: steps}
        samples.append(sample)
    log.samples = samples
    log.eval.dataset.samples = len(samples)
    log.eval.dataset.sample_ids = [sample.id for sample in samples]
    log.results = None
    write_eval_log(log, str(out))
    return out
