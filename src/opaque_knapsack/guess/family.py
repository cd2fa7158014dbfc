"""The guess family's declaration: what the agents, the registry and the command line know of it."""

from __future__ import annotations

from opaque_knapsack.families import TaskFamily
from opaque_knapsack.records import ScoreKey

GUESS_TOOLS = ("guess", "finish")

CODEACT_TOOL_DOCS = """\
Tools (plain Python functions, already defined in the interpreter):
- guess(n) -> str: "higher" (the hidden number is above n), "lower" or "correct".
- finish() -> str: end the episode after the current step.
A failing call raises ToolError (an Exception) inside your code; you may catch it."""

REACT_TOOL_DOCS = """\
Tools (call them through function calling; each returns a string):
- guess(n): "higher" (the hidden number is above n), "lower" or "correct".
- finish(): end the episode."""

PUZZLE = "A whole number is hidden in a range you are told. Find it with as few guesses as you can, then call finish()."

GUESS = TaskFamily(
    name="guess",
    tools=GUESS_TOOLS,
    codeact_instructions="You are guessing a hidden number by writing Python code.\n" + PUZZLE,
    codeact_tool_docs=CODEACT_TOOL_DOCS,
    react_instructions="You are guessing a hidden number by calling tools.\n" + PUZZLE,
    react_tool_docs=REACT_TOOL_DOCS,
    task_statement="New number to find: it is a whole number from {low} to {high}.",
    placeholders={"task_statement": ("low", "high")},
    task="opaque_knapsack.guess.task:guess",
    scorer="guess_scorer",
    score_keys=(ScoreKey.OPTIMALITY.value, ScoreKey.SOLVED.value, "guesses"),
    generator="opaque_knapsack.guess.generator:GENERATOR",
    scripted="opaque_knapsack.guess.policies:POLICIES",
)
