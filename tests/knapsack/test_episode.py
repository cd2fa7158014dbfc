"""The knapsack family's episode: found among any family's, finished through its environment."""

from __future__ import annotations

import pytest
from inspect_ai.util import Store

import opaque_knapsack.solvers.episode as episode_module
from opaque_knapsack.knapsack import PRESETS, generate_instance
from opaque_knapsack.knapsack.episode import KnapsackEpisode, current_episode, start_episode
from opaque_knapsack.records import END_REASON_KEY
from opaque_knapsack.solvers.episode import HostFunctionEpisode, live_episode, register_episode


def test_current_episode_is_only_a_knapsack_one(monkeypatch) -> None:
    sample_store = Store()
    monkeypatch.setattr(episode_module, "store", lambda: sample_store)
    other = HostFunctionEpisode({}, sample_store)
    register_episode(other, sample_store)
    assert live_episode() is other
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
