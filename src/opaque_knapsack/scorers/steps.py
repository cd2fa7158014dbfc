"""The per-episode figures every task family shares: effort, tokens and behaviour.

They come from the agents' step records alone (the store's steps list), so a
new task family's scorer adds its own outcome figures to these instead of
recomputing them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from opaque_knapsack.records import TOKEN_KEYS, ScoreKey
from opaque_knapsack.scorers.behaviour import StepCode, ast_tool_call_sites, behaviour_metrics, tool_call_sites

StepDict = Mapping[str, object]
"""One ``StepRecord.to_dict()`` as the store keeps it."""


def step_figures(
    steps: Sequence[StepDict], tool_names: Iterable[str], prebound: Iterable[str] = ()
) -> dict[str, float]:
    """Steps, tool calls, tokens, NameErrors and the behaviour metrics of one episode.

    ``tool_names``: the family's tools (never carried references, and what
    tool call sites count); ``prebound``: names the runtime binds before every
    step (``json``), which like builtins are never carried references.
    """
    tools = frozenset(tool_names)
    executed = [
        StepCode(turn=int(_number(step.get("turn"))), code=str(step["code"]), bound_at_start=_bound(step))
        for step in steps
        if step.get("code") is not None
    ]
    behaviour = behaviour_metrics(executed, tool_names=(*tools, *prebound))
    name_errors = sum(1 for step in steps if step.get("is_name_error"))
    tokens = {key: float(sum(_number(step.get(key)) for step in steps)) for key in TOKEN_KEYS}
    if not tokens[ScoreKey.TOTAL_TOKENS]:  # a log from before the provider's total was recorded
        tokens[ScoreKey.TOTAL_TOKENS] = tokens[ScoreKey.INPUT_TOKENS] + tokens[ScoreKey.OUTPUT_TOKENS]
    figures = {
        ScoreKey.STEPS: float(len(steps)),
        ScoreKey.TOOL_CALLS: float(sum(_number(step.get(ScoreKey.TOOL_CALLS)) for step in steps)),
        # the paper's text rule on purpose (a regex, unlike every other code figure): comparable with its tables
        ScoreKey.TOOL_CALL_SITES: float(sum(tool_call_sites(step.code, tools) for step in executed)),
        ScoreKey.AST_TOOL_CALL_SITES: float(sum(ast_tool_call_sites(step.code, tools) for step in executed)),
        **tokens,
        ScoreKey.NAME_ERROR_EPISODE: 1.0 if name_errors else 0.0,
        ScoreKey.NAME_ERROR_COUNT: float(name_errors),
        ScoreKey.STATE_UTILIZATION: float(behaviour.state_utilization),
        ScoreKey.REIMPORT_RATE: float(behaviour.reimport_rate),
        ScoreKey.SYMBOL_LIFESPAN: float(behaviour.symbol_lifespan),
        ScoreKey.STEP_TIMEOUTS: float(sum(1 for step in steps if step.get("timed_out"))),
        ScoreKey.KERNEL_RESTARTS: float(sum(1 for step in steps if step.get("kernel_restarted"))),
    }
    return {str(key): value for key, value in figures.items()}  # plain strings in the log


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _bound(step: StepDict) -> frozenset[str] | None:
    names = step.get("bound_at_start")
    return frozenset(str(name) for name in names) if isinstance(names, list) else None
