"""``PythonRuntime``: the one interface an agent uses of a sample's Python runtime.

The CodeAct agent, ``knapsack_runtime()`` and any custom solver ask a runtime
what it keeps between steps, which limits it applies when the caller sets
none, and what it binds before each step, and run a step in it. The sandbox
providers implement it (``PythonRuntimeSandbox``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from opaque_knapsack.limits import EpisodeLimits
    from opaque_knapsack.records import RuntimeSemantics

    from .protocol import StepResult


@runtime_checkable
class PythonRuntime(Protocol):
    """A sample's Python interpreter, as an agent sees it."""

    @property
    def semantics(self) -> RuntimeSemantics:
        """What the interpreter keeps from one step to the next, files included."""
        ...

    @property
    def limits(self) -> EpisodeLimits:
        """The step limits the runtime applies when ``run_code`` is given none (its config's)."""
        ...

    @property
    def prebound_names(self) -> list[str]:
        """Global names bound before every step, like builtins (never state an earlier step left)."""
        ...

    @property
    def echoes_last_expression(self) -> bool:
        """A bare final expression's value is shown after what the block printed."""
        ...

    async def run_code(
        self, code: str, host_functions: Mapping[str, Callable[..., Any]] | None = None, *,
        max_tool_calls: int | None = None, timeout: float | None = None,
    ) -> StepResult:
        """Run one block; None for a limit means the runtime's own (``limits``)."""
        ...
