"""The knapsack family's episode: the hidden environment of one sample, its tools and its setup.

The environment object (hidden items, budget counters) lives only here, in the
harness process. The agent reaches it through host functions forwarded by the
runtime's kernel, or through native Inspect tools; neither hands the object
itself to the model or the interpreter. What the scorer needs is mirrored into
the sample's store (the environment's mutable state and one record per step),
so a log can be re-scored with ``inspect score`` without the live object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import Store, store

from opaque_knapsack.knapsack.environment import KnapsackEnvironment, KnapsackToolError
from opaque_knapsack.knapsack.family import KNAPSACK
from opaque_knapsack.knapsack.prompts import strict_take_clause
from opaque_knapsack.knapsack.schema import TaskInstance, instance_from_metadata
from opaque_knapsack.records import ENVIRONMENT_KEY, STRICT_TAKE_KEY, TOOL_NAMES, EndReason
from opaque_knapsack.solvers.episode import (
    EnvironmentEpisode,
    HostFunction,
    live_episode,
    note_runtime,
    register_episode,
)


@dataclass
class KnapsackEpisode(EnvironmentEpisode[KnapsackEnvironment]):
    """The live knapsack environment of one sample plus its step records."""

    family = KNAPSACK

    @property
    def instance(self) -> TaskInstance:
        return self.environment.instance

    def prompt_values(self) -> dict[str, object]:
        return {"strict_take_clause": strict_take_clause(self.environment.strict_take)}

    def call(self, name: str, *args: Any, **kwargs: Any) -> str:
        """Run one tool on the hidden environment; errors raise KnapsackToolError."""
        if name not in TOOL_NAMES:
            raise KnapsackToolError(f"Unknown tool {name!r}.")
        method = getattr(self.environment, name)
        try:
            return method(*args, **kwargs)
        except TypeError as error:  # wrong arity from the agent's code
            raise KnapsackToolError(f"{name}(): {error}") from None

    def host_functions(self) -> dict[str, HostFunction]:
        """Named callables the runtime's kernel forwards its tool stubs to."""

        def bind(name: str) -> HostFunction:
            def host_function(*args: Any, **kwargs: Any) -> str:
                return self.call(name, *args, **kwargs)

            host_function.__name__ = name
            return host_function

        return {name: bind(name) for name in TOOL_NAMES}

    def sync(self) -> None:
        """Mirror the environment and step records into the sample's store."""
        self.sample_store.set(ENVIRONMENT_KEY, self.environment.to_state())
        self.store_steps()

    def end(self, reason: EndReason | str) -> None:
        self.sample_store.set(ENVIRONMENT_KEY, self.environment.to_state())
        super().end(reason)


def start_episode(instance: TaskInstance, *, strict_take: bool, sample_store: Store | None = None) -> KnapsackEpisode:
    sample_store = sample_store if sample_store is not None else store()
    episode = KnapsackEpisode(KnapsackEnvironment(instance, strict_take=strict_take), sample_store)
    register_episode(episode, sample_store)
    sample_store.set(STRICT_TAKE_KEY, strict_take)
    # The environment and step records reach the store at the episode's end (and
    # after each of the Inspect tools' calls), not here: an empty state written now
    # makes Inspect log the final one as a change per list element (~100 per
    # episode, each copied and walked again when the sample is logged) instead of
    # one value. The scorer reads a missing environment as the empty one.
    return episode


def current_episode() -> KnapsackEpisode:
    """The knapsack episode of the sample this code runs in."""
    episode = live_episode()
    if not isinstance(episode, KnapsackEpisode):
        raise RuntimeError(
            f"This sample's episode is a {type(episode).__name__}, not a knapsack episode: "
            "the knapsack tools only work inside a sample of the opaque_knapsack/knapsack task."
        )
    return episode


@solver
def knapsack_setup(strict_take: bool = True, require_runtime: bool = False) -> Solver:
    """Start the sample's hidden environment (always runs, even with --solver).

    Records which runtime the sample really got (``--sandbox`` may override
    the task's ``runtime``) in the sample's metadata, and with
    ``require_runtime`` fails before the first model call when the sandbox is
    not one of ours.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        note_runtime(state, require_runtime)
        start_episode(instance_from_metadata(state.metadata), strict_take=strict_take, sample_store=state.store)
        return state

    return solve
