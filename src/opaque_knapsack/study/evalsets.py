"""The study's two evaluation stages as Inspect eval sets: the teachers and the matrix.

One function builds each stage's eval set from the spec (its definition).
Every way of running a stage executes that same definition: `study run` in
this process, each worker process of `study run --workers N`, the capture
that enumerates its tasks, and a cluster's worker commands (`study eval`).
So a task's identity, which Inspect computes from the task, its model and
its settings, is the same in all of them, and every log lands in one log
directory that `eval_set` resumes from: an interrupted stage picks up where
it stopped, and a sample finished once is not run again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opaque_knapsack.study import adapters
from opaque_knapsack.study.context import Study, StudyError
from opaque_knapsack.study.names import EVAL_STAGES

__all__ = ["EVAL_STAGES", "EvalSetDefinition", "definition", "run_definition", "served_environment"]


# Inspect's vLLM provider finds a running server through these (the matrix's served students).
SERVER_URL_ENV = "VLLM_BASE_URL"
SERVER_KEY_ENV = "VLLM_API_KEY"
SERVER_KEY = "inspectai"


@dataclass
class EvalSetDefinition:
    """An evaluation stage's tasks and the eval_set options they run with."""

    stage: str
    tasks: list[Any]
    log_dir: Path
    options: dict[str, Any] = field(default_factory=dict)


# Task options the stage sets itself, from the spec's own fields and task sets.
STAGE_SET_OPTIONS = ("tasks", "difficulty", "num", "seed_start", "runtime", "agent")


def _check_task_options(stage: str, section: str, options: Mapping[str, Any]) -> None:
    known = [name for name in adapters.task_option_names() if name not in STAGE_SET_OPTIONS]
    for name in options:
        if name not in known:
            why = "is set by the stage itself" if name in STAGE_SET_OPTIONS else "is not an option of opaque_knapsack/knapsack"
            raise StudyError(stage, f"{section}.task_options: {name!r} {why} (it takes: {', '.join(known)})")


def definition(study: Study, stage: str) -> EvalSetDefinition:
    """The eval set of STAGE (teacher or matrix), built from the spec."""
    section = {"teacher": study.spec.teacher, "matrix": study.spec.matrix}.get(stage)
    if section is not None:
        _check_task_options(stage, stage, section.task_options)
    if stage == "teacher":
        return _teacher(study)
    if stage == "matrix":
        return _matrix(study)
    raise StudyError(stage, f"not an evaluation stage (those are {', '.join(EVAL_STAGES)})")


def _teacher(study: Study) -> EvalSetDefinition:
    section = study.spec.teacher
    settings = {
        "agent": section.agent,
        "task_options": section.task_options,
        "sampling": section.sampling,
        "time_limit": section.time_limit,
    }
    tasks = [
        adapters.teacher_task(study.teacher_tasks(), runtime, section.model_for(runtime), settings)
        for runtime in section.runtimes
    ]
    options = _present(section, "max_connections", "max_samples", "max_retries", "timeout", "retry_attempts", "retry_on_error")
    return EvalSetDefinition("teacher", tasks, log_dir(study, "teacher"), options)


def _matrix(study: Study) -> EvalSetDefinition:
    from opaque_knapsack.study.serving import student_models

    section = study.spec.matrix
    folders = list(study.eval_tasks().values())
    tasks = adapters.matrix_tasks(
        student_models(study), section.runtimes, folders, section.agent, section.task_options, section.time_limit
    )
    options = _present(
        section, "temperature", "max_tokens", "max_connections", "max_samples", "max_retries", "timeout",
        "retry_attempts", "retry_on_error",
    )  # fmt: skip
    return EvalSetDefinition("matrix", tasks, log_dir(study, "matrix"), options)


def _present(section: Any, *names: str) -> dict[str, Any]:
    return {name: getattr(section, name) for name in names if getattr(section, name) is not None}


def log_dir(study: Study, stage: str) -> Path:
    """Where an evaluation stage's eval set writes its logs."""
    return study.folder.teacher_logs if stage == "teacher" else study.folder.matrix_logs


def eval_set_id(stage: str, inputs_hash: str) -> str:
    """The eval set's id: the same for every run and worker of the same inputs."""
    return f"study-{stage}-{inputs_hash[:16]}"


def run_definition(
    study: Study, stage: str, set_id: str, *, display: str = "none", limit: int | None = None
) -> tuple[bool, list[Any], int]:
    """Build STAGE's eval set and run it with `eval_set` (a worker's selection when Inspect's protocol asks).

    Returns eval_set's result and the number of tasks the set has: Ctrl-C makes
    eval_set return early with fewer logs (or cancelled ones), never raise.
    """
    from inspect_ai import eval_set

    built = definition(study, stage)
    built.log_dir.mkdir(parents=True, exist_ok=True)
    success, logs = eval_set(
        built.tasks,
        log_dir=str(built.log_dir),
        eval_set_id=set_id,
        model=None,  # every task carries its own model
        display=display,  # type: ignore[arg-type]
        limit=limit,
        max_tasks=len(built.tasks),
        score_display=display != "none",
        **built.options,
    )
    return success, logs, len(built.tasks)


@contextlib.contextmanager
def served_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set the served students' URL for this process while a stage runs, then restore what was there."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
