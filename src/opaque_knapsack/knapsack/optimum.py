"""The exact optimum of an instance, cross-checked by an independent method.

Only items of an allowed class can be taken, so the problem is a 0/1 knapsack
over those. The primary method is a dynamic programme over capacity (numpy,
one vector step per item) with reconstruction; ties are broken
deterministically (an item is taken only if that strictly improves the value),
so the reference set is a pure function of the instance. The cross-check is
OR-tools' branch-and-bound knapsack solver; it must reach the same optimal
*value* (its set may differ on ties), or `SolverMismatchError` is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from opaque_knapsack.knapsack.schema import TaskFileError, TaskInstance


class SolverMismatchError(RuntimeError):
    """The two methods disagree on the optimal value: a bug, never ignored."""


@dataclass(frozen=True)
class Solution:
    """An optimal selection, as indices into the weights/values given."""

    indices: tuple[int, ...]
    value: int
    weight: int


SolveFn = Callable[[Sequence[int], Sequence[int], int], Solution]


def solve_dp(weights: Sequence[int], values: Sequence[int], capacity: int) -> Solution:
    """Exact 0/1 knapsack by dynamic programming over capacity (numpy)."""
    capacity = max(0, min(capacity, sum(weights)))  # beyond the total weight nothing changes
    best = np.zeros(capacity + 1, dtype=np.int64)
    took = np.zeros((len(weights), capacity + 1), dtype=np.bool_)
    for row, (weight, value) in enumerate(zip(weights, values, strict=True)):
        if weight > capacity:
            continue
        with_item = best[:-weight] + value if weight else best + value
        tail = best[weight:]
        improved = with_item > tail
        took[row, weight:] = improved
        np.maximum(tail, with_item, out=tail)
    chosen: list[int] = []
    room = capacity
    for row in range(len(weights) - 1, -1, -1):
        if took[row, room]:
            chosen.append(row)
            room -= weights[row]
    chosen.reverse()
    return Solution(
        tuple(chosen),
        int(sum(values[i] for i in chosen)),
        int(sum(weights[i] for i in chosen)),
    )


_ortools_solver: Any = None


def _branch_and_bound() -> Any:
    """One OR-tools solver object per process: building it costs more than a solve."""
    global _ortools_solver
    if _ortools_solver is None:
        from ortools.algorithms.python import knapsack_solver

        _ortools_solver = knapsack_solver.KnapsackSolver(
            knapsack_solver.SolverType.KNAPSACK_MULTIDIMENSION_BRANCH_AND_BOUND_SOLVER,
            "opaque_knapsack_cross_check",
        )
    return _ortools_solver


def solve_ortools(weights: Sequence[int], values: Sequence[int], capacity: int) -> Solution:
    """Exact 0/1 knapsack by OR-tools' branch and bound (the independent method)."""
    if not weights:
        return Solution((), 0, 0)
    solver = _branch_and_bound()
    solver.init(list(values), [list(weights)], [capacity])
    value = solver.solve()
    chosen = tuple(i for i in range(len(weights)) if solver.best_solution_contains(i))
    return Solution(chosen, int(value), int(sum(weights[i] for i in chosen)))


def solve_checked(
    weights: Sequence[int],
    values: Sequence[int],
    capacity: int,
    *,
    cross_check: bool = True,
    solve: SolveFn = solve_dp,
) -> Solution:
    """The primary solution, confirmed by OR-tools unless `cross_check` is off."""
    solution = solve(weights, values, capacity)
    if cross_check:
        other = solve_ortools(weights, values, capacity)
        if other.value != solution.value:
            raise SolverMismatchError(
                f"optimal value differs: dynamic programme {solution.value}, OR-tools {other.value} "
                f"(capacity {capacity}, weights {list(weights)}, values {list(values)})"
            )
    return solution


@dataclass(frozen=True)
class Optimum:
    """The optimum of an instance, by item id."""

    item_ids: tuple[str, ...]
    value: int
    weight: int


def solve_instance(instance: TaskInstance, *, cross_check: bool = True) -> Optimum:
    """Re-solve an instance from its private data (allowed items only)."""
    allowed = set(instance.public.allowed_classes)
    items = instance.private.items
    ids = [i for i in instance.public.item_ids if items[i].class_ in allowed]
    weights = [items[i].weight for i in ids]
    values = [items[i].value for i in ids]
    solution = solve_checked(weights, values, instance.public.capacity, cross_check=cross_check)
    return Optimum(tuple(ids[i] for i in solution.indices), solution.value, solution.weight)


def verify_optimum(instance: TaskInstance, path: str | None = None) -> None:
    """Raise `TaskFileError` unless the reference value is the true optimum."""
    optimum = solve_instance(instance)
    declared = instance.reference.optimal_value
    if declared != optimum.value:
        raise TaskFileError(
            path,
            "reference.optimal_value",
            f"{declared} is not the optimum (re-solving gives {optimum.value})",
        )
