"""The cross-evaluation matrix: every student x runtime x difficulty, as one eval set.

Each condition is one Inspect task: ``opaque_knapsack/knapsack`` created with
that condition's task args (runtime, difficulty, num, seed_start, agent) and
given its student as the task's own model, its tags (``train:<label>``,
``runtime:<r>``, ``difficulty:<d>``) and eval metadata (``train``, ``runtime``,
``difficulty``), which the reports use to split the conditions. All conditions
run through one ``inspect_ai.eval_set`` call: resumable (re-running the same
command picks up finished logs and retries the rest), one log per condition.

Task identity within an eval set is ``task name # hash(task args) / model /
hash(plan, config, limits)``. Each condition's task is named after its
student, runtime and difficulty (so Inspect's progress display and the logs
say which cell they are); the log keeps the registered name
``opaque_knapsack/knapsack`` in ``task_registry_name``, which the export and
the reports recognise. Two students given the same model would share a
server-side identity, and are refused up front.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from opaque_knapsack.records import (
    CODEACT,
    DIFFICULTY_METADATA_KEY,
    RUNTIME_METADATA_KEY,
    RUNTIMES,
    TASK_NAME,
    TASK_REGISTRY_NAME,
    TRAIN_METADATA_KEY,
    Agent,
    Runtime,
)
from opaque_knapsack.train.students import STUDENT_MAX_TOKENS, STUDENT_TEMPERATURE

__all__ = ["Condition", "MatrixError", "MatrixSpec", "TaskFactory", "build_tasks", "conditions", "run_matrix"]

PAPER_SEED_START = 123456789

# (runtime, difficulty, num, seed_start, agent) or (runtime, tasks, agent) -> Task
TaskFactory = Callable[..., Any]


class MatrixError(ValueError):
    """A matrix that cannot run as asked."""


class MatrixSpec(BaseModel):
    """What to evaluate and how."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    students: dict[str, Any] = Field(description="train label -> model name (or an inspect_ai Model).")
    runtimes: list[Runtime] = Field(default_factory=lambda: list(RUNTIMES))
    difficulties: list[str] = Field(default_factory=lambda: ["easy", "medium"])
    num: int = Field(default=100, ge=1)
    seed_start: int = Field(default=PAPER_SEED_START, ge=0)
    agent: Agent = CODEACT
    max_retries: int | None = Field(default=None, ge=0, description="Model API retries per call (Inspect's).")
    timeout: int | None = Field(default=None, ge=1, description="Seconds per model call (Inspect's).")
    retry_on_error: int | None = Field(default=None, ge=0, description="Times an errored sample is retried.")
    task_options: dict[str, Any] = Field(
        default_factory=dict, description="More task args for every condition (e.g. max_turns for a smoke run)."
    )
    log_dir: str
    task: str = TASK_REGISTRY_NAME
    max_connections: int | None = Field(default=None, ge=1)
    max_samples: int | None = Field(default=None, ge=1)
    max_tasks: int | None = Field(default=None, ge=1)
    model_base_url: str | None = None
    temperature: float | None = STUDENT_TEMPERATURE
    max_tokens: int | None = STUDENT_MAX_TOKENS
    time_limit: int | None = Field(
        default=None, ge=1, description="Wall-clock seconds per episode (Inspect's; the paper gave students 900)."
    )
    retry_attempts: int | None = Field(default=None, ge=0)
    display: str | None = None
    tasks: list[str] = Field(default_factory=list)
    """Task folders, one per difficulty (e.g. the paper's own files), instead of
    generating `num` instances of each of `difficulties`; each folder's label
    comes from its manifest or its files."""
    _task_sets: dict[str, str] = PrivateAttr(default_factory=dict)  # label -> folder

    def task_sets(self) -> dict[str, str]:
        """Label -> folder for `tasks`, labelled once from each folder's manifest or files.

        Raises MatrixError for an unreadable folder, a folder that mixes
        presets, or two folders of the same difficulty.
        """
        if self._task_sets or not self.tasks:
            return self._task_sets
        from opaque_knapsack.knapsack import TaskFileError, load_tasks
        from opaque_knapsack.knapsack.labels import MIXED, tasks_label

        found: dict[str, str] = {}
        for folder in self.tasks:
            try:
                label = tasks_label(folder, load_tasks(folder))
            except TaskFileError as error:
                raise MatrixError(f"--tasks {folder}: {error}") from None
            if label == MIXED:
                raise MatrixError(f"--tasks {folder}: the files fit different presets; give one folder per difficulty")
            if label in found:
                raise MatrixError(f"--tasks {folder} and {found[label]} are both {label!r}; give one folder per difficulty")
            found[label] = folder
        self._task_sets = found
        return found

    @field_validator("students")
    @classmethod
    def _students(cls, students: dict[str, Any]) -> dict[str, Any]:
        if not students:
            raise ValueError("at least one --student LABEL=MODEL is needed")
        models = [model if isinstance(model, str) else str(getattr(model, "name", model)) for model in students.values()]
        duplicates = sorted({model for model in models if models.count(model) > 1})
        if duplicates:
            raise ValueError(
                f"students share model(s) {', '.join(duplicates)}: each condition's model is part of its "
                "identity in the eval set, so give every student its own model name"
            )
        return students

    @field_validator("runtimes", "difficulties")
    @classmethod
    def _non_empty(cls, values: list[str]) -> list[str]:
        if not values:
            raise ValueError("must not be empty")
        if len(set(values)) != len(values):
            raise ValueError(f"repeated value in {values}")
        return values


