"""What the model reads: system prompts, the task statement, observations.

The runtime note is the only place the two conditions differ in wording, so a
model's behaviour can be traced to the semantics it was told about (and, in
the mismatched conditions, to the semantics it was trained on). The notes give
the paper's instructions in this package's own words and no advice the paper
did not give: the persistent note asks the model not to re-import modules, not
to paste code from earlier steps and to write reusable helpers; the stateless
note states the semantics only.

Every text a researcher may want to change is a field of ``Prompts``, which a
YAML or JSON file (``-T prompts=FILE``, ``codeact(prompts=...)``,
``react(prompts=...)``) replaces without a code edit. Templates name their
parts as ``{placeholder}``; any other brace (a JSON example, an f-string) is
text. The placeholders each template knows are listed in ``PLACEHOLDERS``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opaque_knapsack.records import PERSISTENT, STATELESS, ReActAgent, Runtime, RuntimeSemantics

RUNTIME_NOTES: dict[Runtime, str] = {
    PERSISTENT: (
        "Runtime: PERSISTENT Python interpreter. Everything your code defines -- "
        "variables, functions, classes and imports -- stays alive for all later "
        "steps of this episode. After each step you are shown the names of the "
        "live globals. Do not import a module again once an earlier step has "
        "imported it, and do not paste code from earlier steps into a new block: "
        "use the names that already exist. Write reusable helper functions for "
        "work you will do more than once."
    ),
    STATELESS: (
        "Runtime: STATELESS Python interpreter. Every step starts in a fresh "
        "interpreter: nothing your code defines (variables, functions, classes, "
        "imports) survives to the next step."
    ),
}

STATELESS_KEEP_FILES_NOTE = (
    "Runtime: STATELESS Python interpreter with a PERSISTENT working directory. Every "
    "step starts in a fresh interpreter: nothing your code defines (variables, "
    "functions, classes, imports) survives to the next step, but files your code "
    "writes in the working directory are kept for later steps."
)

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

CODEACT_FORMAT = """\
Answer format: think briefly, then give at most ONE fenced Python block:
```python
# your code
```
The block runs and the next message shows {shown},
or its error. A reply with no block runs
nothing; a reply with two or more blocks runs nothing and is an error. At most
{max_tool_calls} tool calls run per block; you have {max_turns} replies in all."""

REACT_FORMAT = """\
Call one or more tools per reply. At most {max_tool_calls} tool calls run per reply;
you have {max_turns} replies in all."""

PUZZLE = """\
Items are identified by opaque ids. Each item has a class, a value and a weight,
all hidden until you inspect it, and the inspect budget is smaller than the
number of items. Only some classes are allowed in the knapsack, and which ones is
hidden too: a take of an item whose class is not allowed is refused. Maximise
the total value of the items you take without exceeding the capacity, then call
finish()."""

SYSTEM_INTRO = "You are solving an Opaque Knapsack puzzle by writing Python code.\n" + PUZZLE
REACT_INTRO = "You are solving an Opaque Knapsack puzzle by calling tools.\n" + PUZZLE

CODEACT_SYSTEM = "\n\n".join(["{instructions}", "{runtime_note}", "{tool_docs}", CODEACT_FORMAT])
REACT_SYSTEM = "\n\n".join(["{instructions}", "{tool_docs}", REACT_FORMAT])

TASK_STATEMENT = """\
New knapsack instance.
Number of items: {n_items}
Capacity: {capacity}
Inspect budget: {inspect_budget}
Classes an item may have: {class_names}
Some of these classes are not allowed; which ones is hidden.
Call list_items() to get the item ids."""

PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "codeact_system": ("instructions", "runtime_note", "tool_docs", "max_tool_calls", "max_turns", "shown"),
    "react_system": ("instructions", "tool_docs", "max_tool_calls", "max_turns"),
    "codeact_tool_docs": ("strict_take_clause",),
    "react_tool_docs": ("strict_take_clause",),
    "task_statement": ("n_items", "capacity", "inspect_budget", "class_names"),
}
"""Template field -> the placeholders it may hold. In the system prompts and the
task statement any other ``{word}`` is an error (a misspelt placeholder would
otherwise reach the model as text); the tool docs may hold code with braces."""
CHECKED_TEMPLATES = ("codeact_system", "react_system", "task_statement")

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(template: str, values: Mapping[str, object]) -> str:
    """The template with its known ``{placeholders}`` replaced; every other brace stays as written."""
    return PLACEHOLDER.sub(lambda match: str(values[match[1]]) if match[1] in values else match[0], template)


FewShotKey = Runtime | ReActAgent
"""Few-shot turns are given per runtime for CodeAct, and under ``react`` for ReAct."""


class Turn(BaseModel):
    """One few-shot message, inserted after the system prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    content: str


