"""The study spec: the profiles' values, paths relative to the spec, and bad input as one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from study_helpers import small_spec, write_spec

from opaque_knapsack.cli import main
from opaque_knapsack.errors import CommandError
from opaque_knapsack.records import BASE_TRAIN, RUNTIMES
from opaque_knapsack.study.context import Study
from opaque_knapsack.study.spec import load_spec, profile_spec


def test_the_paper_profile_holds_the_papers_values():
    spec = profile_spec("paper")
    teacher_set = spec.tasks.teacher
    assert (teacher_set.preset, teacher_set.num, teacher_set.seed_start) == ("easy", 1000, 0)
    assert [(s.preset, s.num, s.seed_start) for s in spec.tasks.eval] == [("easy", 100, 123456789), ("medium", 100, 123456789)]
    assert spec.teacher.model == "google/gemini-2.5-flash" and spec.teacher.sampling == {}  # the provider's defaults
    assert spec.teacher.time_limit == 300 and spec.teacher.runtimes == list(RUNTIMES)
    assert spec.students.base_model == "Qwen/Qwen3-8B" and spec.students.profile == "paper"
    assert (spec.matrix.temperature, spec.matrix.max_tokens, spec.matrix.time_limit) == (0.2, 12288, 900)
    assert spec.serve.max_model_len == 40960
    assert spec.matrix.students == [*RUNTIMES, BASE_TRAIN]


def test_the_cpu_tiny_profile_is_the_same_loop_small():
    spec = profile_spec("cpu-tiny")
    assert spec.teacher.model == {runtime: f"scripted/{runtime}" for runtime in RUNTIMES}
    assert spec.students.base_model == "tiny" and spec.students.profile == "cpu-tiny"
    assert spec.students.axolotl == "managed" and spec.serve.python == "managed"
    assert spec.trained() == list(RUNTIMES) and spec.served() == [*RUNTIMES, BASE_TRAIN]
    assert profile_spec("cpu-tiny", teacher="openai/gpt-4.1").teacher.model == "openai/gpt-4.1"


def test_init_writes_a_spec_that_loads_back_the_same(tmp_path, capsys):
    out = tmp_path / "mine.yaml"
    assert main(["study", "init", "--profile", "paper", "--teacher", "openai/gpt-4.1", "--out", str(out)]) == 0
    spec, base = load_spec(out)
    assert spec == profile_spec("paper", teacher="openai/gpt-4.1", folder="mine")
    assert base == tmp_path
    assert main(["study", "init", "--out", str(out)]) == 2
    assert f"--out {out}: exists; pass --force" in capsys.readouterr().err


def test_paths_are_relative_to_the_specs_folder(tmp_path, monkeypatch):
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    write_spec(spec_dir, small_spec(tasks={"eval": [{"folder": "given/easy"}]}))
    (spec_dir / "base-model").mkdir()
    monkeypatch.chdir(tmp_path)  # elsewhere: paths still start at the spec's folder
    study = Study.load(Path("specs") / "study.yaml")
    assert study.folder.root == spec_dir / "study"
    assert study.eval_tasks() == {"easy": spec_dir / "given" / "easy"}
    assert study.base_model() == str(spec_dir / "base-model")  # a folder there, not a hub id
    assert Study.load(write_spec(spec_dir, small_spec(students={"base_model": "Qwen/Qwen3-8B"}), "hub.yaml")).base_model() == "Qwen/Qwen3-8B"


def one_line_error(capsys, path: Path) -> str:
    assert main(["study", "plan", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"teacher": {"modle": "x"}}, "teacher.modle: unknown field; teacher accepts: model, runtimes"),
        ({"matrix": {"temperature": -1}}, "matrix.temperature: Input should be greater than or equal to 0"),
        ({"teacher": {"agent": "smolagent"}}, "teacher.agent: 'smolagent' is not allowed; input should be 'codeact' or 'react'"),
        ({"tasks": {"eval": [{"preset": "easy"}]}}, "tasks.eval.0: give preset and num (tasks to generate), or folder"),
        ({"matrix": {"students": ["persistent", "qwen"]}}, "matrix.students: 'qwen' is neither a teacher runtime"),
        ({"matrix": {"difficulties": ["hard"]}}, "matrix.difficulties: 'hard' is not an evaluation set (tasks.eval: easy)"),
        ({"teacher": {"model": {"persistent": "scripted/persistent"}}}, "teacher.model names no model for the stateless runtime"),
    ],
)
def test_a_bad_spec_is_one_line_naming_the_field(tmp_path, capsys, change, expected):
    base = small_spec()
    if "teacher" in change and "model" in change["teacher"]:
        base["teacher"]["model"] = change["teacher"]["model"]
        change = {}
    path = write_spec(tmp_path, {**base, **{k: {**base.get(k, {}), **v} for k, v in change.items()}})
    err = one_line_error(capsys, path)
    assert f"{path}: {expected}" in err


def test_unreadable_specs_are_one_line(tmp_path, capsys):
    assert "no such study spec" in one_line_error(capsys, tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("tasks: [unclosed\n")
    assert "not valid YAML at line" in one_line_error(capsys, broken)
    listed = tmp_path / "list.yaml"
    listed.write_text(yaml.safe_dump([1, 2]))
    assert "a study spec is a YAML mapping" in one_line_error(capsys, listed)
    with pytest.raises(CommandError, match="required, and missing"):
        load_spec(write_spec(tmp_path, {"tasks": small_spec()["tasks"]}, "no-teacher.yaml"))
