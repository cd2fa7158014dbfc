"""Evaluation orchestration: the cross-evaluation matrix of students, runtimes and difficulties
(``evaluate.matrix``) and its command (``evaluate.cli``).

Above the task families: a condition is a registered task (``opaque_knapsack/knapsack``
by default) created with its arguments, run through one resumable ``eval_set``.
"""
