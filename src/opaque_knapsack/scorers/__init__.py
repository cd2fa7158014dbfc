"""The per-episode figures every task family shares: effort, tokens and behaviour metrics."""

from opaque_knapsack.records import SCORE_KEYS
from opaque_knapsack.scorers.behaviour import behaviour_metrics, block_names
from opaque_knapsack.scorers.steps import step_figures

__all__ = ["SCORE_KEYS", "behaviour_metrics", "block_names", "step_figures"]
