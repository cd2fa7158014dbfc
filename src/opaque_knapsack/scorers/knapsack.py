"""The episode scorer: every per-episode figure of the study in one Score.

Reads only what the log keeps (sample metadata and store), so ``inspect score``
re-scores a finished log without re-running anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from inspect_ai.scorer import Score, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from opaque_knapsack.family import KnapsackEnvironment, TaskInstance
from opaque_knapsack.records import (
    END_REASON_KEY,
    ENVIRONMENT_KEY,
    PREBOUND_KEY,
    STEPS_KEY,
    STRICT_TAKE_KEY,
    TOOL_NAMES,
    instance_from_metadata,
)
from opaque_knapsack.scorers.behaviour import StepCode, behaviour_metrics, tool_call_sites

TOOLS = frozenset(TOOL_NAMES)


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
    executed = [
        StepCode(turn=step["turn"], code=step["code"], bound_at_start=_bound(step))
        for step in steps
        if step.get("code") is not None
    ]
    behaviour = behaviour_metrics(executed, tool_names=(*TOOL_NAMES, *prebound))
    name_errors = sum(1 for step in steps if step.get("is_name_error"))
    tokens = {key: float(sum(step.get(key) or 0 for step in steps)) for key in _TOKEN_KEYS}
    if not tokens["total_tokens"]:  # a log from before the provider's total was recorded
        tokens["total_tokens"] = tokens["input_tokens"] + tokens["output_tokens"]
    return {
        "optimality": float(optimality),
        "solved": 1.0 if environment.total_value >= optimal else 0.0,
        "capacity_utilization": environment.total_weight / instance.public.capacity,
        "items_inspected": float(len(environment.inspected)),
        "steps": float(len(steps)),
        "tool_calls": float(sum(step.get("tool_calls", 0) for step in steps)),
        "tool_call_sites": float(sum(tool_call_sites(step.code, TOOLS) for step in executed)),
        **tokens,
        "name_error_episode": 1.0 if name_errors else 0.0,
        "name_error_count": float(name_errors),
        "state_utilization": float(behaviour.state_utilization),
        "reimport_rate": float(behaviour.reimport_rate),
        "symbol_lifespan": float(behaviour.symbol_lifespan),
        "step_timeouts": float(sum(1 for step in steps if step.get("timed_out"))),
        "kernel_restarts": float(sum(1 for step in steps if step.get("kernel_restarted"))),
    }


_TOKEN_KEYS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "total_tokens")


def _bound(step: dict[str, Any]) -> frozenset[str] | None:
    names = step.get("bound_at_start")
    return frozenset(names) if names is not None else None


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
                f"value {figures['optimality'] * instance.reference.optimal_value:g} of optimal "
                f"{instance.reference.optimal_value} with {len(taken)} items; "
                f"episode ended: {state.store.get(END_REASON_KEY) or 'unknown'}"
            ),
            # kept small: Inspect deep-copies each score once per metric key
            metadata={"end_reason": state.store.get(END_REASON_KEY)},
        )

    return score
