"""load_tasks: file, folder of files, tasks root; sorted; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from opaque_knapsack.family import PRESETS, TaskFileError, generate_instance, instance_json, load_tasks


def write_tasks(folder: Path, indices: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in indices:
        path = folder / f"knapsack-{index:010d}.json"
        path.write_text(instance_json(generate_instance(PRESETS["easy"], index, index)), encoding="ascii")
        paths.append(path)
    return paths


def test_file_folder_and_root(tmp_path: Path) -> None:
    paths = write_tasks(tmp_path / "tasks" / "knapsack", [2, 0, 1])
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")
    (paths[0].parent / ".partial-x.json.1.tmp").write_text("{", encoding="utf-8")
    by_root = load_tasks(tmp_path)
    assert [t.task_id for t in by_root] == [f"knapsack-{i:010d}" for i in range(3)]
    assert load_tasks(tmp_path / "tasks" / "knapsack") == by_root
    assert [t.task_id for t in load_tasks(paths[0])] == ["knapsack-0000000002"]
    assert load_tasks(str(tmp_path), verify_optimum=True) == by_root


def test_empty_and_missing(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match=f"{tmp_path}: \\(path\\): no task files"):
        load_tasks(tmp_path)
    with pytest.raises(TaskFileError, match="no such file or folder"):
        load_tasks(tmp_path / "nowhere")


def test_duplicate_task_ids(tmp_path: Path) -> None:
    [path] = write_tasks(tmp_path, [4])
    (tmp_path / "copy.json").write_bytes(path.read_bytes())
    with pytest.raises(TaskFileError, match="task_id: 'knapsack-0000000004' is also the task id of"):
        load_tasks(tmp_path)
