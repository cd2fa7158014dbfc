"""The stages of the study, in order: what each reads, what it writes, and how it runs.

    tasks -> teacher -> export -> train -> matrix (with the server) -> report

A stage's inputs are its spec sections (operational fields left out), the
outputs it reads of the stages before it, and the package version. Its
outputs are the files it writes, hashed when it finishes. Both go into its
marker (``bookkeeping``), which is how a re-run knows what is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opaque_knapsack.study import adapters
from opaque_knapsack.study.bookkeeping import digest
from opaque_knapsack.study.context import RunOptions, Study, StudyError
from opaque_knapsack.study.names import STAGE_NAMES
from opaque_knapsack.study.spec import Section, is_operational

__all__ = ["STAGES", "STAGE_NAMES", "Stage", "section_digest", "stage_named"]


@dataclass(frozen=True)
class Stage:
    """One stage: its spec sections, the upstream stages it reads, and its functions."""

    name: str
    sections: tuple[str, ...]
    upstream: tuple[str, ...]
    what: str
    outputs: Callable[[Study], list[Path]]
    folders: Callable[[Study], list[Path]]
    run: Callable[[Study, RunOptions, str], dict[str, Any]]
    logs: Callable[[Study], list[Path]]
    """Where to look when it fails or to read what it did (`study status` lists them)."""
    reads: Callable[[Study], dict[str, list[Path]]] = field(default=lambda study: {})
    """Per upstream stage, the paths of its outputs this stage reads (default: all of them)."""
    evaluation: bool = False


def section_digest(section: Section) -> str:
    """Hash of a spec section's fields, the operational ones left out (they do not change what a stage makes)."""
    return digest(section.model_dump(mode="json", exclude=operational_fields(section)))


def operational_fields(model: Any) -> set[str]:
    return {name for name, info in type(model).model_fields.items() if is_operational(info)}


# -- tasks --------------------------------------------------------------------------------------------


def _task_outputs(study: Study) -> list[Path]:
    files: list[Path] = []
    for _, folder in study.all_task_sets():
        if folder.exists():
            files += adapters.task_files(folder)
    return files


def _task_folders(study: Study) -> list[Path]:
    return [folder for task_set, folder in study.all_task_sets() if task_set.folder is None]


def _run_tasks(study: Study, options: RunOptions, inputs_hash: str) -> dict[str, Any]:
    labels: dict[str, str] = {}
    for position, (task_set, folder) in enumerate(study.all_task_sets()):
        field_name = "tasks.teacher" if position == 0 else f"tasks.eval[{position - 1}]"
        if task_set.folder is None:
            assert task_set.preset is not None and task_set.num is not None
            adapters.generate_task_set(task_set.preset, task_set.num, task_set.seed_start, folder)
        elif not folder.exists():
            raise StudyError("tasks", f"{field_name}.folder: {folder} does not exist")
        try:
            labels[str(folder)] = adapters.task_set_label(folder)
        except adapters.tool_errors() as error:
            raise StudyError("tasks", f"{field_name}: {folder}: {error}") from None
        if position and task_set.folder is not None and labels[str(folder)] != task_set.label:
            raise StudyError("tasks", f"{field_name}.folder: {folder} holds {labels[str(folder)]} tasks; name the folder after its difficulty")
        options.echo(f"   {field_name}: {folder} ({labels[str(folder)]}, {len(adapters.task_files(folder))} instances)")
    return {"labels": labels}


# -- evaluation stages ----------------------------------------------------------------------------


def _logs_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.eval")) if folder.is_dir() else []


def _run_teacher(study: Study, options: RunOptions, inputs_hash: str) -> dict[str, Any]:
    from opaque_knapsack.study.runner import run_eval_stage

    return run_eval_stage(study, "teacher", inputs_hash, options, {})


def _run_matrix(study: Study, options: RunOptions, inputs_hash: str) -> dict[str, Any]:
    from opaque_knapsack.study.runner import run_eval_stage
    from opaque_knapsack.study.serving import served

    with served(study, options.echo) as server_env:
        return run_eval_stage(study, "matrix", inputs_hash, options, server_env)


def _teacher_reads(study: Study) -> dict[str, list[Path]]:
    return {"tasks": [study.teacher_tasks()]}


def _matrix_reads(study: Study) -> dict[str, list[Path]]:
    return {"tasks": list(study.eval_tasks().values()), "train": [study.folder.students, study.folder.tiny_model]}


# -- export -------------------------------------------------------------------------------------------