@dataclass(frozen=True)
class Condition:
    """One cell of the matrix."""

    train: str
    model: Any
    runtime: str
    difficulty: str

    @property
    def label(self) -> str:
        return f"{self.train}-trained / {self.runtime} runtime / {self.difficulty}"

    @property
    def task_name(self) -> str:
        """What Inspect's progress display and the log's task name show for this cell.

        The log keeps the registered name (``task_registry_name``), which is
        how the export and the reports recognise a knapsack log.
        """
        return f"{TASK_NAME}-{self.train}-student-{self.runtime}-runtime-{self.difficulty}"

    @property
    def tags(self) -> list[str]:
        return [f"train:{self.train}", f"runtime:{self.runtime}", f"difficulty:{self.difficulty}"]

    @property
    def metadata(self) -> dict[str, str]:
        return {
            TRAIN_METADATA_KEY: self.train,
            RUNTIME_METADATA_KEY: self.runtime,
            DIFFICULTY_METADATA_KEY: self.difficulty,
        }

    @property
    def model_name(self) -> str:
        return self.model if isinstance(self.model, str) else str(getattr(self.model, "name", self.model))


def conditions(spec: MatrixSpec) -> list[Condition]:
    difficulties = list(spec.task_sets()) if spec.tasks else spec.difficulties
    return [
        Condition(train, model, runtime, difficulty)
        for train, model in spec.students.items()
        for runtime in spec.runtimes
        for difficulty in difficulties
    ]


def task_args(spec: MatrixSpec, condition: Condition) -> dict[str, Any]:
    if spec.tasks:
        folder = spec.task_sets()[condition.difficulty]
        return {"runtime": condition.runtime, "tasks": folder, "agent": spec.agent, **spec.task_options}
    return {
        "runtime": condition.runtime,
        "difficulty": condition.difficulty,
        "num": spec.num,
        "seed_start": spec.seed_start,
        "agent": spec.agent,
        **spec.task_options,
    }


def build_tasks(spec: MatrixSpec, task_factory: TaskFactory | None = None) -> list[Any]:
    """One Inspect task per condition, with its model, tags and metadata."""
    from inspect_ai import task_with
    from inspect_ai.model import get_model

    factory = task_factory or _registry_factory(spec.task)
    tasks = []
    for condition in conditions(spec):
        task = factory(**task_args(spec, condition))
        model = condition.model
        if isinstance(model, str):
            model = get_model(model, base_url=spec.model_base_url) if spec.model_base_url else model
        tasks.append(
            task_with(task, name=condition.task_name, model=model, tags=condition.tags, metadata=condition.metadata)
        )
    return tasks


def run_matrix(spec: MatrixSpec, task_factory: TaskFactory | None = None) -> tuple[bool, list[Any]]:
    """Run (or resume) every condition through one eval set; returns eval_set's result."""
    from inspect_ai import eval_set

    tasks = build_tasks(spec, task_factory)
    generate: dict[str, Any] = {}
    for key in ("max_connections", "temperature", "max_tokens", "max_retries", "timeout"):
        value = getattr(spec, key)
        if value is not None:
            generate[key] = value
    options: dict[str, Any] = {
        "log_dir": spec.log_dir,
        "model": None,  # every task carries its student
        "max_samples": spec.max_samples,
        "max_tasks": spec.max_tasks or len(tasks),
        "retry_attempts": spec.retry_attempts,
        "time_limit": spec.time_limit,
    }
    if spec.retry_on_error is not None:
        options["retry_on_error"] = spec.retry_on_error
    if spec.display:
        options["display"] = spec.display
    return eval_set(tasks, **options, **generate)


def describe(spec: MatrixSpec) -> str:
    """The conditions and settings, for --dry-run."""
    rows = [f"{len(conditions(spec))} conditions -> eval set in {spec.log_dir}"]
    for condition in conditions(spec):
        args = " ".join(f"-T {key}={value}" for key, value in task_args(spec, condition).items())
        rows.append(f"  {condition.label:<48} --model {condition.model_name} {args} tags={','.join(condition.tags)}")
    settings = {
        "max_connections": spec.max_connections,
        "max_samples": spec.max_samples,
        "max_tasks": spec.max_tasks,
        "model_base_url": spec.model_base_url,
        "temperature": spec.temperature,
        "max_tokens": spec.max_tokens,
        "time_limit": spec.time_limit,
    }
    rows.append("  " + " ".join(f"{key}={value}" for key, value in settings.items() if value is not None))
    return "\n".join(rows)


def _registry_factory(name: str) -> TaskFactory:
    def create(**kwargs: Any) -> Any:
        from inspect_ai.util import registry_create

        try:
            return registry_create("task", name, **kwargs)
        except LookupError:
            raise MatrixError(
                f"task {name!r} is not registered (is opaque-knapsack installed with its inspect_ai entry point?)"
            ) from None

    return create


def parse_students(pairs: list[str]) -> Mapping[str, str]:
    """``LABEL=MODEL`` pairs, in order, each label once."""
    students: dict[str, str] = {}
    for pair in pairs:
        label, separator, model = pair.partition("=")
        label, model = label.strip(), model.strip()
        if not separator or not label or not model:
            raise MatrixError(f"--student {pair!r} is not LABEL=MODEL (e.g. persistent=vllm/Qwen/Qwen3-8B:persistent)")
        if label in students:
            raise MatrixError(f"--student label {label!r} given twice")
        students[label] = model
    return students
