"""The per-episode metrics the reports know about, with their labels and aliases.

A family's scorer puts every metric in its dict score (``records.ScoreKey``), so
the metric names here are the dict's keys; ``total_time`` comes from the
sample itself (Inspect's wall time for the episode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opaque_knapsack.records import SCORE_KEYS, ScoreKey  # the scorers' contract

SCORE_PREFIX = "episode_"
"""The data frame column of score key k is ``episode_<k>`` (``reports/columns.py``), whichever family's scorer wrote it."""

# Per-episode values read from the sample rather than the score.
SAMPLE_KEYS: tuple[str, ...] = ("total_time",)

EPISODE_METRICS: tuple[str, ...] = SCORE_KEYS + SAMPLE_KEYS

# Names people type for a metric (all lower case) -> the metric key.
ALIASES: dict[str, str] = {
    "score": ScoreKey.OPTIMALITY,
    "success": ScoreKey.SOLVED,
    "success_rate": ScoreKey.SOLVED,
    "capacity": ScoreKey.CAPACITY_UTILIZATION,
    "utilization": ScoreKey.CAPACITY_UTILIZATION,
    "items": ScoreKey.ITEMS_INSPECTED,
    "inspected": ScoreKey.ITEMS_INSPECTED,
    "turns": ScoreKey.STEPS,
    "tokens": ScoreKey.TOTAL_TOKENS,
    "input": ScoreKey.INPUT_TOKENS,
    "output": ScoreKey.OUTPUT_TOKENS,
    "cached": ScoreKey.CACHED_INPUT_TOKENS,
    "reasoning": ScoreKey.REASONING_TOKENS,
    "call_sites": ScoreKey.TOOL_CALL_SITES,
    "ast_call_sites": ScoreKey.AST_TOOL_CALL_SITES,
    "name_error": ScoreKey.NAME_ERROR_EPISODE,
    "name_error_rate": ScoreKey.NAME_ERROR_EPISODE,
    "reimport": ScoreKey.REIMPORT_RATE,
    "re_import_rate": ScoreKey.REIMPORT_RATE,
    "lifespan": ScoreKey.SYMBOL_LIFESPAN,
    "context_symbol_lifespan": ScoreKey.SYMBOL_LIFESPAN,
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
    StatRow("success_rate", "Success rate (%)", ScoreKey.SOLVED, 100.0, 1),
    StatRow(ScoreKey.OPTIMALITY, "Mean optimality (0-1)", ScoreKey.OPTIMALITY, 1.0, 3),
    StatRow(ScoreKey.CAPACITY_UTILIZATION, "Mean capacity utilization (%)", ScoreKey.CAPACITY_UTILIZATION, 100.0, 1),
    StatRow(ScoreKey.ITEMS_INSPECTED, "Mean items inspected", ScoreKey.ITEMS_INSPECTED, 1.0, 2),
    StatRow(ScoreKey.STEPS, "Mean steps", ScoreKey.STEPS, 1.0, 2),
    StatRow(ScoreKey.TOOL_CALLS, "Mean tool calls", ScoreKey.TOOL_CALLS, 1.0, 2),
    StatRow(ScoreKey.TOOL_CALL_SITES, "Mean tool call sites (the paper's text count)", ScoreKey.TOOL_CALL_SITES, 1.0, 2),
    StatRow(ScoreKey.AST_TOOL_CALL_SITES, "Mean tool call sites (ast count)", ScoreKey.AST_TOOL_CALL_SITES, 1.0, 2),
    StatRow(ScoreKey.INPUT_TOKENS, "Mean input tokens / episode", ScoreKey.INPUT_TOKENS, 1.0, 0),
    StatRow(ScoreKey.CACHED_INPUT_TOKENS, "Mean cached input tokens / episode", ScoreKey.CACHED_INPUT_TOKENS, 1.0, 0),
    StatRow(ScoreKey.OUTPUT_TOKENS, "Mean output tokens / episode", ScoreKey.OUTPUT_TOKENS, 1.0, 0),
    StatRow(ScoreKey.REASONING_TOKENS, "Mean reasoning tokens / episode", ScoreKey.REASONING_TOKENS, 1.0, 0),
    StatRow(ScoreKey.TOTAL_TOKENS, "Mean total tokens / episode", ScoreKey.TOTAL_TOKENS, 1.0, 0),
    StatRow(ScoreKey.CUT_OFF_REPLIES, "Cut-off replies / episode (dropped, not run)", ScoreKey.CUT_OFF_REPLIES, 1.0, 2),
    StatRow(ScoreKey.BILLED_TOKENS, "Mean billed tokens / episode (cut-off replies included)", ScoreKey.BILLED_TOKENS, 1.0, 0),
    StatRow("name_error_rate", "NameError episode rate (%)", ScoreKey.NAME_ERROR_EPISODE, 100.0, 1),
    StatRow(ScoreKey.STATE_UTILIZATION, "State utilization (reuses / episode)", ScoreKey.STATE_UTILIZATION, 1.0, 2),
    StatRow(ScoreKey.REIMPORT_RATE, "Re-import rate", ScoreKey.REIMPORT_RATE, 1.0, 3),
    StatRow(ScoreKey.SYMBOL_LIFESPAN, "Context symbol lifespan (turns)", ScoreKey.SYMBOL_LIFESPAN, 1.0, 2),
    StatRow("time_s", "Mean time / episode (s)", "total_time", 1.0, 2),
)


def resolve_metric(name: str) -> str:
    """The metric key for a name a user typed; raises ValueError naming the choices."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key.startswith("score_") and "_scorer_" in key:  # Inspect's own column of a scorer's key
        key = key.split("_scorer_", 1)[1]
    for prefix in (SCORE_PREFIX, "mean_", "avg_", "average_"):
        if key.startswith(prefix) and key[len(prefix):] in EPISODE_METRICS:
            key = key[len(prefix):]
    key = ALIASES.get(key, key)
    if key not in EPISODE_METRICS:
        choices = ", ".join(EPISODE_METRICS)
        raise ValueError(f"unknown metric {name!r}; choose one of: {choices}")
    return key
