"""Scorers and behaviour metrics of Opaque Knapsack episodes."""

from opaque_knapsack.records import SCORE_KEYS
from opaque_knapsack.scorers.behaviour import behaviour_metrics, block_names
from opaque_knapsack.scorers.knapsack import episode_figures, knapsack_scorer
from opaque_knapsack.scorers.steps import step_figures

__all__ = ["SCORE_KEYS", "behaviour_metrics", "block_names", "episode_figures", "knapsack_scorer", "step_figures"]
