"""Stage markers: a finished stage is skipped, a changed input re-runs it and says why, an edited output is named."""

from __future__ import annotations

import errno
import json
from pathlib import Path

from study_helpers import small_spec, write_spec

import opaque_knapsack
from opaque_knapsack.cli import main
from opaque_knapsack.study import adapters
from opaque_knapsack.study.bookkeeping import Marker, digest, write_json_atomic, write_marker
from opaque_knapsack.study.context import Study
from opaque_knapsack.study.names import STAGE_NAMES
from opaque_knapsack.study.runner import stage_inputs, study_states
from opaque_knapsack.study.stages import STAGES, stage_named


def states(spec: Path) -> dict[str, tuple[str, list[str]]]:
    return {state.stage: (state.status, state.reasons) for state in study_states(Study.load(spec))}


def run_tasks(spec: Path) -> int:
    return main(["study", "run", str(spec), "--until", "tasks"])


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_the_stages_run_in_the_documented_order():
    assert tuple(stage.name for stage in STAGES) == STAGE_NAMES


def test_a_finished_stage_is_skipped_and_its_downstream_waits_for_nothing(tmp_path, capsys):
    spec = write_spec(tmp_path, small_spec())
    assert states(spec)["teacher"] == ("waiting", ["after tasks"])
    assert run_tasks(spec) == 0
    assert "== tasks: finished in" in capsys.readouterr().out
    assert states(spec)["tasks"][0] == "done" and states(spec)["teacher"][0] == "to run"
    assert run_tasks(spec) == 0
    assert "== tasks: done, skipped" in capsys.readouterr().out
    marker = json.loads((tmp_path / "study" / ".stages" / "tasks.json").read_text())
    assert marker["inputs"]["version"] == opaque_knapsack.__version__
    assert "tasks/teacher/tasks/knapsack/knapsack-0000000000.json" in marker["outputs"]


def test_an_output_edited_by_hand_is_named_and_not_run_over(tmp_path, capsys):
    spec = write_spec(tmp_path, small_spec())
    run_tasks(spec)
    edited = tmp_path / "study" / "tasks" / "teacher" / "tasks" / "knapsack" / "knapsack-0000000001.json"
    edited.write_text(edited.read_text().replace('"capacity"', '"capacity" ', 1))
    status, reasons = states(spec)["tasks"]
    assert status == "edited" and reasons == [f"{edited} changed since the stage finished"]
    capsys.readouterr()
    assert run_tasks(spec) == 2
    assert f"stage tasks: {edited} changed since the stage finished (edited by hand?): restore it" in error_line(capsys)


def test_a_removed_output_makes_the_stage_run_again(tmp_path):
    spec = write_spec(tmp_path, small_spec())
    run_tasks(spec)
    removed = tmp_path / "study" / "tasks" / "eval-easy" / "tasks" / "knapsack" / "knapsack-0000000000.json"
    original = removed.read_bytes()
    removed.unlink()
    assert states(spec)["tasks"] == ("to run", [f"its output {removed} was removed"])
    assert run_tasks(spec) == 0
    assert removed.read_bytes() == original and states(spec)["tasks"][0] == "done"


def test_a_changed_section_reruns_the_stage_and_keeps_the_old_outputs(tmp_path, capsys):
    spec = write_spec(tmp_path, small_spec())
    run_tasks(spec)
    write_spec(tmp_path, small_spec(tasks={"teacher": {"num": 4}}))
    assert states(spec)["tasks"] == ("changed", ["spec section tasks changed"])
    capsys.readouterr()
    assert run_tasks(spec) == 0
    assert "(spec section tasks changed)" in capsys.readouterr().out
    kept = tmp_path / "study" / "superseded" / "tasks-1" / "tasks" / "teacher" / "tasks" / "knapsack"
    assert len(list(kept.glob("*.json"))) == 3
    assert len(list((tmp_path / "study" / "tasks" / "teacher" / "tasks" / "knapsack").glob("*.json"))) == 4


