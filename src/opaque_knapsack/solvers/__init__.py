"""Agents for the Opaque Knapsack tasks: CodeAct over a Python runtime, ReAct baseline."""

from opaque_knapsack.solvers.codeact import codeact
from opaque_knapsack.solvers.episode import (
    Episode,
    HostFunctionEpisode,
    KnapsackEpisode,
    current_episode,
    knapsack_setup,
    live_episode,
    register_episode,
)
from opaque_knapsack.solvers.react import react
from opaque_knapsack.solvers.tools import knapsack_tools

__all__ = [
    "Episode",
    "HostFunctionEpisode",
    "KnapsackEpisode",
    "codeact",
    "current_episode",
    "knapsack_setup",
    "knapsack_tools",
    "live_episode",
    "react",
    "register_episode",
]
