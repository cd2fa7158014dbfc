"""The Episode seam: the default episode around host functions, and finding the live episode."""

from __future__ import annotations

import pytest
from inspect_ai.util import Store

import opaque_knapsack.solvers.episode as episode_module
from opaque_knapsack.family import PRESETS, generate_instance
from opaque_knapsack.records import END_REASON_KEY, EPISODE_KEY, STEPS_KEY, StepRecord
from opaque_knapsack.solvers.episode import (
    HostFunctionEpisode,
    KnapsackEpisode,
    current_episode,
    live_episode,
    register_episode,
    start_episode,
)


def test_finish_ends_the_default_episode_and_keeps_its_own_answer() -> None:
    calls: list[str] = []

    def finish() -> str:
        """Hand in."""
        calls.append("finish")
        return "handed in"

    episode = HostFunctionEpisode({"finish": finish}, Store())
    functions = episode.host_functions()
    assert not episode.finished
    assert functions["finish"]() == "handed in" and calls == ["finish"]
    assert episode.finished
    assert functions["finish"].__doc__ == "Hand in."  # the kernel shows the tool's own doc


def test_a_failing_finish_does_not_end_the_episode() -> None:
    def finish() -> str:
        raise ValueError("not yet: take an item first")

    episode = HostFunctionEpisode({"finish": finish}, Store())
    with pytest.raises(ValueError, match="not yet"):
        episode.host_functions()["finish"]()
    assert not episode.finished


def test_functions_without_finish_get_one() -> None:
    episode = HostFunctionEpisode({"add": lambda a, b: a + b}, Store())
    functions = episode.host_functions()
    assert sorted(functions) == ["add", "finish"]
    assert functions["add"](2, 3) == 5 and not episode.finished
    functions["finish"]()
    assert episode.finished


def test_default_episode_stores_steps_and_the_end_reason() -> None:
    sample_store = Store()
    episode = HostFunctionEpisode({}, sample_store)
    episode.record(StepRecord(turn=1, code="print(1)", tool_calls=0, total_tokens=12))
    assert [step["turn"] for step in sample_store.get(STEPS_KEY)] == [1]
    episode.record(StepRecord(turn=2, code=None))
    episode.end("turn_limit")
    assert sample_store.get(END_REASON_KEY) == "turn_limit"
    assert [step["code"] for step in sample_store.get(STEPS_KEY)] == ["print(1)", None]


def test_live_episode_finds_any_family_and_current_episode_only_knapsack(monkeypatch) -> None:
    sample_store = Store()
    monkeypatch.setattr(episode_module, "store", lambda: sample_store)
    with pytest.raises(RuntimeError, match="No episode is active"):
        live_episode()
    other = HostFunctionEpisode({}, sample_store)
    register_episode(other, sample_store)
    assert sample_store.get(EPISODE_KEY) and live_episode() is other
    with pytest.raises(RuntimeError, match="HostFunctionEpisode, not a knapsack episode"):
        current_episode()
    knapsack = start_episode(generate_instance(PRESETS["easy"], 0, 0), strict_take=True, sample_store=sample_store)
    assert isinstance(knapsack, KnapsackEpisode)
    assert live_episode() is knapsack and current_episode() is knapsack


def test_knapsack_episode_finishes_through_its_environment() -> None:
    episode = start_episode(generate_instance(PRESETS["easy"], 0, 0), strict_take=True, sample_store=Store())
    functions = episode.host_functions()
    assert sorted(functions) == ["finish", "inspect", "list_items", "take_item"]
    assert not episode.finished
    functions["finish"]()
    assert episode.finished
    episode.end("finished")
    assert episode.sample_store.get(END_REASON_KEY) == "finished"