def test_operational_fields_do_not_change_a_stages_inputs(tmp_path):
    study = Study.load(write_spec(tmp_path, small_spec()))
    faster = Study.load(write_spec(tmp_path, small_spec(teacher={"max_connections": 99, "retry_attempts": 3}), "b.yaml"))
    slower = Study.load(write_spec(tmp_path, small_spec(teacher={"time_limit": 60}), "c.yaml"))
    teacher = stage_named("teacher")
    done = {"tasks": Marker("tasks", {}, {})}
    assert stage_inputs(study, teacher, done) == stage_inputs(faster, teacher, done)
    assert stage_inputs(study, teacher, done) != stage_inputs(slower, teacher, done)


def test_a_new_package_version_reruns_and_says_so(tmp_path, monkeypatch):
    spec = write_spec(tmp_path, small_spec())
    run_tasks(spec)
    before = opaque_knapsack.__version__
    monkeypatch.setattr(opaque_knapsack, "__version__", "9.9.9")
    assert states(spec)["tasks"] == ("changed", [f"the package version changed ({before} -> 9.9.9)"])


def _mark_teacher_done(spec: Path) -> None:
    """A teacher marker made from the current inputs (the teacher itself is not run here)."""
    study = Study.load(spec)
    markers = {"tasks": Marker("tasks", {}, _recorded(study, "tasks"))}
    write_marker(study.folder.markers / "teacher.json", Marker("teacher", stage_inputs(study, stage_named("teacher"), markers), {}))


def _recorded(study: Study, stage: str) -> dict[str, str]:
    return json.loads((study.folder.markers / f"{stage}.json").read_text())["outputs"]


def test_upstream_changes_rerun_only_the_stages_that_read_them(tmp_path):
    spec = write_spec(tmp_path, small_spec())
    run_tasks(spec)
    _mark_teacher_done(spec)
    assert states(spec)["teacher"][0] == "done"
    # more evaluation tasks: the teachers' tasks are the same, so the teacher stays done
    write_spec(tmp_path, small_spec(tasks={"eval": [{"preset": "easy", "num": 3, "seed_start": 123456789}]}))
    run_tasks(spec)
    assert states(spec)["teacher"][0] == "done"
    # other teacher tasks: the teacher runs again, and says why
    write_spec(tmp_path, small_spec(tasks={"teacher": {"seed_start": 5}, "eval": [{"preset": "easy", "num": 3, "seed_start": 123456789}]}))
    run_tasks(spec)
    assert states(spec)["teacher"] == ("changed", ["the tasks stage's outputs changed"])


def test_a_failing_stage_is_one_line_and_recorded(tmp_path, capsys):
    spec = write_spec(tmp_path, small_spec(tasks={"eval": [{"folder": "nowhere"}]}))
    assert run_tasks(spec) == 2
    assert f"stage tasks: tasks.eval[0].folder: {tmp_path / 'nowhere'} does not exist" in error_line(capsys)
    status, reasons = states(spec)["tasks"]
    assert status == "failed" and "does not exist" in reasons[0] and reasons[0].endswith("re-run to resume")


def test_a_full_disk_names_the_stage_and_the_path(tmp_path, capsys, monkeypatch):
    spec = write_spec(tmp_path, small_spec())

    def full(preset, num, seed_start, out):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "tasks"))

    monkeypatch.setattr(adapters, "generate_task_set", full)
    assert run_tasks(spec) == 2
    err = error_line(capsys)
    assert f"stage tasks: {tmp_path / 'study' / 'tasks' / 'teacher' / 'tasks'}: No space left on device; free some space" in err


def test_markers_are_written_whole(tmp_path):
    path = tmp_path / "m" / "x.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]
    assert digest({"b": 1, "a": 2}) == digest({"a": 2, "b": 1})
