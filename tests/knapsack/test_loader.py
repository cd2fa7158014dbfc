"""load_tasks: file, folder of files, tasks root; sorted; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from opaque_knapsack.knapsack import PRESETS, TaskFileError, generate_instance, instance_json, load_tasks


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


@pytest.mark.parametrize("old_form", ["it_{:06x}", "{:d}", "Item-{:04d}"])
def test_files_with_any_item_id_form_load_unchanged(tmp_path: Path, old_form: str) -> None:
    """Generated files use the paper's ``item_`` + 12 hex; the paper's files and our older ``it_`` ones load too."""
    instance = generate_instance(PRESETS["easy"], 3, 3)
    text = instance_json(instance)
    renamed = {item_id: old_form.format(n) for n, item_id in enumerate(instance.public.item_ids)}
    for new, old in renamed.items():
        text = text.replace(f'"{new}"', f'"{old}"')
    path = tmp_path / "knapsack-0000000003.json"
    path.write_text(text, encoding="ascii")
    [loaded] = load_tasks(path, verify_optimum=True)
    assert loaded.public.item_ids == list(renamed.values())
    assert loaded.reference.optimal_item_ids == [renamed[i] for i in instance.reference.optimal_item_ids]