class Prompts(BaseModel):
    """Every text the agents show the model; a prompts file sets any of them.

    Fields a file leaves out keep the package's defaults, and so do the
    runtime notes it leaves out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    codeact_system: str = CODEACT_SYSTEM
    """CodeAct system prompt template: {instructions}, {runtime_note}, {tool_docs}, {max_tool_calls}, {max_turns}."""
    react_system: str = REACT_SYSTEM
    """ReAct system prompt template: {instructions}, {tool_docs}, {max_tool_calls}, {max_turns}."""
    codeact_instructions: str = SYSTEM_INTRO
    """What the task is (CodeAct's {instructions})."""
    react_instructions: str = REACT_INTRO
    """What the task is (ReAct's {instructions})."""
    runtime_notes: dict[Runtime, str] = Field(default_factory=lambda: dict(RUNTIME_NOTES))
    """The runtime note per runtime (CodeAct's {runtime_note})."""
    stateless_keep_files_note: str = STATELESS_KEEP_FILES_NOTE
    """The stateless runtime's note when its working directory keeps files."""
    codeact_tool_docs: str = KNAPSACK_TOOL_DOCS
    """CodeAct's {tool_docs}: {strict_take_clause} is the strict take rule's clause, or nothing."""
    react_tool_docs: str = REACT_TOOL_DOCS
    """ReAct's {tool_docs}: {strict_take_clause} as for CodeAct."""
    task_statement: str = TASK_STATEMENT
    """The first user message: {n_items}, {capacity}, {inspect_budget}, {class_names}."""
    few_shot: dict[FewShotKey, list[Turn]] = Field(default_factory=dict)
    """Messages inserted after the system prompt, per runtime (CodeAct) or under ``react``."""

    @field_validator("runtime_notes")
    @classmethod
    def _every_runtime_has_a_note(cls, notes: dict[Runtime, str]) -> dict[Runtime, str]:
        return {**RUNTIME_NOTES, **notes}

    @model_validator(mode="after")
    def _known_placeholders(self) -> Prompts:
        for name in CHECKED_TEMPLATES:
            unknown = sorted(set(PLACEHOLDER.findall(getattr(self, name))) - set(PLACEHOLDERS[name]))
            if unknown:
                known = ", ".join("{" + p + "}" for p in PLACEHOLDERS[name])
                raise ValueError(f"{name}: unknown placeholder {{{unknown[0]}}} (known: {known})")
        return self

    def runtime_note(self, semantics: RuntimeSemantics) -> str:
        """The note of the runtime: a fresh interpreter that keeps files has its own."""
        if semantics.keeps_files and not semantics.persists_state:
            return self.stateless_keep_files_note
        return self.runtime_notes[semantics.name]

    def turns(self, key: FewShotKey) -> list[Turn]:
        return list(self.few_shot.get(key, ()))


DEFAULT_PROMPTS = Prompts()


class PromptsError(ValueError):
    """A prompts file that cannot be used: one line naming the file and the field."""

    def __init__(self, path: str, detail: str) -> None:
        self.path, self.detail = path, detail
        super().__init__(f"prompts file {path}: {detail}")


def load_prompts(source: str | Path | Prompts | None) -> Prompts:
    """The prompts of a YAML or JSON file (a ``Prompts`` or None passes through as itself or the defaults)."""
    if source is None:
        return DEFAULT_PROMPTS
    if isinstance(source, Prompts):
        return source
    path = str(source)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data: Any = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except OSError as error:
        raise PromptsError(path, f"cannot be read ({error.strerror or error})") from None
    except (ValueError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PromptsError(path, f"is not valid {'JSON' if path.endswith('.json') else 'YAML'}: {first}") from None
    if not isinstance(data, dict):
        raise PromptsError(path, "must hold a mapping of prompt fields (see solvers/prompts.py, Prompts)")
    try:
        return Prompts.model_validate(data)
    except ValidationError as error:
        raise PromptsError(path, _first_problem(error)) from None


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"] if part != "[key]")  # pydantic's marker of a bad dict key
    message = str(problem["msg"]).removeprefix("Value error, ")
    return f"field {where}: {message}" if where else message


def runtime_note(semantics: RuntimeSemantics, prompts: Prompts = DEFAULT_PROMPTS) -> str:
    """The note of the runtime (see ``Prompts.runtime_note``)."""
    return prompts.runtime_note(semantics)


def knapsack_tool_docs(strict_take: bool, prompts: Prompts = DEFAULT_PROMPTS) -> str:
    """CodeAct's documentation of the knapsack tools, with the take rule the task runs with."""
    return fill(prompts.codeact_tool_docs, {"strict_take_clause": STRICT_TAKE_CLAUSE if strict_take else ""})


def codeact_system_prompt(
    semantics: RuntimeSemantics,
    *,
    strict_take: bool,
    max_tool_calls: int,
    max_turns: int,
    tool_docs: str | None = None,
    instructions: str | None = None,
    prompts: Prompts = DEFAULT_PROMPTS,
    echo_last_expression: bool = False,
) -> str:
    """The CodeAct system prompt; ``tool_docs`` and ``instructions`` replace the
    knapsack tools' documentation and statement for another task family;
    ``echo_last_expression``: the runtime shows a bare final expression's value."""
    return fill(
        prompts.codeact_system,
        {
            "instructions": prompts.codeact_instructions if instructions is None else instructions,
            "runtime_note": prompts.runtime_note(semantics),
            "tool_docs": knapsack_tool_docs(strict_take, prompts) if tool_docs is None else tool_docs,
            "max_tool_calls": max_tool_calls,
            "max_turns": max_turns,
            "shown": shown_output(echo_last_expression),
        },
    )


def shown_output(echo_last_expression: bool) -> str:
    """What of a block's run the model is shown: what the runtime does (``RuntimeConfig.echo_last_expression``)."""
    if echo_last_expression:
        return "what it printed and then the value of a bare final expression"
    return "only what it printed"


def react_system_prompt(
    *, strict_take: bool, max_tool_calls: int, max_turns: int, prompts: Prompts = DEFAULT_PROMPTS
) -> str:
    """The ReAct system prompt: its own text, not CodeAct's rewritten."""
    docs = fill(prompts.react_tool_docs, {"strict_take_clause": STRICT_TAKE_CLAUSE if strict_take else ""})
    values = {"instructions": prompts.react_instructions, "tool_docs": docs}
    return fill(prompts.react_system, {**values, "max_tool_calls": max_tool_calls, "max_turns": max_turns})


def task_statement(
    *,
    n_items: int,
    capacity: int,
    inspect_budget: int,
    class_names: Sequence[str],
    prompts: Prompts = DEFAULT_PROMPTS,
) -> str:
    """The first user message. Holds only public facts: never allowed classes."""
    return fill(
        prompts.task_statement,
        {"n_items": n_items, "capacity": capacity, "inspect_budget": inspect_budget, "class_names": ", ".join(class_names)},
    )


OBSERVATION_PREFIX = "Observation:"
GLOBALS_PREFIX = "Globals:"


def observation(
    *,
    output: str,
    error: str | None,
    semantics: RuntimeSemantics,
    globals_: Sequence[str] | None,
    notes: Sequence[str] = (),
) -> str:
    """The user message that follows an executed block."""
    lines = [OBSERVATION_PREFIX]
    lines.extend(notes)
    lines.append(output.rstrip("\n") if output.strip() else "(no output)")
    if error:
        lines.append(error.rstrip("\n"))
    if semantics.persists_state:
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


def cut_off_notice(stop_reason: str) -> str:
    """What the model is told when its reply was dropped for its stop reason (the turn is spent)."""
    return (
        f"Your last reply ended unexpectedly (stop reason: {stop_reason}), so it was discarded "
        "and nothing in it ran. Please continue."
    )
