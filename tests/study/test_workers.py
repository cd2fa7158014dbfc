"""Scale-out through Inspect's eval-set worker protocol: local worker processes, and worker commands for a cluster."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from study_helpers import small_spec, write_spec

from opaque_knapsack.cli import main
from opaque_knapsack.records import RUNTIMES, SCORE_KEYS
from opaque_knapsack.study.context import Study
from opaque_knapsack.study.runner import study_states
from opaque_knapsack.study.workers import Capture, CapturedTask, WorkItem, expected_work, selection_document, split

pytestmark = pytest.mark.slow

SBATCH = Path(__file__).parents[2] / "examples" / "slurm" / "study-workers.sbatch"

# the matrix with the scripted policies as its students: nothing to serve, every figure deterministic
SCRIPTED = small_spec(
    matrix={"students": list(RUNTIMES), "models": {runtime: f"scripted/{runtime}" for runtime in RUNTIMES}},
    tasks={"eval": [{"preset": "easy", "num": 3, "seed_start": 123456789}]},
)


def figures(study: Study):
    from opaque_knapsack.reports import episodes_df

    frame = episodes_df([study.folder.matrix_logs])
    keys = ["train", "runtime", "difficulty", "task_id"]
    columns = [key for key in SCORE_KEYS if key in frame.columns]
    return frame.sort_values(keys).set_index(keys)[columns]


def test_two_workers_give_the_figures_of_one(trained, tmp_path, capsys):
    one = write_spec(trained, {**SCRIPTED, "folder": "study"})
    assert main(["study", "run", str(one)]) == 0
    two_dir = tmp_path / "two"
    two_dir.mkdir()
    two = write_spec(two_dir, {**SCRIPTED, "folder": "study"})
    capsys.readouterr()
    assert main(["study", "run", str(two), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "4 tasks, 4 to run, on 2 worker processes" in out
    selections = sorted((two_dir / "study" / "workers" / "matrix").glob("selection-*.json"))
    assert len(selections) == 2
    first, second = Study.load(one), Study.load(two)
    assert all(state.done for state in study_states(second))
    a, b = figures(first), figures(second)
    assert len(a) == 12 and a.equals(b)
    assert len(list(second.folder.matrix_logs.glob("*.eval"))) == 4


def test_worker_commands_run_locally_then_run_finishes_the_stage(trained, capsys):
    spec = write_spec(trained, {**SCRIPTED, "folder": "study"})
    assert main(["study", "run", str(spec), "--until", "train"]) == 0
    capsys.readouterr()
    assert main(["study", "workers", "matrix", str(spec)]) == 0
    out = capsys.readouterr().out
    commands = trained / "study" / "workers" / "matrix" / "commands.txt"
    assert f"wrote 4 worker commands to {commands}" in out and "sbatch --array=0-3" in out
    lines = commands.read_text().splitlines()
    assert len(lines) == 4 and all(line.startswith("INSPECT_EVAL_SET_SELECTION=") for line in lines)
    # Inspect's manifest gives each task's arguments: the folder of its instances, which weighs its share
    manifest = Capture.model_validate_json((commands.parent / "manifest.json").read_text())
    assert all(Path(task.args["tasks"]).is_dir() for task in manifest.tasks)
    assert all(" opaque-knapsack study eval matrix " in line for line in lines)
    # each line as a Slurm array task would run it, through the example script
    workers = [subprocess.Popen(["bash", str(SBATCH), str(commands)], env={**os.environ, "SLURM_ARRAY_TASK_ID": str(number)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for number in range(len(lines))]
    assert [worker.wait(timeout=600) for worker in workers] == [0, 0, 0, 0]
    study = Study.load(spec)
    logs = {path.name: path.read_bytes() for path in study.folder.matrix_logs.glob("*.eval")}
    assert len(logs) == 4
    assert main(["study", "workers", "matrix", str(spec)]) == 0
    assert "every task has a finished log" in capsys.readouterr().out
    assert main(["study", "run", str(spec)]) == 0
    assert {path.name: path.read_bytes() for path in study.folder.matrix_logs.glob("*.eval")} == logs  # nothing re-run
    assert all(state.done for state in study_states(study))


def test_tasks_are_shared_by_samples_left_and_resumed_from_their_logs():
    def item(name: str, samples: int, done: int = 0, resume: str | None = None) -> WorkItem:
        return WorkItem(CapturedTask(name=name, model="m", identifier=f"{name}#id", samples=samples), resume, done)

    items = [item("a", 100), item("b", 100, done=90, resume="/logs/b.eval"), item("c", 60), item("d", 50)]
    shares = split(items, 2)
    assert [[i.task.name for i in share] for share in shares] == [["a", "b"], ["c", "d"]]
    document = selection_document(shares[0], "set-1")
    assert document == {"version": 1, "eval_set_id": "set-1",
                        "tasks": [{"identifier": "a#id"}, {"identifier": "b#id", "resume": "/logs/b.eval"}]}
    assert split(items[:1], 4) == [[items[0]]]
    assert Capture.model_validate({"version": 3, "tasks": [], "options": {}}).tasks == []


def test_tasks_are_shared_by_the_size_of_their_instances(tmp_path):
    # The matrix's conditions come easy, medium, easy, medium, ...: shared by samples alone, one
    # worker got every easy condition and the other every medium one, whose episodes are twice as long.
    def item(name: str, size: int) -> WorkItem:
        folder = tmp_path / name
        folder.mkdir()
        for number in range(10):
            (folder / f"task-{number}.json").write_text("x" * size)
        return WorkItem(CapturedTask(name=name, model="m", identifier=name, samples=10, args={"tasks": str(folder)}))

    items = [item(f"{cell}-{difficulty}", size) for cell in "pqrs" for difficulty, size in (("easy", 1000), ("medium", 2200))]
    assert expected_work(items) == [10 * 1000.0, 10 * 2200.0] * 4
    shares = split(items, 2)
    assert [sorted(i.task.name.split("-")[1] for i in share) for share in shares] == [["easy", "easy", "medium", "medium"]] * 2
    # a task without a folder of instances: every task is weighed by its samples left alone
    bare = WorkItem(CapturedTask(name="bare", model="m", identifier="bare", samples=10))
    assert expected_work([*items[:2], bare]) == [10.0, 10.0, 10.0]


def test_the_matrix_workers_need_a_server(trained, capsys, monkeypatch):
    spec = trained / "study.yaml"
    assert main(["study", "workers", "matrix", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert "stage matrix: the students must be served for the matrix's workers" in err and len(err.splitlines()) == 1


def test_eval_needs_the_stages_before_it(tmp_path, capsys):
    spec = write_spec(tmp_path, small_spec())
    Path(tmp_path / "study").mkdir()
    assert main(["study", "eval", "teacher", str(spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert "stage teacher: the stages before it are not done" in err and "--until tasks" in err
