"""The generic agents: CodeAct over a Python runtime, the ReAct baseline, and the seam to a task family.

A family reaches the agents only through ``Episode`` (its live episode, with
the ``TaskFamily`` it declares, ``opaque_knapsack.families``). The agents are imported here, not lazily: a
lazy attribute named like its module would be shadowed by the module itself.
"""

from opaque_knapsack.solvers.codeact import codeact
from opaque_knapsack.solvers.episode import (
    EnvironmentEpisode,
    Episode,
    HostFunctionEpisode,
    live_episode,
    register_episode,
)
from opaque_knapsack.solvers.react import react

__all__ = [
    "EnvironmentEpisode",
    "Episode",
    "HostFunctionEpisode",
    "codeact",
    "live_episode",
    "react",
    "register_episode",
]
