"""The generic agents: CodeAct over a Python runtime, the ReAct baseline, and the seam to a task family.

A family reaches the agents only through ``Episode`` (its live episode, with
the ``TaskFamily`` it declares). Names are imported lazily, so a family's
declaration can import ``solvers.family`` without loading Inspect.
"""

from opaque_knapsack._lazy import lazy_attributes

_EXPORTS = {
    "codeact": "opaque_knapsack.solvers.codeact",
    "react": "opaque_knapsack.solvers.react",
    "Episode": "opaque_knapsack.solvers.episode",
    "EnvironmentEpisode": "opaque_knapsack.solvers.episode",
    "HostFunctionEpisode": "opaque_knapsack.solvers.episode",
    "live_episode": "opaque_knapsack.solvers.episode",
    "register_episode": "opaque_knapsack.solvers.episode",
    "TaskFamily": "opaque_knapsack.solvers.family",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
