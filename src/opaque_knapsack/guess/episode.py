"""The guess family's episode and setup: the hidden number of one sample, mirrored to the store at the end."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from inspect_ai.solver import Generate, Solver, TaskState, solver

from opaque_knapsack.guess.environment import GuessEnvironment
from opaque_knapsack.guess.family import GUESS
from opaque_knapsack.solvers.episode import EnvironmentEpisode, HostFunction, note_runtime, register_episode

GUESS_STATE_KEY = "guess:environment"
"""Where the episode leaves the environment's state in the sample's store (the scorer reads it)."""


@dataclass
class GuessEpisode(EnvironmentEpisode[GuessEnvironment]):
    """This family's ``Episode``: the environment plus its step records."""

    family = GUESS

    def host_functions(self) -> Mapping[str, HostFunction]:
        return {"guess": self.environment.guess, "finish": self.environment.finish}

    def end(self, reason: str) -> None:
        self.sample_store.set(GUESS_STATE_KEY, self.environment.to_state())
        super().end(reason)


@solver
def guess_setup(require_runtime: bool = False) -> Solver:
    """Start the sample's hidden number from its metadata (always runs, even with --solver)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        note_runtime(state, require_runtime)
        metadata = state.metadata
        environment = GuessEnvironment(int(metadata["secret"]), int(metadata["low"]), int(metadata["high"]))
        register_episode(GuessEpisode(environment, state.store), state.store)
        return state

    return solve
