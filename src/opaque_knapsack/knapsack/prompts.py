"""The knapsack family's texts: what the puzzle is, its tools' documentation, the task statement.

The generic parts of every prompt (system prompt templates, runtime notes,
answer format, observations) are the agents' (``solvers/prompts.py``); a
prompts file may replace any text here too (``Prompts``' family fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the texts stay importable without the agents (and Inspect): the declaration imports them
    from opaque_knapsack.solvers.prompts import Prompts

KNAPSACK_TOOL_DOCS = """\
Tools (plain Python functions, already defined in the interpreter):
- list_items() -> str: JSON list of all item ids.
- inspect(item_id) -> str: JSON {"class": str, "value": int, "weight": int} of one item.
  Each distinct item you inspect costs one unit of the inspect budget; inspecting
  an item again is free and returns the same answer.
- take_item(item_id) -> str: put the item in the knapsack. Refused (nothing changes)
  if the id is unknown, the item is already taken, its class is not allowed, it
  would exceed the capacity{strict_take_clause}.
- finish() -> str: end the episode after the current step.
A refused or failing call raises ToolError (an Exception) inside your code; you
may catch it. Taking an item cannot be undone.
Example:
```python
import json
item_ids = json.loads(list_items())
item = json.loads(inspect(item_ids[0]))
print(item_ids[0], item["class"], item["value"], item["weight"])
```"""

REACT_TOOL_DOCS = """\
Tools (call them through function calling; each returns a string):
- list_items(): JSON list of all item ids.
- inspect(item_id): JSON {"class": str, "value": int, "weight": int} of one item.
  Each distinct item you inspect costs one unit of the inspect budget; inspecting
  an item again is free and returns the same answer.
- take_item(item_id): put the item in the knapsack. Refused (nothing changes) if
  the id is unknown, the item is already taken, its class is not allowed, it
  would exceed the capacity{strict_take_clause}.
- finish(): end the episode.
A refused or failing call returns an error instead of a result. Taking an item
cannot be undone."""

STRICT_TAKE_CLAUSE = ", or it has not been inspected first"


PUZZLE = """\
Items are identified by opaque ids. Each item has a class, a value and a weight,
all hidden until you inspect it, and the inspect budget is smaller than the
number of items. Only some classes are allowed in the knapsack, and which ones is
hidden too: a take of an item whose class is not allowed is refused. Maximise
the total value of the items you take without exceeding the capacity, then call
finish()."""

SYSTEM_INTRO = "You are solving an Opaque Knapsack puzzle by writing Python code.\n" + PUZZLE
REACT_INTRO = "You are solving an Opaque Knapsack puzzle by calling tools.\n" + PUZZLE


TASK_STATEMENT = """\
New knapsack instance.
Number of items: {n_items}
Capacity: {capacity}
Inspect budget: {inspect_budget}
Classes an item may have: {class_names}
Some of these classes are not allowed; which ones is hidden.
Call list_items() to get the item ids."""


STATEMENT_PLACEHOLDERS = ("n_items", "capacity", "inspect_budget", "class_names")


def strict_take_clause(strict_take: bool) -> str:
    """The tool docs' ``{strict_take_clause}``: the strict take rule's words, or nothing."""
    return STRICT_TAKE_CLAUSE if strict_take else ""


def knapsack_tool_docs(strict_take: bool, prompts: Prompts | None = None) -> str:
    """CodeAct's documentation of the knapsack tools, with the take rule the task runs with."""
    from opaque_knapsack.knapsack.family import KNAPSACK
    from opaque_knapsack.solvers.prompts import DEFAULT_PROMPTS

    return (prompts or DEFAULT_PROMPTS).family_text(KNAPSACK, "codeact_tool_docs", {"strict_take_clause": strict_take_clause(strict_take)})


def task_statement(
    *,
    n_items: int,
    capacity: int,
    inspect_budget: int,
    class_names: Sequence[str],
    prompts: Prompts | None = None,
) -> str:
    """The first user message. Holds only public facts: never allowed classes."""
    from opaque_knapsack.knapsack.family import KNAPSACK
    from opaque_knapsack.solvers.prompts import DEFAULT_PROMPTS

    values = {"n_items": n_items, "capacity": capacity, "inspect_budget": inspect_budget}
    return (prompts or DEFAULT_PROMPTS).family_text(KNAPSACK, "task_statement", {**values, "class_names": ", ".join(class_names)})
