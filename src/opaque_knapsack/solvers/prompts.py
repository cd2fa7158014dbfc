"""What the model reads: system prompts, the task statement, observations.

The runtime note is the only place the two conditions differ in wording, so a
model's behaviour can be traced to the semantics it was told about (and, in
the mismatched conditions, to the semantics it was trained on).
"""

from __future__ import annotations

from collections.abc import Sequence

from opaque_knapsack.records import PERSISTENT, STATELESS, Runtime

Semantics = Runtime

RUNTIME_NOTES: dict[Runtime, str] = {
    PERSISTENT: (
        "Runtime: PERSISTENT Python interpreter. Everything your code defines -- "
        "variables, functions, classes and imports -- stays alive for all later "
        "steps of this episode. After each step you are shown the names of the "
        "live globals. Build on what earlier steps computed instead of repeating it."
    ),
    STATELESS: (
        "Runtime: STATELESS Python interpreter. Every step starts in a fresh "
        "interpreter: nothing your code defines (variables, functions, classes, "
        "imports) survives to the next step. The conversation text is your only "
        "memory, so print whatever you will need later, and re-create it (for "
        "example as literals copied from earlier observations) in each block that needs it."
    ),
}

STATELESS_KEEP_FILES_NOTE = (
    "Runtime: STATELESS Python interpreter with a PERSISTENT working directory. Every "
    "step starts in a fresh interpreter: nothing your code defines (variables, "
    "functions, classes, imports) survives to the next step, but files your code "
    "writes in the working directory are kept for later steps."
)


def runtime_note(semantics: Semantics, keep_files: bool = False) -> str:
    """The runtime note; ``keep_files`` only matters in the stateless runtime (files survive steps)."""
    if semantics == "stateless" and keep_files:
        return STATELESS_KEEP_FILES_NOTE
    return RUNTIME_NOTES[semantics]


KNAPSACK_TOOL_DOCS = """\
Tools (plain Python functions, already defined in the interpreter):
- list_items() -> str: JSON list of all item ids.
- inspect(item_id) -> str: JSON {{"class": str, "value": int, "weight": int}} of one item.
  Each distinct item you inspect costs one unit of the inspect budget; inspecting
  an item again is free and returns the same answer.
- take_item(item_id) -> str: put the item in the knapsack. Refused (nothing changes)
  if the id is unknown, the item is already taken, its class is not allowed, it
  would exceed the capacity{strict_clause}.
- finish() -> str: end the episode after the current step.
A refused or failing call raises ToolError (an Exception) inside your code; you
may catch it. Taking an item cannot be undone."""

CODEACT_FORMAT = """\
Answer format: think briefly, then give at most ONE fenced Python block:
```python
# your code
```
The block runs and the next message shows {shown},
or its error. A reply with no block runs
nothing; a reply with two or more blocks runs nothing and is an error. At most
{max_tool_calls} tool calls run per block; you have {max_turns} replies in all."""

SYSTEM_INTRO = """\
You are solving an Opaque Knapsack puzzle by writing Python code.
Items are identified by opaque ids. Each item has a class, a value and a weight,
all hidden until you inspect it, and the inspect budget is smaller than the
number of items. Only some classes are allowed in the knapsack, and which ones is
hidden too: a take of an item whose class is not allowed is refused. Maximise
the total value of the items you take without exceeding the capacity, then call
finish()."""


def knapsack_tool_docs(strict_take: bool) -> str:
    clause = ", or it has not been inspected first" if strict_take else ""
    return KNAPSACK_TOOL_DOCS.format(strict_clause=clause)


tool_docs = knapsack_tool_docs  # the older name, kept for callers


def codeact_system_prompt(
    semantics: Semantics,
    *,
    strict_take: bool,
    max_tool_calls: int,
    max_turns: int,
    keep_files: bool = False,
    tool_docs: str | None = None,
    instructions: str | None = None,
    echo_last_expression: bool = False,
) -> str:
    """The CodeAct system prompt; ``tool_docs`` and ``instructions`` replace the
    knapsack tools' documentation and statement for another task family;
    ``echo_last_expression``: the runtime shows a bare final expression's value."""
    return "\n\n".join(
        [
            SYSTEM_INTRO if instructions is None else instructions,
            runtime_note(semantics, keep_files),
            knapsack_tool_docs(strict_take) if tool_docs is None else tool_docs,
            CODEACT_FORMAT.format(
                max_tool_calls=max_tool_calls, max_turns=max_turns, shown=shown_output(echo_last_expression)
            ),
        ]
    )


def shown_output(echo_last_expression: bool) -> str:
    """What of a block's run the model is shown: what the runtime does (``RuntimeConfig.echo_last_expression``)."""
    if echo_last_expression:
        return "what it printed and then the value of a bare final expression"
    return "only what it printed"


def react_system_prompt(*, strict_take: bool, max_turns: int) -> str:
    docs = tool_docs(strict_take).replace(
        "(plain Python functions, already defined in the interpreter)", "(call them as functions)"
    ).replace("raises ToolError (an Exception) inside your code; you\nmay catch it", "returns an error")
    return "\n\n".join(
        [SYSTEM_INTRO, docs, f"Call one or more tools per reply; you have {max_turns} replies in all."]
    )


def task_statement(
    *, n_items: int, capacity: int, inspect_budget: int, class_names: Sequence[str]
) -> str:
    """The first user message. Holds only public facts: never allowed classes."""
    return (
        "New knapsack instance.\n"
        f"Number of items: {n_items}\n"
        f"Capacity: {capacity}\n"
        f"Inspect budget: {inspect_budget}\n"
        f"Classes an item may have: {', '.join(class_names)}\n"
        "Some of these classes are not allowed; which ones is hidden.\n"
        "Call list_items() to get the item ids."
    )


OBSERVATION_PREFIX = "Observation:"
GLOBALS_PREFIX = "Globals:"


def observation(
    *,
    output: str,
    error: str | None,
    semantics: Semantics,
    globals_: Sequence[str] | None,
    notes: Sequence[str] = (),
) -> str:
    """The user message that follows an executed block."""
    lines = [OBSERVATION_PREFIX]
    lines.extend(notes)
    lines.append(output.rstrip("\n") if output.strip() else "(no output)")
    if error:
        lines.append(error.rstrip("\n"))
    if semantics == "persistent":
        lines.append(f"{GLOBALS_PREFIX} {', '.join(globals_) if globals_ else '(none)'}")
    return "\n".join(lines)


NO_BLOCK = (
    f"{OBSERVATION_PREFIX}\nNo Python block in your reply, so nothing ran. "
    "Reply with one ```python block to act, or call finish() in a block when you are done."
)


def several_blocks(count: int) -> str:
    return (
        f"{OBSERVATION_PREFIX}\nError: your reply has {count} Python blocks; nothing ran. "
        "Put all the code for this step in ONE ```python block."
    )
