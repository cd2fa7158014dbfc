"""The sample's runtime with the knapsack tools bound: for custom solvers."""

from __future__ import annotations

from dataclasses import dataclass

from opaque_knapsack.solvers.episode import KnapsackEpisode, current_episode


@dataclass
class KnapsackRuntime:
    """Run code blocks in the current sample's interpreter, tools included.

    ``semantics`` says whether the interpreter keeps state between ``run``
    calls (persistent) or starts fresh for each (stateless).
    """

    sandbox: object
    episode: KnapsackEpisode
    max_tool_calls: int = 25
    step_timeout: float = 30.0

    @property
    def semantics(self) -> str:
        return self.sandbox.semantics  # type: ignore[attr-defined]

    async def run(self, code: str):  # type: ignore[no-untyped-def]
        """Run one block; returns the runtime's StepResult (stdout, error, tool calls, ...)."""
        result = await self.sandbox.run_code(  # type: ignore[attr-defined]
            code,
            self.episode.host_functions(),
            max_tool_calls=self.max_tool_calls,
            timeout=self.step_timeout,
        )
        self.episode.sync()
        return result


def knapsack_runtime(max_tool_calls: int = 25, step_timeout: float = 30.0) -> KnapsackRuntime:
    """The current sample's runtime handle (inside an opaque_knapsack/knapsack sample)."""
    from opaque_knapsack.sandboxes import runtime_sandbox

    return KnapsackRuntime(runtime_sandbox(), current_episode(), max_tool_calls, step_timeout)
