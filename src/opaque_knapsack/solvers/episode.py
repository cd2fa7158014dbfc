"""One sample's episode: what an agent's turn loop drives, and the knapsack one.

``Episode`` is the seam between the agents and a task family: the host
functions the runtime forwards to, where step records go, whether the agent
has finished, and how the episode ends. ``KnapsackEpisode`` is the knapsack
family's; ``HostFunctionEpisode`` is the default for people who bring their
own host functions to the CodeAct agent; a new family registers its own with
``register_episode`` in its setup solver.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.util import Store, store

from opaque_knapsack.family import KnapsackEnvironment, KnapsackToolError, TaskInstance
from opaque_knapsack.records import (
    END_REASON_KEY,
    ENVIRONMENT_KEY,
    EPISODE_KEY,
    RUNTIME_METADATA_KEY,
    STEPS_KEY,
    STRICT_TAKE_KEY,
    TOOL_NAMES,
    EndReason,
    StepRecord,
    instance_from_metadata,
)

HostFunction = Callable[..., object]
"""A tool the runtime's kernel forwards its stub to: plain values in, a JSON-able value out."""


class Episode(Protocol):
    """What an agent's turn loop needs of one sample's episode, whatever the task family."""

    def host_functions(self) -> Mapping[str, HostFunction]:
        """The tools, by name, bound to this sample's hidden state."""
        ...

    def record(self, step: StepRecord) -> None:
        """Keep one assistant turn's record (the scorer reads them back from the store)."""
        ...

    @property
    def finished(self) -> bool:
        """The agent asked to end the episode (``finish()``): the loop stops after this step."""
        ...

    def end(self, reason: str) -> None:
        """Store why the episode ended, and everything the scorer reads."""
        ...


FINISH_TOOL = "finish"


class StoredSteps:
    """Step records mirrored into the sample's store under the keys every reader uses.

    Each family's episode (a dataclass with ``sample_store`` and ``steps``)
    takes these from here, so scorers and export read every family alike.
    """

    sample_store: Store
    steps: list[StepRecord]

    def record(self, step: StepRecord) -> None:
        """Keep a step's record; it reaches the store with the next ``store_steps``."""
        self.steps.append(step)

    def store_steps(self) -> None:
        self.sample_store.set(STEPS_KEY, [step.to_dict() for step in self.steps])

    def end(self, reason: str) -> None:
        self.sample_store.set(END_REASON_KEY, reason)
        self.store_steps()


class Finishable(Protocol):
    """A family's hidden environment, as far as its episode needs: whether the agent asked to finish."""

    @property
    def finished(self) -> bool: ...


EnvironmentT = TypeVar("EnvironmentT", bound=Finishable)


@dataclass
class EnvironmentEpisode(StoredSteps, Generic[EnvironmentT]):
    """An episode around one sample's hidden environment: it has finished when the environment has.

    A task family's episode extends this with its host functions (and what it mirrors at the end).
    """

    environment: EnvironmentT
    sample_store: Store
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.environment.finished


@dataclass
class HostFunctionEpisode(StoredSteps):
    """The default ``Episode`` around host functions someone brings to the CodeAct agent.

    Steps go to the store under the same keys the knapsack episode uses, so
    scorers and export read them alike. A call of ``finish`` that returns
    ends the loop; without a ``finish`` among the functions one is added, so
    every episode can end by the agent's choice.
    """

    functions: Mapping[str, HostFunction]
    sample_store: Store
    steps: list[StepRecord] = field(default_factory=list)
    finish_called: bool = False

    @property
    def finished(self) -> bool:
        return self.finish_called

    def host_functions(self) -> dict[str, HostFunction]:
        functions = dict(self.functions)
        finish = functions.get(FINISH_TOOL, _default_finish)

        def finish_and_end(*args: object, **kwargs: object) -> object:
            value = finish(*args, **kwargs)
            self.finish_called = True
            return value

        finish_and_end.__name__ = FINISH_TOOL
        finish_and_end.__doc__ = finish.__doc__
        functions[FINISH_TOOL] = finish_and_end
        return functions

    def record(self, step: StepRecord) -> None:
        super().record(step)
        self.store_steps()


def _default_finish() -> str:
    """End the episode after the current step."""
    return "Episode finished."


@dataclass
class KnapsackEpisode(EnvironmentEpisode[KnapsackEnvironment]):
    """The live knapsack environment of one sample plus its step records."""

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


def register_episode(episode: Episode, sample_store: Store) -> None:
    """Make ``episode`` the live episode of the sample that owns ``sample_store``.

    A task family's setup solver calls this; the agents find it with
    ``live_episode``. The object itself never leaves the harness process.
    """
    from opaque_knapsack.sandboxes.registry import REGISTRY

    # kept by the id written into the sample's store, and dropped when that store is collected
    key = uuid.uuid4().hex
    REGISTRY.episodes[key] = episode
    weakref.finalize(sample_store, REGISTRY.episodes.pop, key, None)
    sample_store.set(EPISODE_KEY, key)


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


def live_episode() -> Episode:
    """The episode of the sample this code runs in, whichever family started it."""
    from opaque_knapsack.sandboxes.registry import REGISTRY

    key = store().get(EPISODE_KEY)
    episode = REGISTRY.episodes.get(key) if key else None
    if episode is None:
        raise RuntimeError(
            "No episode is active for this sample: the agents' tools and runtime only "
            "work inside a sample whose task starts an episode in its setup step (as "
            "opaque_knapsack/knapsack does), or give the CodeAct agent host_functions."
        )
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
        from opaque_knapsack.sandboxes import runtime_sandbox

        try:
            state.metadata[RUNTIME_METADATA_KEY] = runtime_sandbox().semantics.name
        except (TypeError, ValueError, RuntimeError, ProcessLookupError) as error:
            if require_runtime:
                raise RuntimeError(
                    f"the CodeAct agent needs a Python runtime sandbox: {error}. Use "
                    "-T runtime=persistent|stateless or --sandbox persistent_python|stateless_python."
                ) from None
        start_episode(instance_from_metadata(state.metadata), strict_take=strict_take, sample_store=state.store)
        return state

    return solve
