"""One sample's episode: what an agent's turn loop drives, whatever the task family.

``Episode`` is the seam between the agents and a task family: the family it
belongs to (its ``TaskFamily``: tools' docs, instructions), the host functions
the runtime forwards to, where step records go, whether the agent has
finished, and how the episode ends. A family's setup solver registers its
episode with ``register_episode`` (the knapsack one is in
``knapsack/episode.py``); ``HostFunctionEpisode`` is the default for people
who bring their own host functions to the CodeAct agent.

The environment object (hidden items, budget counters) lives only here, in the
harness process. The agent reaches it through host functions forwarded by the
runtime's kernel, or through native Inspect tools; neither hands the object
itself to the model or the interpreter.

What the scorer needs is mirrored into the sample's store (the environment's
mutable state and one record per step), so a log can be re-scored with
``inspect score`` without the live object.
"""

from __future__ import annotations

import inspect
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Protocol, TypeVar

from inspect_ai.solver import TaskState
from inspect_ai.util import Store, store

from opaque_knapsack.families import TaskFamily
from opaque_knapsack.records import END_REASON_KEY, EPISODE_KEY, RUNTIME_METADATA_KEY, STEPS_KEY, StepRecord

HostFunction = Callable[..., object]
"""A tool the runtime's kernel forwards its stub to: plain values in, a JSON-able value out."""


class Episode(Protocol):
    """What an agent's turn loop needs of one sample's episode, whatever the task family."""

    @property
    def family(self) -> TaskFamily:
        """The task family the episode belongs to: what the agents tell the model about the task."""
        ...

    def prompt_values(self) -> Mapping[str, object]:
        """Values of the family's text placeholders for this sample (knapsack: the take rule's clause)."""
        ...

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

    def prompt_values(self) -> Mapping[str, object]:
        """No placeholders to fill, unless a family's episode says otherwise."""
        return {}

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

    A task family's episode extends this with its ``family`` (a class attribute, its
    declaration) and its host functions (and what it mirrors at the end).
    """

    family: ClassVar[TaskFamily]
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
    def family(self) -> TaskFamily:
        """A family of its own: the functions' signatures and first docstring lines are its tool docs."""
        names = tuple(dict.fromkeys([*self.functions, FINISH_TOOL]))
        return TaskFamily(
            name="host_functions",
            tools=names,
            codeact_instructions=HOST_FUNCTION_INSTRUCTIONS,
            codeact_tool_docs=host_function_docs(self.host_functions()),
            task_statement="",
            task="",
            scorer="",
            score_keys=(),
        )

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
        finish_and_end.__wrapped__ = finish  # type: ignore[attr-defined]  # its signature is finish's
        functions[FINISH_TOOL] = finish_and_end
        return functions

    def record(self, step: StepRecord) -> None:
        super().record(step)
        self.store_steps()


def _default_finish() -> str:
    """End the episode after the current step."""
    return "Episode finished."


HOST_FUNCTION_INSTRUCTIONS = "You are solving the task below by writing Python code that calls the tools."


def host_function_docs(functions: Mapping[str, HostFunction]) -> str:
    """CodeAct's tool docs for functions someone brought: each one's signature and the first line of its docstring."""
    lines = ["Tools (plain Python functions, already defined in the interpreter):"]
    for name, function in functions.items():
        try:
            signature = str(inspect.signature(function, eval_str=True))
        except (TypeError, ValueError, NameError):
            signature = "(...)"
        summary = (inspect.getdoc(function) or "").strip().splitlines()
        lines.append(f"- {name}{signature}" + (f": {summary[0]}" if summary else ""))
    return "\n".join(lines)


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


def live_episode() -> Episode:
    """The episode of the sample this code runs in, whichever family started it."""
    from opaque_knapsack.sandboxes.registry import REGISTRY

    key = store().get(EPISODE_KEY)
    episode = REGISTRY.episodes.get(key) if key else None
    if episode is None:
        raise RuntimeError(
            "No episode is active for this sample: the agents' tools and runtime only "
            "work inside a sample whose task starts an episode in its setup step (as "
            "every registered task family's task does), or give the CodeAct agent host_functions."
        )
    return episode


def note_runtime(state: TaskState, require_runtime: bool) -> None:
    """Record the runtime a sample really got (``--sandbox`` may override the task's) in its metadata.

    Every family's setup calls this first; with ``require_runtime`` (the CodeAct
    agent) it fails before the first model call when the sandbox is not one of ours.
    """
    from opaque_knapsack.sandboxes import runtime_sandbox

    try:
        state.metadata[RUNTIME_METADATA_KEY] = runtime_sandbox().semantics.name
    except (TypeError, ValueError, RuntimeError, ProcessLookupError) as error:
        if require_runtime:
            raise RuntimeError(
                f"the CodeAct agent needs a Python runtime sandbox: {error}. Use "
                "-T runtime=persistent|stateless or --sandbox persistent_python|stateless_python."
            ) from None
