"""The episode scorer: every per-episode figure of the study in one Score.

Reads only what the log keeps (sample metadata and store), so ``inspect score``
re-scores a finished log without re-running anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from inspect_ai.scorer import Score, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from opaque_knapsack.knapsack.environment import KnapsackEnvironment
from opaque_knapsack.knapsack.schema import TaskInstance, instance_from_metadata
from opaque_knapsack.records import (
    END_REASON_KEY,
    END_REASON_METADATA_KEY,
    ENVIRONMENT_KEY,
    PREBOUND_KEY,
    STEPS_KEY,
    STRICT_TAKE_KEY,
    TOOL_NAMES,
    ScoreKey,
)
from opaque_knapsack.scorers.steps import step_figures


def episode_figures(
    instance: TaskInstance,
    environment_state: dict[str, Any],
    steps: list[dict[str, Any]],
    strict_take: bool = True,
    prebound: Iterable[str] = (),
) -> dict[str, float]:
    """All per-episode figures from the hidden instance, final state and step records.

    ``prebound``: names the runtime binds before every step (``json``); like
    builtins they are never carried references.
    """
    environment = KnapsackEnvironment.from_state(instance, environment_state, strict_take=strict_take)
    optimal = instance.reference.optimal_value
    optimality = environment.total_value / optimal if optimal else 0.0
    outcome = {
        ScoreKey.OPTIMALITY: float(optimality),
        ScoreKey.SOLVED: 1.0 if environment.total_value >= optimal else 0.0,
        ScoreKey.CAPACITY_UTILIZATION: environment.total_weight / instance.public.capacity,
        ScoreKey.ITEMS_INSPECTED: float(len(environment.inspected)),
    }
    # plain strings in the log
    return {**{str(key): value for key, value in outcome.items()}, **step_figures(steps, TOOL_NAMES, prebound)}


@scorer(metrics={"*": [mean(), stderr()]})
def knapsack_scorer():  # type: ignore[no-untyped-def]
    """Optimality, solved, utilization, effort, tokens and behaviour metrics."""

    async def score(state: TaskState, target: Target) -> Score:
        instance = instance_from_metadata(state.metadata)
        environment_state = state.store.get(ENVIRONMENT_KEY) or {}
        steps = state.store.get(STEPS_KEY) or []
        figures = episode_figures(
            instance,
            environment_state,
            steps,
            bool(state.store.get(STRICT_TAKE_KEY, True)),
            state.store.get(PREBOUND_KEY) or (),
        )
        taken = environment_state.get("taken", [])
        return Score(
            value=figures,
            answer=",".join(taken),
            explanation=(
                f"value {figures[ScoreKey.OPTIMALITY] * instance.reference.optimal_value:g} of optimal "
                f"{instance.reference.optimal_value} with {len(taken)} items; "
                f"episode ended: {state.store.get(END_REASON_KEY) or 'unknown'}"
            ),
            # kept small: Inspect deep-copies each score once per metric key
            metadata={END_REASON_METADATA_KEY: state.store.get(END_REASON_KEY)},
        )

    return score
