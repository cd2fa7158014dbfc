"""The Episode seam: the default episode around host functions, and finding the live episode."""

from __future__ import annotations

import pytest
from inspect_ai.util import Store

import opaque_knapsack.solvers.episode as episode_module
from opaque_knapsack.records import END_REASON_KEY, EPISODE_KEY, STEPS_KEY, StepRecord
from opaque_knapsack.solvers.episode import HostFunctionEpisode, live_episode, register_episode


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


def test_live_episode_finds_the_episode_of_any_family(monkeypatch) -> None:
    sample_store = Store()
    monkeypatch.setattr(episode_module, "store", lambda: sample_store)
    with pytest.raises(RuntimeError, match="No episode is active"):
        live_episode()
    other = HostFunctionEpisode({}, sample_store)
    register_episode(other, sample_store)
    assert sample_store.get(EPISODE_KEY) and live_episode() is other


def test_host_functions_make_a_family_of_their_own_documented_by_their_signatures() -> None:
    def bump(by: int = 1) -> int:
        """Add to the counter.

        Args:
            by: How much.
        """
        return by

    family = HostFunctionEpisode({"bump": bump}, Store()).family
    assert family.tools == ("bump", "finish")
    assert family.codeact_tool_docs.splitlines()[1:] == [
        "- bump(by: int = 1) -> int: Add to the counter.",
        "- finish() -> str: End the episode after the current step.",
    ]
    assert "knapsack" not in (family.codeact_instructions + family.codeact_tool_docs).lower()
