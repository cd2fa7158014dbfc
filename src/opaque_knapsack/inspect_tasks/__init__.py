"""Inspect tasks of the Opaque Knapsack family."""

from opaque_knapsack.inspect_tasks.knapsack import knapsack

__all__ = ["knapsack"]
