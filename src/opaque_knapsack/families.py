"""The task families: what a family declares, and the registry that names each one in one line.

A task family is a plugin. It declares itself in one ``TaskFamily`` (its
tools and their docs, task statement, score keys, scorer, and where its task,
generator and scripted policies live) and is named in ``FAMILIES`` below.
The generic parts of the package never import a family's modules by name:
an agent (and the ``scripted`` model provider) reaches the family of the
sample it runs through the live episode (``Episode.family``); the Inspect
entry point (``_registry.py``) imports each family's task so ``inspect eval
opaque_knapsack/<name>`` finds it; ``generate`` and the quickstart look a
family up by the name a user types. A declaration names its task, generator
and policies as ``"module:attribute"``, imported only when used, and this
module imports nothing of the package but ``records``, so all of it is cheap
to import (``opaque-knapsack --help`` included) and free of cycles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol

from opaque_knapsack.records import TASK_NAME


@dataclass(frozen=True)
class TaskFamily:
    """A task family's declaration (see CONTRIBUTING.md, "Add a task family")."""

    name: str
    """The family's name: its registry key, its task's name (``opaque_knapsack/<name>``) and the
    ``family`` eval metadata value that export reads."""
    tools: tuple[str, ...]
    """The host functions its episode offers, by name (what the shared step figures count)."""
    codeact_instructions: str
    """What the task is, opening CodeAct's system prompt."""
    codeact_tool_docs: str
    """CodeAct's documentation of the tools (a template: see ``placeholders``)."""
    task_statement: str
    """The first user message's template; the family's dataset fills it per sample."""
    task: str
    """``module:function`` of the family's ``@task``; the package's Inspect entry point imports it."""
    scorer: str
    """The registered name of its scorer, whose dict score readers of logs take as the episode's figures."""
    score_keys: tuple[str, ...]
    """The outcome figures its scorer writes before the shared step figures (``step_figures``)."""
    react_instructions: str | None = None
    """What the task is for the ReAct agent; None: the family has no ReAct prompt, so ReAct refuses it."""
    react_tool_docs: str | None = None
    react_tools: str | None = None
    """``module:function`` returning its tools as Inspect tools; None: ReAct wraps the host functions."""
    placeholders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Text field -> the ``{placeholders}`` its template may hold; a prompts file's other ``{word}`` is an error."""
    generator: str | None = None
    """``module:attribute`` of its ``TaskGenerator`` (``generate --family``, the quickstart); None: no task files."""
    scripted: str | None = None
    """``module:attribute`` of its ``ScriptedPolicies`` for the ``scripted`` model provider; None: none."""

    def load(self, reference: str) -> Any:
        """The object a ``module:attribute`` reference of this declaration names."""
        module, _, attribute = reference.partition(":")
        return getattr(import_module(module), attribute)

    def task_generator(self) -> TaskGenerator:
        if self.generator is None:
            raise ValueError(f"the {self.name} family has no task generator")
        generator: TaskGenerator = self.load(self.generator)
        return generator

    def scripted_policies(self) -> ScriptedPolicies:
        if self.scripted is None:
            raise ValueError(f"the {self.name} family has no scripted policies")
        policies: ScriptedPolicies = self.load(self.scripted)
        return policies


@dataclass(frozen=True)
class TaskRequest:
    """What ``generate`` (or the quickstart) asks of a family's generator."""

    num: int
    seed_start: int = 0
    """Instance i has seed ``seed_start + i``."""
    preset: str | None = None
    """None: the family's first preset."""
    config: str | None = None
    """A custom generator config file, where the family has one."""
    workers: int = 1
    run_name: str | None = None
    on_progress: Callable[[int], None] | None = None
    """Called with the number of files done since the last call."""


@dataclass
class GeneratedTasks:
    """What a generator wrote: the folder to give the task as ``tasks``, and how each file fared."""

    folder: Path
    label: str
    """The preset (or custom config) the files were made with: the task's difficulty."""
    counts: Mapping[str, int]
    """written, kept (already right) and rewritten files."""
    manifest: Path | None = None


class TaskGenerator(Protocol):
    """A family's task files: deterministic per (preset, index, seed), written atomically, resumable."""

    @property
    def presets(self) -> Sequence[str]:
        """The difficulty presets, in order; the first is the default."""
        ...

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """What ``write`` raises for a user's bad input (a preset, a config file): shown as one line."""
        ...

    def write(self, out: Path, request: TaskRequest) -> GeneratedTasks:
        """Write the requested task files under ``out``."""
        ...


class ScriptedPolicies(Protocol):
    """A family's offline policies: what ``scripted/<style>`` answers in one of its samples.

    Each reads only the conversation, as a model would: the messages so far
    (and, for ReAct, the tools offered).
    """

    def codeact_reply(self, style: str, messages: Sequence[Any]) -> str:
        """The next CodeAct reply (prose and one Python block) of the policy of ``style``."""
        ...

    def react_calls(self, style: str, messages: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
        """The next ReAct reply's tool calls, as (function, arguments)."""
        ...


# -- the registry --------------------------------------------------------------------------------

FAMILIES: dict[str, str] = {
    TASK_NAME: "opaque_knapsack.knapsack.family:KNAPSACK",
    "guess": "opaque_knapsack.guess.family:GUESS",
}
"""Family name -> ``module:attribute`` of its declaration. Add a family with one line here."""

DEFAULT_FAMILY = TASK_NAME


class UnknownFamily(ValueError):
    """A family name that is not registered: one line naming the flag and the choices."""

    def __init__(self, name: str, flag: str = "--family") -> None:
        super().__init__(f"{flag} {name!r} is not a task family (choices: {', '.join(FAMILIES)})")


def task_family(name: str, flag: str = "--family") -> TaskFamily:
    """The declaration of the family called ``name``; ``flag`` names where the user typed it."""
    reference = FAMILIES.get(name)
    if reference is None:
        raise UnknownFamily(name, flag)
    module, _, attribute = reference.partition(":")
    family: TaskFamily = getattr(import_module(module), attribute)
    return family
