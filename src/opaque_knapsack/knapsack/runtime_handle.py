"""The sample's runtime with the knapsack tools bound: for custom solvers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from opaque_knapsack.knapsack.episode import KnapsackEpisode, current_episode
from opaque_knapsack.records import RuntimeSemantics, StepRecord

if TYPE_CHECKING:
    from opaque_knapsack.sandboxes import PythonRuntime, StepResult


@dataclass
class KnapsackRuntime:
    """Run code blocks in the current sample's interpreter, tools included.

    ``semantics`` says whether the interpreter keeps state between ``run``
    calls (persistent) or starts fresh for each (stateless). A limit left
    None is the runtime's own (its config's, see ``EpisodeLimits``). Each ``run`` is
    one step of the episode and is recorded as the CodeAct agent records its
    steps, so the scorer's steps, tool calls and NameErrors count a custom
    solver's work too.
    """

    sandbox: PythonRuntime
    episode: KnapsackEpisode
    max_tool_calls: int | None = None
    step_timeout: float | None = None

    @property
    def semantics(self) -> RuntimeSemantics:
        return self.sandbox.semantics

    async def run(self, code: str) -> StepResult:
        """Run one block; returns the runtime's StepResult (stdout, error, tool calls, ...)."""
        result = await self.sandbox.run_code(
            code,
            self.episode.host_functions(),
            max_tool_calls=self.max_tool_calls,
            timeout=self.step_timeout,
        )
        self.episode.record(step_record(len(self.episode.steps) + 1, code, result))
        self.episode.sync()
        return result


def step_record(turn: int, code: str, result: StepResult) -> StepRecord:
    """The scorer's record of one block run through the runtime (no model tokens: no model call)."""
    from opaque_knapsack.solvers.codeact import record_step

    # what the interpreter held when the step began, as the runtime reports it
    return record_step(StepRecord(turn=turn, code=code), code, result, list(result.bound_at_start or []))


def knapsack_runtime(max_tool_calls: int | None = None, step_timeout: float | None = None) -> KnapsackRuntime:
    """The current sample's runtime handle (inside an opaque_knapsack/knapsack sample)."""
    from opaque_knapsack.sandboxes import runtime_sandbox

    return KnapsackRuntime(runtime_sandbox(), current_episode(), max_tool_calls, step_timeout)
