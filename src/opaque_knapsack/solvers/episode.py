"""One sample's knapsack episode: the hidden environment and its records.

The environment object (hidden items, budget counters) lives only here, in the
harness process. The agent reaches it through host functions forwarded by the
runtime's kernel, or through native Inspect tools; neither hands the object
itself to the model or the interpreter.

What the scorer needs is mirrored into the sample's store (the environment's
mutable state and one record per step), so a log can be re-scored with
``inspect score`` without the live object.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any, Literal

from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import Store, store

from opaque_knapsack.family import KnapsackEnvironment, KnapsackToolError, TaskInstance
from opaque_knapsack.records import (
    END_REASON_KEY,
    ENVIRONMENT_KEY,
    EPISODE_KEY,
    STEPS_KEY,
    STRICT_TAKE_KEY,
    TOOL_NAMES,
    StepRecord,
    instance_from_metadata,
)

EndReason = Literal["finished", "turn_limit", "model_error", "context_length"]


@dataclass
class KnapsackEpisode:
    """The live environment of one sample plus its step records."""

    environment: KnapsackEnvironment
    sample_store: Store
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def instance(self) -> TaskInstance:
        return self.environment.instance

    def call(self, name: str, *args: Any, **kwargs: Any) -> str:
        """Run one tool on the hidden environment; errors raise KnapsackToolError."""
        if name not in TOOL_NAMES:
            raise KnapsackToolError(f"Unknown tool {name!r}.")
        method = getattr(self.environment, name)
        try:
            return method(*args, **kwargs)
        except TypeError as error:  # wrong arity from the agent's code
            raise KnapsackToolError(f"{name}(): {error}") from None

    def host_functions(self) -> dict[str, Any]:
        """Named callables the runtime's kernel forwards its tool stubs to."""

        def bind(name: str) -> Any:
            def host_function(*args: Any, **kwargs: Any) -> str:
                return self.call(name, *args, **kwargs)

            host_function.__name__ = name
            return host_function

        return {name: bind(name) for name in TOOL_NAMES}

    def record(self, step: StepRecord) -> None:
        """Keep a step's record; it reaches the store with the next ``sync``."""
        self.steps.append(step)

    def sync(self) -> None:
        """Mirror the environment and step records into the sample's store."""
        self.sample_store.set(ENVIRONMENT_KEY, self.environment.to_state())
        self.sample_store.set(STEPS_KEY, [step.to_dict() for step in self.steps])

    def end(self, reason: EndReason | str) -> None:
        self.sample_store.set(END_REASON_KEY, reason)
        self.sync()


# Live episodes, keyed by the id written into each sample's store; an entry is
# dropped when its sample's store is garbage collected.
_LIVE: dict[str, KnapsackEpisode] = {}


def start_episode(instance: TaskInstance, *, strict_take: bool, sample_store: Store | None = None) -> KnapsackEpisode:
    sample_store = sample_store if sample_store is not None else store()
    episode = KnapsackEpisode(KnapsackEnvironment(instance, strict_take=strict_take), sample_store)
    key = uuid.uuid4().hex
    _LIVE[key] = episode
    weakref.finalize(sample_store, _LIVE.pop, key, None)
    sample_store.set(EPISODE_KEY, key)
    sample_store.set(STRICT_TAKE_KEY, strict_take)
    episode.sync()
    return episode


def current_episode() -> KnapsackEpisode:
    """The episode of the sample this code runs in."""
    key = store().get(EPISODE_KEY)
    episode = _LIVE.get(key) if key else None
    if episode is None:
        raise RuntimeError(
            "No knapsack episode is active for this sample: the knapsack tools and "
            "runtime only work inside a sample of the opaque_knapsack/knapsack task "
            "(its setup step starts the episode)."
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
        from opaque_knapsack.sandboxes import runtime_sandbox

        try:
            state.metadata["runtime"] = runtime_sandbox().semantics
        except (TypeError, ValueError, RuntimeError, ProcessLookupError) as error:
            if require_runtime:
                raise RuntimeError(
                    f"the CodeAct agent needs a Python runtime sandbox: {error}. Use "
                    "-T runtime=persistent|stateless or --sandbox persistent_python|stateless_python."
                ) from None
        start_episode(instance_from_metadata(state.metadata), strict_take=strict_take, sample_store=state.store)
        return state

    return solve
