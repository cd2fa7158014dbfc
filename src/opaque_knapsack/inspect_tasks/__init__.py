"""Inspect tasks of the Opaque Knapsack family.

``knapsack`` is imported on first use so that the command line (whose
``quickstart`` lives beside it) starts without loading Inspect.
"""

from typing import Any

__all__ = ["knapsack"]


def __getattr__(name: str) -> Any:
    if name == "knapsack":
        from opaque_knapsack.inspect_tasks.knapsack_task import knapsack

        return knapsack
    raise AttributeError(f"module 'opaque_knapsack.inspect_tasks' has no attribute {name!r}")
