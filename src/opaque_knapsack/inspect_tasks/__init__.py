"""Inspect tasks of the Opaque Knapsack family.

``knapsack`` is imported on first use so that the command line (whose
``quickstart`` lives beside it) starts without loading Inspect.
"""

from opaque_knapsack._lazy import lazy_attributes

_EXPORTS = {"knapsack": "opaque_knapsack.inspect_tasks.knapsack_task"}

__all__ = ["knapsack"]


__getattr__ = lazy_attributes(__name__, _EXPORTS)
