"""Where an episode's records live in the sample store, and their shape.

Shared by the agents that write them and the scorer that reads them back
(also from a finished log, with ``inspect score``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

EPISODE_KEY = "knapsack:episode"
ENVIRONMENT_KEY = "knapsack:environment"
STEPS_KEY = "knapsack:steps"
END_REASON_KEY = "knapsack:end_reason"
AGENT_KEY = "knapsack:agent"
RUNTIME_KEY = "knapsack:runtime"
STRICT_TAKE_KEY = "knapsack:strict_take"

TOOL_NAMES = ("list_items", "inspect", "take_item", "finish")


@dataclass
class StepRecord:
    """What the scorer needs of one assistant turn (the log's events hold the rest)."""

    turn: int
    code: str | None  # None: no block ran this turn
    tool_calls: int = 0
    error_type: str | None = None
    name_error: str | None = None  # the undefined name, when the step raised NameError
    is_name_error: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    timed_out: bool = False
    kernel_restarted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
