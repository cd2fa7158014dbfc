"""What the model reads: system prompts, runtime notes, observations, for any task family.

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

What the task is, its tools' documentation and its task statement belong to
the task family (``TaskFamily``): a prompts file may replace them too, and
where it does not, the family of the sample's episode supplies its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opaque_knapsack.families import TaskFamily
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

CODEACT_SYSTEM = "\n\n".join(["{instructions}", "{runtime_note}", "{tool_docs}", CODEACT_FORMAT])
REACT_SYSTEM = "\n\n".join(["{instructions}", "{tool_docs}", REACT_FORMAT])

PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "codeact_system": ("instructions", "runtime_note", "tool_docs", "max_tool_calls", "max_turns", "shown"),
    "react_system": ("instructions", "tool_docs", "max_tool_calls", "max_turns"),
}
"""Template field -> the placeholders it may hold. In the system prompts any
other ``{word}`` is an error (a misspelt placeholder would otherwise reach the
model as text); a family's texts are checked against its own ``placeholders``
(``check_family_texts``), and its tool docs may hold code with braces."""
FAMILY_TEXTS = ("codeact_instructions", "react_instructions", "codeact_tool_docs", "react_tool_docs", "task_statement")
"""The ``Prompts`` fields whose default is the sample's task family's own text."""

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
    codeact_instructions: str | None = None
    """What the task is (CodeAct's {instructions}); None: the task family's."""
    react_instructions: str | None = None
    """What the task is (ReAct's {instructions}); None: the task family's."""
    runtime_notes: dict[Runtime, str] = Field(default_factory=lambda: dict(RUNTIME_NOTES))
    """The runtime note per runtime (CodeAct's {runtime_note})."""
    stateless_keep_files_note: str = STATELESS_KEEP_FILES_NOTE
    """The stateless runtime's note when its working directory keeps files."""
    codeact_tool_docs: str | None = None
    """CodeAct's {tool_docs}, with the family's placeholders (knapsack: {strict_take_clause}); None: the family's."""
    react_tool_docs: str | None = None
    """ReAct's {tool_docs}, as for CodeAct; None: the family's."""
    task_statement: str | None = None
    """The first user message, with the family's placeholders (knapsack: {n_items}, {capacity},
    {inspect_budget}, {class_names}); None: the family's."""
    few_shot: dict[FewShotKey, list[Turn]] = Field(default_factory=dict)
    """Messages inserted after the system prompt, per runtime (CodeAct) or under ``react``."""

    @field_validator("runtime_notes")
    @classmethod
    def _every_runtime_has_a_note(cls, notes: dict[Runtime, str]) -> dict[Runtime, str]:
        return {**RUNTIME_NOTES, **notes}

    @model_validator(mode="after")
    def _known_placeholders(self) -> Prompts:
        for name, known in PLACEHOLDERS.items():
            _check_placeholders(name, getattr(self, name), known)
        return self

    def runtime_note(self, semantics: RuntimeSemantics) -> str:
        """The note of the runtime: a fresh interpreter that keeps files has its own."""
        if semantics.keeps_files and not semantics.persists_state:
            return self.stateless_keep_files_note
        return self.runtime_notes[semantics.name]

    def turns(self, key: FewShotKey) -> list[Turn]:
        return list(self.few_shot.get(key, ()))

    def family_text(self, family: TaskFamily, name: str, values: Mapping[str, object] = {}) -> str:  # noqa: B006
        """One of the family's texts (``FAMILY_TEXTS``): this file's if it sets it, else the family's own, filled."""
        template = getattr(self, name)
        if template is None:
            template = getattr(family, name)
        if template is None:
            raise ValueError(f"the {family.name} task family has no {name.replace('_', ' ')}")
        return fill(template, values)


def _check_placeholders(name: str, template: str | None, known: Sequence[str]) -> None:
    unknown = sorted(set(PLACEHOLDER.findall(template or "")) - set(known))
    if unknown:
        listed = ", ".join("{" + p + "}" for p in known) or "none"
        raise ValueError(f"{name}: unknown placeholder {{{unknown[0]}}} (known: {listed})")


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


def check_family_texts(prompts: Prompts, family: TaskFamily, path: str | None) -> Prompts:
    """The prompts, once the texts they set for the family hold only its placeholders (else a ``PromptsError``)."""
    for name, known in family.placeholders.items():
        try:
            _check_placeholders(name, getattr(prompts, name), known)
        except ValueError as error:
            raise PromptsError(path or "(given in Python)", str(error)) from None
    return prompts


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"] if part != "[key]")  # pydantic's marker of a bad dict key
    message = str(problem["msg"]).removeprefix("Value error, ")
    return f"field {where}: {message}" if where else message


def runtime_note(semantics: RuntimeSemantics, prompts: Prompts = DEFAULT_PROMPTS) -> str:
    """The note of the runtime (see ``Prompts.runtime_note``)."""
    return prompts.runtime_note(semantics)


def codeact_system_prompt(
    semantics: RuntimeSemantics,
    *,
    family: TaskFamily,
    max_tool_calls: int,
    max_turns: int,
    values: Mapping[str, object] = {},  # noqa: B006
    tool_docs: str | None = None,
    instructions: str | None = None,
    prompts: Prompts = DEFAULT_PROMPTS,
    echo_last_expression: bool = False,
) -> str:
    """The CodeAct system prompt for a sample of ``family``; ``values`` fill the
    family's placeholders (its episode's ``prompt_values()``); ``tool_docs`` and
    ``instructions`` replace its texts; ``echo_last_expression``: the runtime
    shows a bare final expression's value."""
    return fill(
        prompts.codeact_system,
        {
            "instructions": prompts.family_text(family, "codeact_instructions") if instructions is None else instructions,
            "runtime_note": prompts.runtime_note(semantics),
            "tool_docs": prompts.family_text(family, "codeact_tool_docs", values) if tool_docs is None else tool_docs,
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
    *,
    family: TaskFamily,
    max_tool_calls: int,
    max_turns: int,
    values: Mapping[str, object] = {},  # noqa: B006
    prompts: Prompts = DEFAULT_PROMPTS,
) -> str:
    """The ReAct system prompt: the family's own ReAct texts, not CodeAct's rewritten."""
    texts = {
        "instructions": prompts.family_text(family, "react_instructions"),
        "tool_docs": prompts.family_text(family, "react_tool_docs", values),
    }
    return fill(prompts.react_system, {**texts, "max_tool_calls": max_tool_calls, "max_turns": max_turns})


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
