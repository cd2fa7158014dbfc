"""The knapsack family's declaration: what the agents, the registry and the command line know of it."""

from __future__ import annotations

from opaque_knapsack.families import TaskFamily
from opaque_knapsack.knapsack.prompts import (
    KNAPSACK_TOOL_DOCS,
    REACT_INTRO,
    REACT_TOOL_DOCS,
    STATEMENT_PLACEHOLDERS,
    SYSTEM_INTRO,
    TASK_STATEMENT,
)
from opaque_knapsack.records import SCORER_NAME, TASK_NAME, TOOL_NAMES, ScoreKey

OUTCOME_KEYS = (ScoreKey.OPTIMALITY, ScoreKey.SOLVED, ScoreKey.CAPACITY_UTILIZATION, ScoreKey.ITEMS_INSPECTED)

KNAPSACK = TaskFamily(
    name=TASK_NAME, tools=TOOL_NAMES,
    codeact_instructions=SYSTEM_INTRO, codeact_tool_docs=KNAPSACK_TOOL_DOCS,
    react_instructions=REACT_INTRO, react_tool_docs=REACT_TOOL_DOCS,
    task_statement=TASK_STATEMENT, placeholders={"task_statement": STATEMENT_PLACEHOLDERS},
    task="opaque_knapsack.knapsack.task:knapsack",
    scorer=SCORER_NAME, score_keys=tuple(key.value for key in OUTCOME_KEYS),
    react_tools="opaque_knapsack.knapsack.tools:knapsack_tools",
    generator="opaque_knapsack.knapsack.writer:GENERATOR",
    scripted="opaque_knapsack.knapsack.policies:POLICIES",
)  # fmt: skip
