"""The per-episode metrics the reports know about, with their labels and aliases.

The scorer contract puts every metric in the ``knapsack_scorer`` score dict, so
the metric names here are the dict's keys; ``total_time`` comes from the
sample itself (Inspect's wall time for the episode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opaque_knapsack.records import SCORE_KEYS, SCORER_NAME  # the scorer's contract

# Per-episode values read from the sample rather than the score.
SAMPLE_KEYS: tuple[str, ...] = ("total_time",)

EPISODE_METRICS: tuple[str, ...] = SCORE_KEYS + SAMPLE_KEYS

# Names people type for a metric (all lower case) -> the metric key.
ALIASES: dict[str, str] = {
    "score": "optimality",
    "success": "solved",
    "success_rate": "solved",
    "capacity": "capacity_utilization",
    "utilization": "capacity_utilization",
    "items": "items_inspected",
    "inspected": "items_inspected",
    "turns": "steps",
    "tokens": "total_tokens",
    "input": "input_tokens",
    "output": "output_tokens",
    "cached": "cached_input_tokens",
    "reasoning": "reasoning_tokens",
    "call_sites": "tool_call_sites",
    "name_error": "name_error_episode",
    "name_error_rate": "name_error_episode",
    "reimport": "reimport_rate",
    "re_import_rate": "reimport_rate",
    "lifespan": "symbol_lifespan",
    "context_symbol_lifespan": "symbol_lifespan",
    "time": "total_time",
    "runtime_s": "total_time",
    "wall_time": "total_time",
}

Better = Literal["higher", "lower", "none"]


@dataclass(frozen=True)
class StatRow:
    """One line of the stats table: how a run's episodes reduce to one figure."""

    key: str  # column name in summarize()'s frame
    label: str  # what the reader sees
    metric: str  # episode metric it is the mean of
    scale: float = 1.0  # 100 for percentages
    digits: int = 2


STAT_ROWS: tuple[StatRow, ...] = (
    StatRow("success_rate", "Success rate (%)", "solved", 100.0, 1),
    StatRow("optimality", "Mean optimality (0-1)", "optimality", 1.0, 3),
    StatRow("capacity_utilization", "Mean capacity utilization (%)", "capacity_utilization", 100.0, 1),
    StatRow("items_inspected", "Mean items inspected", "items_inspected", 1.0, 2),
    StatRow("steps", "Mean steps", "steps", 1.0, 2),
    StatRow("tool_calls", "Mean tool calls", "tool_calls", 1.0, 2),
    StatRow("tool_call_sites", "Mean tool call sites (static, as the paper counts)", "tool_call_sites", 1.0, 2),
    StatRow("input_tokens", "Mean input tokens / episode", "input_tokens", 1.0, 0),
    StatRow("cached_input_tokens", "Mean cached input tokens / episode", "cached_input_tokens", 1.0, 0),
    StatRow("output_tokens", "Mean output tokens / episode", "output_tokens", 1.0, 0),
    StatRow("reasoning_tokens", "Mean reasoning tokens / episode", "reasoning_tokens", 1.0, 0),
    StatRow("total_tokens", "Mean total tokens / episode", "total_tokens", 1.0, 0),
    StatRow("name_error_rate", "NameError episode rate (%)", "name_error_episode", 100.0, 1),
    StatRow("state_utilization", "State utilization (reuses / episode)", "state_utilization", 1.0, 2),
    StatRow("reimport_rate", "Re-import rate", "reimport_rate", 1.0, 3),
    StatRow("symbol_lifespan", "Context symbol lifespan (turns)", "symbol_lifespan", 1.0, 2),
    StatRow("time_s", "Mean time / episode (s)", "total_time", 1.0, 2),
)


def resolve_metric(name: str) -> str:
    """The metric key for a name a user typed; raises ValueError naming the choices."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    for prefix in (f"score_{SCORER_NAME}_", "mean_", "avg_", "average_"):
        if key.startswith(prefix) and key[len(prefix):] in EPISODE_METRICS:
            key = key[len(prefix):]
    key = ALIASES.get(key, key)
    if key not in EPISODE_METRICS:
        choices = ", ".join(EPISODE_METRICS)
        raise ValueError(f"unknown metric {name!r}; choose one of: {choices}")
    return key
