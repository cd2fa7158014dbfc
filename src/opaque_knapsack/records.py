"""Where an episode's records live in the sample store, and their shape.

Shared by the agents that write them and the scorer that reads them back
(also from a finished log, with ``inspect score``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opaque_knapsack.family import TaskInstance

EPISODE_KEY = "knapsack:episode"
ENVIRONMENT_KEY = "knapsack:environment"
STEPS_KEY = "knapsack:steps"
END_REASON_KEY = "knapsack:end_reason"
AGENT_KEY = "knapsack:agent"
RUNTIME_KEY = "knapsack:runtime"
STRICT_TAKE_KEY = "knapsack:strict_take"
PREBOUND_KEY = "knapsack:prebound"
"""Global names the runtime binds before every step (its pre-bound modules)."""

TOOL_NAMES = ("list_items", "inspect", "take_item", "finish")

# The episode scorer's name and the keys of its dict value: the contract
# between the scorer and everything that reads logs (reports, export).
SCORER_NAME = "knapsack_scorer"
SCORE_KEYS: tuple[str, ...] = (
    "optimality",
    "solved",
    "capacity_utilization",
    "items_inspected",
    "steps",
    "tool_calls",
    "tool_call_sites",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
    "name_error_episode",
    "name_error_count",
    "state_utilization",
    "reimport_rate",
    "symbol_lifespan",
    "step_timeouts",
    "kernel_restarts",
)

# Score keys that count runtime faults, not agent behaviour: any of them in a
# condition means load (or the code's own limits) may have moved its figures.
FAULT_KEYS: tuple[str, ...] = ("step_timeouts", "kernel_restarts")


def fault_note(where: str, step_timeouts: float, kernel_restarts: float, episodes: int) -> str | None:
    """A one-line warning when a condition's episodes hit step timeouts or kernel restarts."""
    if not step_timeouts and not kernel_restarts:
        return None
    return (
        f"{where}: {int(step_timeouts)} step timeouts and {int(kernel_restarts)} kernel restarts in "
        f"{episodes} episodes; if the agent's code did not cause them, the machine was overloaded and the "
        "figures may measure the load (re-run with lower --max-samples, or see the step_timeouts and "
        "kernel_restarts scores)"
    )

# A task of another family marks itself for the readers of logs (export) with
# this eval metadata key, naming its family; its scorer's dict score plays the
# part of ``knapsack_scorer``'s (see CONTRIBUTING.md, "Add a task family").
FAMILY_METADATA_KEY = "family"

# The hidden instance rides in sample metadata as a JSON *string*: Inspect
# deep-copies sample metadata with every score it aggregates, and a string
# copies for free where a nested dict of a hundred items does not.
INSTANCE_METADATA_KEY = "instance"


def instance_metadata(instance: TaskInstance) -> str:
    from opaque_knapsack.family import dump_instance

    return dump_instance(instance)


def instance_from_metadata(metadata: dict[str, Any]) -> TaskInstance:
    """The hidden instance of a sample made by the opaque_knapsack/knapsack task."""
    from opaque_knapsack.family import parse_instance

    try:
        data = metadata[INSTANCE_METADATA_KEY]
    except KeyError:
        raise RuntimeError(
            "Sample metadata has no 'instance': this sample was not made by the "
            "opaque_knapsack/knapsack task."
        ) from None
    return parse_instance(data)


@dataclass
class StepRecord:
    """What the scorer needs of one assistant turn (the log's events hold the rest)."""

    turn: int
    code: str | None  # None: no block ran this turn
    tool_calls: int = 0
    error_type: str | None = None
    is_name_error: bool = False
    undefined_name: str | None = None
    """The name the step's NameError could not find, as the runtime reported it."""
    bound_at_start: list[str] | None = None
    """Names the block mentions that the interpreter held when the step started
    (the runtime's report, cut to the names in the code to keep the store small);
    None when unknown, e.g. a log written before the runtime reported it."""
    input_tokens: int = 0
    """Prompt tokens, cache reads and writes included."""
    cached_input_tokens: int = 0
    """Prompt tokens read from the provider's cache."""
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    """The provider's total as Inspect reports it (``ModelUsage.total_tokens``)."""
    timed_out: bool = False
    kernel_restarted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