def _export_outputs(study: Study) -> list[Path]:
    return sorted(study.folder.traces.glob("*.json*")) if study.folder.traces.is_dir() else []


def _run_export(study: Study, options: RunOptions, inputs_hash: str) -> dict[str, Any]:
    section = study.spec.export
    values = section.model_dump(exclude={"options"})
    unknown = sorted(set(section.options) - set(adapters.export_fields()))
    if unknown:
        raise StudyError("export", f"export.options: {unknown[0]!r} is not an export option (known: {', '.join(adapters.export_fields())})")
    summaries = {}
    for runtime in study.spec.teacher.runtimes:
        out = study.folder.trace_file(runtime)
        try:
            summaries[runtime] = adapters.export_runtime(study.folder.teacher_logs, out, runtime, {**values, **section.options})
        except adapters.tool_errors() as error:
            raise StudyError("export", f"{runtime} traces: {error}") from None
        options.echo(f"   {runtime}: {summaries[runtime]['kept']} episodes kept of {summaries[runtime]['episodes_read']} -> {out}")
    return {"summaries": summaries}


# -- training (its run is in training.py) ---------------------------------------------------------


def _train_outputs(study: Study) -> list[Path]:
    files = []
    for label in study.spec.trained():
        config = study.folder.config(label)
        files += [config] if config.is_file() else []
        adapter = study.folder.adapter(label)
        files += sorted(adapter.glob("adapter_*")) if adapter.is_dir() else []
    tiny = study.folder.tiny_model
    if tiny.is_dir() and study.spec.trained():
        files += sorted(path for path in tiny.iterdir() if path.is_file())
    return files


def _train_folders(study: Study) -> list[Path]:
    return [study.folder.students, study.folder.tiny_model]


def _run_train(study: Study, options: RunOptions, inputs_hash: str) -> dict[str, Any]:
    from opaque_knapsack.study.training import train_students

    return train_students(study, options)


# -- report ---------------------------------------------------------------------------------------------


def _report_outputs(study: Study) -> list[Path]:
    folder = study.folder.report
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else []


def _run_report(study: Study, options: RunOptions, inputs_hash: str) -> dict[str, Any]:
    from opaque_knapsack.study.report import write_report_page

    started = time.monotonic()
    page = write_report_page(study)
    options.echo(f"   {page} ({time.monotonic() - started:.0f}s)")
    return {"page": str(page)}


STAGES: tuple[Stage, ...] = (
    Stage(
        "tasks", ("tasks",), (), "generate (or check) the task sets",
        outputs=_task_outputs, folders=_task_folders, run=_run_tasks, logs=lambda study: [study.folder.tasks],
    ),
    Stage(
        "teacher", ("teacher",), ("tasks",), "teacher traces in each runtime (an Inspect eval set)",
        outputs=lambda study: _logs_in(study.folder.teacher_logs),
        folders=lambda study: [study.folder.teacher_logs],
        logs=lambda study: [study.folder.teacher_logs, study.folder.workers("teacher")],
        run=_run_teacher, reads=_teacher_reads, evaluation=True,
    ),
    Stage(
        "export", ("export",), ("teacher",), "teacher episodes -> training conversations",
        outputs=_export_outputs, folders=lambda study: [study.folder.traces], run=_run_export,
        logs=lambda study: [study.folder.traces],
    ),
    Stage(
        "train", ("students",), ("export",), "Axolotl configs and a LoRA adapter per runtime",
        outputs=_train_outputs, folders=_train_folders, run=_run_train,
        logs=lambda study: [study.folder.logs / "train-*.log", study.folder.logs / "environments.log"],
    ),
    Stage(
        "matrix", ("matrix", "serve"), ("tasks", "train"),
        "serve the students, evaluate student x runtime x difficulty (an Inspect eval set)",
        outputs=lambda study: _logs_in(study.folder.matrix_logs),
        folders=lambda study: [study.folder.matrix_logs],
        logs=lambda study: [study.folder.matrix_logs, study.folder.stage_log("serve"), study.folder.workers("matrix")],
        run=_run_matrix, reads=_matrix_reads, evaluation=True,
    ),
    Stage(
        "report", ("reports",), ("matrix",), "statistics, comparisons, table and figures on one page",
        outputs=_report_outputs, folders=lambda study: [study.folder.report], run=_run_report,
        logs=lambda study: [study.folder.report / "README.md"],
    ),
)  # fmt: skip

assert tuple(stage.name for stage in STAGES) == STAGE_NAMES, "the stages run in the order names.py lists them"


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise StudyError(name, f"no such stage (the stages are {', '.join(STAGE_NAMES)})")
