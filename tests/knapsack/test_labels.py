"""The difficulty label of a task folder comes from its manifest or its files, never a guess."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from inspect_ai import eval as inspect_eval

from opaque_knapsack.knapsack import PRESETS, knapsack, load_tasks
from opaque_knapsack.knapsack.labels import preset_of, tasks_label
from opaque_knapsack.knapsack.writer import generate_tasks
from opaque_knapsack.task_options import TaskOptionError


def generated(root: Path, preset: str, num: int = 2) -> Path:
    generate_tasks(PRESETS[preset], root, num, 123456789)
    return root


def bare_copy(source: Path, target: Path) -> Path:
    """The task files alone, as a foreign folder holds them (no manifest)."""
    target.mkdir(parents=True)
    for file in (source / "tasks" / "knapsack").glob("*.json"):
        shutil.copy(file, target / file.name)
    return target


def test_every_preset_is_recognised_from_its_files() -> None:
    from opaque_knapsack.knapsack import generate_instance

    for name, config in PRESETS.items():
        for index in range(40):
            assert preset_of(generate_instance(config, index, index)) == name


def test_tasks_folder_is_labelled_from_its_manifest_or_files(tmp_path: Path) -> None:
    easy = generated(tmp_path / "easy", "easy")
    medium = bare_copy(generated(tmp_path / "medium", "medium"), tmp_path / "medium-files")
    assert knapsack(tasks=str(easy)).metadata["difficulty"] == "easy"
    assert knapsack(tasks=str(easy / "tasks" / "knapsack")).metadata["difficulty"] == "easy"
    task = knapsack(tasks=str(medium))
    assert task.metadata["difficulty"] == "medium"
    assert {sample.metadata["difficulty"] for sample in task.dataset} == {"medium"}
    assert tasks_label(medium, load_tasks(medium)) == "medium"


def test_a_contradicting_difficulty_is_an_error(tmp_path: Path) -> None:
    easy = generated(tmp_path / "easy", "easy")
    # one line naming the option (Inspect prints a TaskOptionError without a traceback)
    with pytest.raises(TaskOptionError, match=r"^knapsack task: -T difficulty='hard' contradicts .* which are 'easy'"):
        knapsack(tasks=str(easy), difficulty="hard")
    assert knapsack(tasks=str(easy), difficulty="easy").metadata["difficulty"] == "easy"


def test_sandbox_runs_on_a_folder_are_labelled_and_split_in_stats(tmp_path: Path) -> None:
    from opaque_knapsack.reports import load_runs

    easy = generated(tmp_path / "easy", "easy", num=1)
    medium = bare_copy(generated(tmp_path / "medium", "medium", num=1), tmp_path / "medium-files")
    logs = tmp_path / "logs"
    for folder in (easy, medium):
        [log] = inspect_eval(
            knapsack(tasks=str(folder)), model="scripted/persistent", sandbox="stateless_python", log_dir=str(logs)
        )
        assert log.status == "success", log.error
    runs = load_runs([logs])
    assert sorted((run.condition.difficulty, run.condition.runtime) for run in runs) == [
        ("easy", "stateless"),
        ("medium", "stateless"),
    ]
