"""A loaded study (its spec, where its paths start, its folder) and the one error every stage raises."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from opaque_knapsack.study.layout import StudyFolder
from opaque_knapsack.study.spec import TINY_BASE, StudySpec, TaskSet, load_spec, resolve

__all__ = ["RunOptions", "Study", "StudyError"]


class StudyError(Exception):
    """A stage cannot go on: one line naming the stage, what is wrong (a field or a path), and its log."""

    def __init__(self, stage: str, message: str, log: Path | None = None) -> None:
        self.stage = stage
        self.message = message
        self.log = log
        where = f" (log: {log})" if log is not None else ""
        super().__init__(f"stage {stage}: {message}{where}")


@dataclass(frozen=True)
class Study:
    """The spec, the folder its relative paths start from, and the study folder."""

    spec: StudySpec
    spec_path: Path
    base: Path

    @classmethod
    def load(cls, path: str | Path) -> Study:
        spec, base = load_spec(path)
        return cls(spec=spec, spec_path=Path(path).resolve(), base=base)

    @property
    def folder(self) -> StudyFolder:
        return StudyFolder(resolve(self.base, self.spec.folder))

    def path(self, value: str | Path) -> Path:
        """A path the spec gives, relative to the spec's folder."""
        return resolve(self.base, value)

    def teacher_tasks(self) -> Path:
        return self._task_folder(self.spec.tasks.teacher, self.folder.teacher_tasks())

    def eval_tasks(self) -> dict[str, Path]:
        """Label -> folder of each evaluation set the matrix uses."""
        return {task_set.label: self._task_folder(task_set, self.folder.eval_tasks(task_set.label)) for task_set in self.spec.eval_sets()}

    def all_task_sets(self) -> list[tuple[TaskSet, Path]]:
        """Every task set of the spec with its folder: the teachers' first, then each evaluation set."""
        sets = [(self.spec.tasks.teacher, self.teacher_tasks())]
        return sets + [(task_set, self._task_folder(task_set, self.folder.eval_tasks(task_set.label))) for task_set in self.spec.tasks.eval]

    def _task_folder(self, task_set: TaskSet, generated: Path) -> Path:
        return self.path(task_set.folder) if task_set.folder is not None else generated

    def base_model(self) -> str:
        """The students' base model: a folder (relative to the spec's), a hub id, or the tiny model's folder."""
        if self.spec.students.base_model == TINY_BASE:
            return str(self.folder.tiny_model)
        value = self.spec.students.base_model
        local = value.startswith((".", "/", "~")) or self.path(value).exists()
        return str(self.path(value)) if local else value


@dataclass
class RunOptions:
    """How `study run` runs its stages (none of it changes what they produce)."""

    workers: int = 1
    """Worker processes for the evaluation stages (1: one eval_set in this process)."""
    limit: int | None = None
    """Samples per task of the first evaluation stage reached; that stage is then left unfinished."""
    until: str | None = None
    """The last stage to run."""
    display: str = "none"
    """Inspect's display for in-process evaluation stages."""
    echo: Callable[[str], None] = print
    activity: Callable[[str, bool], AbstractContextManager[Callable[[str], None]]] = field(
        default=lambda label, evaluation: contextlib.nullcontext(_ignore)
    )
    """A stage's progress at a terminal: entered with the stage's label and whether Inspect shows its own
    progress (an evaluation stage in this process); yields a function that updates the shown text."""
    status: Callable[[str], None] = field(default=lambda text: None)
    """The running stage's update function (set while it runs)."""
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    """The environment worker processes start with."""


def _ignore(text: str) -> None:
    """No terminal: progress text goes nowhere (the stage lines still print)."""
