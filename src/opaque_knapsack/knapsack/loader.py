"""Find and load task files: one file, a folder of files, or a tasks root."""

from __future__ import annotations

from pathlib import Path

from opaque_knapsack.knapsack.schema import TaskFileError, TaskInstance, read_instance

TASKS_SUBDIR = Path("tasks") / "knapsack"


def task_files(path: str | Path) -> list[Path]:
    """The task files under `path`, sorted by name.

    `path` may be a JSON file, a folder of JSON files, or a tasks root (a folder
    holding tasks/knapsack/*.json, as `opaque-knapsack generate` writes).
    Hidden files (unfinished temporary writes) and manifest.json are skipped.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise TaskFileError(path, "(path)", "no such file or folder")
    folder = path / TASKS_SUBDIR if (path / TASKS_SUBDIR).is_dir() else path
    files = sorted(
        entry
        for entry in folder.glob("*.json")
        if entry.is_file() and not entry.name.startswith(".") and entry.name != "manifest.json"
    )
    if not files:
        raise TaskFileError(path, "(path)", f"no task files (*.json) found in {folder}")
    return files


def load_tasks(path: str | Path, verify_optimum: bool = False) -> list[TaskInstance]:
    """Load every instance under `path`, sorted by task_id.

    With `verify_optimum`, each reference is re-solved and must be optimal
    (slower; `opaque-knapsack validate` always does it).
    """
    instances: dict[str, tuple[TaskInstance, Path]] = {}
    for file in task_files(path):
        instance = read_instance(file)
        if verify_optimum:
            from opaque_knapsack.knapsack.optimum import verify_optimum as check_optimum

            check_optimum(instance, str(file))
        if instance.task_id in instances:
            other = instances[instance.task_id][1]
            raise TaskFileError(file, "task_id", f"{instance.task_id!r} is also the task id of {other}")
        instances[instance.task_id] = (instance, file)
    return [instances[key][0] for key in sorted(instances)]
