"""The ``-T`` options every task family's task takes for its agent, checked in one place.

A family's ``@task`` passes its runtime, agent, episode limits, prompts file
and cut-off mode through ``AgentOptions.checked`` and gets back the agent
(``solver()``), the sandbox that runs its code (``sandbox``), the prompts
file checked against the family's placeholders (``prompt_set``) and the eval
metadata the readers of logs look for (``metadata``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inspect_ai.solver import Solver

from opaque_knapsack.families import TaskFamily
from opaque_knapsack.records import (
    AGENT_METADATA_KEY,
    AGENTS,
    CODEACT,
    DIFFICULTY_METADATA_KEY,
    FAMILY_METADATA_KEY,
    PERSISTENT,
    RUNTIME_METADATA_KEY,
    RUNTIMES,
    SEMANTICS,
    Agent,
    Runtime,
)
from opaque_knapsack.solvers.prompts import Prompts, PromptsError, check_family_texts, load_prompts
from opaque_knapsack.solvers.turns import CUT_OFF_MODES, CutOff
from opaque_knapsack.task_options import TaskOptionError, choice, positive_seconds, whole_number


@dataclass(frozen=True)
class AgentOptions:
    """A task's agent and its limits, checked: a bad value raised a ``TaskOptionError`` naming the option."""

    agent: Agent
    runtime: Runtime | None
    max_turns: int | None
    max_tool_calls: int | None
    step_timeout: float | None
    """A limit left None was not set by the user: the runtime's sandbox config holds (``limits.EpisodeLimits``)."""
    cut_off: CutOff
    prompts: str | None

    @classmethod
    def checked(
        cls,
        *,
        runtime: object,
        agent: object,
        max_turns: object,
        max_tool_calls: object,
        step_timeout: object,
        cut_off: object,
        prompts: str | None,
    ) -> AgentOptions:
        return cls(
            agent=choice("agent", agent, AGENTS),  # type: ignore[arg-type]
            runtime=None if runtime is None else choice("runtime", runtime, RUNTIMES),  # type: ignore[arg-type]
            # a limit is passed on only when the user set it: otherwise the runtime's config holds
            max_turns=None if max_turns is None else whole_number("max_turns", max_turns, 1),
            max_tool_calls=None if max_tool_calls is None else whole_number("max_tool_calls", max_tool_calls, 1),
            step_timeout=None if step_timeout is None else positive_seconds("step_timeout", step_timeout),
            cut_off=choice("cut_off", cut_off, CUT_OFF_MODES),  # type: ignore[arg-type]
            prompts=prompts,
        )

    @property
    def needs_runtime(self) -> bool:
        """The agent runs code (CodeAct): the sample must get one of the package's runtimes."""
        return self.agent == CODEACT

    @property
    def sandbox(self) -> str | None:
        """The sandbox that runs the agent's code (the persistent runtime unless told), None for ReAct."""
        return SEMANTICS[self.runtime or PERSISTENT].sandbox if self.needs_runtime else None

    def solver(self) -> Solver:
        from opaque_knapsack.solvers.codeact import codeact
        from opaque_knapsack.solvers.react import react

        limits = {"max_turns": self.max_turns, "max_tool_calls": self.max_tool_calls}
        if self.needs_runtime:
            return codeact(**limits, step_timeout=self.step_timeout, prompts=self.prompts, cut_off=self.cut_off)
        return react(**limits, prompts=self.prompts, cut_off=self.cut_off)

    def prompt_set(self, family: TaskFamily) -> Prompts:
        """The prompts file's texts (or the defaults), its texts for the family holding only its placeholders."""
        try:
            return check_family_texts(load_prompts(self.prompts), family, self.prompts)
        except PromptsError as error:
            raise TaskOptionError("prompts", self.prompts, f"is not a usable prompts file: {error.detail}") from None

    def metadata(self, family: TaskFamily, difficulty: str | None) -> dict[str, Any]:
        """The eval metadata the readers of logs look for: the family, and the settings the task resolved."""
        settings = (
            (RUNTIME_METADATA_KEY, self.runtime),
            (AGENT_METADATA_KEY, self.agent),
            (DIFFICULTY_METADATA_KEY, difficulty),
        )
        return {FAMILY_METADATA_KEY: family.name, **{key: value for key, value in settings if value is not None}}
