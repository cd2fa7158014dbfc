"""Evaluation orchestration: the cross-evaluation matrix of students, runtimes and difficulties.

Above the task families: a condition is a registered task (``opaque_knapsack/knapsack``
by default) created with its arguments, run through one resumable ``eval_set``.
"""

from opaque_knapsack._lazy import lazy_attributes

_EXPORTS = {
    "Condition": "opaque_knapsack.evaluate.matrix",
    "MatrixError": "opaque_knapsack.evaluate.matrix",
    "MatrixSpec": "opaque_knapsack.evaluate.matrix",
    "build_tasks": "opaque_knapsack.evaluate.matrix",
    "conditions": "opaque_knapsack.evaluate.matrix",
    "run_matrix": "opaque_knapsack.evaluate.matrix",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
