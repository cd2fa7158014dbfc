"""The ``scripted`` model provider: seeded latency, its -M arguments, and which family's policies it plays."""

from opaque_knapsack.knapsack import prompts as knapsack_prompts
from opaque_knapsack.knapsack.family import KNAPSACK
from opaque_knapsack.records import SEMANTICS
from opaque_knapsack.solvers import prompts


def _scripted(**model_args):
    from inspect_ai.model import get_model

    return get_model("scripted/persistent", **model_args)


def _task_input(task_text: str):
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser

    system = prompts.codeact_system_prompt(SEMANTICS["persistent"], family=KNAPSACK, max_tool_calls=25, max_turns=40)
    return [ChatMessageSystem(content=system), ChatMessageUser(content=task_text)]


def test_latency_jitter_is_seeded_by_task_and_turn():
    from opaque_knapsack.models.scripted import reply_delay

    delays = [reply_delay(2.0, 0.25, 7, f"0\0task {i}") for i in range(200)]
    assert all(1.5 <= d <= 2.5 for d in delays) and len(set(delays)) == 200
    assert min(delays) < 1.6 and max(delays) > 2.4  # spread over the whole band
    assert delays == [reply_delay(2.0, 0.25, 7, f"0\0task {i}") for i in range(200)]
    assert delays != [reply_delay(2.0, 0.25, 8, f"0\0task {i}") for i in range(200)]
    assert reply_delay(2.0, 0.0, 7, "x") == 2.0


async def test_latency_waits_on_the_event_loop_so_replies_overlap():
    import asyncio
    import time

    from inspect_ai.model import GenerateConfig

    model = _scripted(latency=1.0, jitter=0.0, family="knapsack")
    task = knapsack_prompts.task_statement(n_items=30, capacity=55, inspect_budget=21, class_names=["A", "B"])
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    started = time.monotonic()
    outputs = await asyncio.gather(
        *(model.api.generate(_task_input(task), [], "auto", GenerateConfig()) for _ in range(30))
    )
    elapsed = time.monotonic() - started
    tick_task.cancel()
    assert elapsed >= 1.0  # each reply waited its latency
    assert elapsed < 15.0  # 30 replies of 1 s overlapped instead of taking 30 s in turn
    assert ticks >= 10  # the loop kept running while they waited
    assert len({o.completion for o in outputs}) == 1 and "list_items()" in outputs[0].completion


def test_bad_latency_arguments_are_one_line_naming_them():
    import pytest

    with pytest.raises(ValueError, match=r"^-M latency='soon': expected a number of seconds >= 0$"):
        _scripted(latency="soon")
    with pytest.raises(ValueError, match=r"^-M jitter=2: expected a fraction from 0 to 1$"):
        _scripted(jitter=2)
    with pytest.raises(ValueError, match=r"not speed$"):
        _scripted(speed=1)
    with pytest.raises(ValueError, match=r"^-M family 'chess' is not a task family \(choices: knapsack, guess\)$"):
        _scripted(family="chess")


async def test_outside_a_sample_the_family_is_named_with_a_model_argument():
    import pytest
    from inspect_ai.model import GenerateConfig

    task = knapsack_prompts.task_statement(n_items=30, capacity=55, inspect_budget=21, class_names=["A", "B"])
    with pytest.raises(ValueError, match="-M family=NAME"):
        await _scripted().api.generate(_task_input(task), [], "auto", GenerateConfig())
    guess = await _scripted(family="guess").api.generate(_task_input("from 1 to 8"), [], "auto", GenerateConfig())
    assert "guess(n)" in guess.completion and "list_items" not in guess.completion
