"""The matrix runner: conditions, identities, tags/metadata, eval_set resume (fake task)."""

from __future__ import annotations

import fake_knapsack
import pytest
from inspect_ai import task_identifier
from inspect_ai.log import read_eval_log
from inspect_ai.model import get_model

from opaque_knapsack.cli import main
from opaque_knapsack.evaluate.matrix import MatrixError, MatrixSpec, build_tasks, conditions, parse_students, run_matrix
from opaque_knapsack.train.export import ExportOptions, export_traces


def fake_factory(runtime, difficulty, num, seed_start, agent):
    return fake_knapsack.fake_task(runtime=runtime, difficulty=difficulty, num=num, seed_start=seed_start, agent=agent)


def students() -> dict:
    return {
        "persistent": get_model("mockllm/persistent", custom_outputs=fake_knapsack.codeact_model(3)),
        "stateless": get_model("mockllm/stateless", custom_outputs=fake_knapsack.codeact_model(2)),
    }


def test_conditions_cover_the_cross_product():
    spec = MatrixSpec(
        students={"persistent": "m/p", "stateless": "m/s", "base": "m/b"},
        runtimes=["persistent", "stateless"],
        difficulties=["easy", "medium"],
        log_dir="x",
    )
    cells = conditions(spec)
    assert len(cells) == 12
    assert len({(c.train, c.runtime, c.difficulty) for c in cells}) == 12
    cell = cells[0]
    assert cell.tags == ["train:persistent", "runtime:persistent", "difficulty:easy"]
    assert cell.metadata == {"train": "persistent", "runtime": "persistent", "difficulty": "easy"}


def test_spec_validation():
    with pytest.raises(ValueError, match="share model"):
        MatrixSpec(students={"a": "m/x", "b": "m/x"}, log_dir="x")
    with pytest.raises(ValueError):
        MatrixSpec(students={}, log_dir="x")
    with pytest.raises(ValueError):
        MatrixSpec(students={"a": "m/x"}, runtimes=["persistent", "persistent"], log_dir="x")
    with pytest.raises(MatrixError, match="LABEL=MODEL"):
        parse_students(["persistent"])
    with pytest.raises(MatrixError, match="given twice"):
        parse_students(["a=m/x", "a=m/y"])
    assert parse_students(["persistent=vllm/Q:persistent"]) == {"persistent": "vllm/Q:persistent"}


def test_registered_task_args_and_identities(monkeypatch):
    """With a registered task factory, each condition's task args and identity are its own."""
    from inspect_ai import task

    @task(name="knapsack")
    def knapsack(runtime="persistent", difficulty="easy", num=100, seed_start=0, agent="codeact"):
        return fake_factory(runtime, difficulty, num, seed_start, agent)

    spec = MatrixSpec(students={"persistent": "mockllm/p", "stateless": "mockllm/s"}, num=3, seed_start=7, log_dir="x")
    tasks = build_tasks(spec, knapsack)
    assert len(tasks) == 8
    for built, condition in zip(tasks, conditions(spec), strict=True):
        assert set(built.tags) == set(condition.tags)
        assert built.metadata["train"] == condition.train
        assert str(built.model) == condition.model
    from inspect_ai._eval.evalset import EvalSetArgsInTaskIdentifier  # test-only: identity as eval_set computes it
    from inspect_ai._eval.loader import resolve_tasks
    from inspect_ai.model import GenerateConfig

    args = EvalSetArgsInTaskIdentifier(config=GenerateConfig())
    resolved = resolve_tasks(tasks, {}, None, None, None, None, None)
    identities = {task_identifier(item, args) for item in resolved}
    assert len(identities) == 8
    assert all(item.task_args["num"] == 3 and item.task_args["seed_start"] == 7 for item in resolved)


def test_run_matrix_end_to_end_and_resume(tmp_path):
    log_dir = tmp_path / "matrix"
    spec = MatrixSpec(
        students=students(),
        runtimes=["persistent", "stateless"],
        difficulties=["easy"],
        num=2,
        seed_start=5,
        log_dir=str(log_dir),
        max_connections=4,
        max_samples=2,
        time_limit=900,
        display="none",
    )
    success, logs = run_matrix(spec, fake_factory)
    assert success and len(logs) == 4
    seen = set()
    for log in logs:
        assert log.status == "success"
        metadata = log.eval.metadata
        seen.add((metadata["train"], metadata["runtime"], metadata["difficulty"]))
        assert f"train:{metadata['train']}" in log.eval.tags
        # the progress display and the log name the cell; the registered name stays
        assert log.eval.task == f"knapsack-{metadata['train']}-student-{metadata['runtime']}-runtime-easy"
        assert log.eval.model == f"mockllm/{metadata['train']}"
        assert log.eval.config.max_samples == 2
        assert log.plan.config.temperature == 0.2 and log.plan.config.max_tokens == 12288  # the students' settings
        assert log.eval.config.time_limit == 900  # the paper's wall-clock limit per student episode
        full = read_eval_log(log.location)
        assert [sample.id for sample in full.samples] == ["knapsack-0000000005", "knapsack-0000000006"]
    assert seen == {(t, r, "easy") for t in ("persistent", "stateless") for r in ("persistent", "stateless")}
    files = sorted(log_dir.glob("*.eval"))
    success, logs = run_matrix(spec, fake_factory)  # resumes: nothing new to run
    assert success and sorted(log_dir.glob("*.eval")) == files
    # the matrix logs export, with the train label from eval metadata
    summary = export_traces([log_dir], tmp_path / "t.jsonl", ExportOptions(dedup=False))
    assert summary.kept == 8


def test_cli_dry_run(capsys, tmp_path):
    code = main(
        [
            "matrix",
            "--student", "persistent=vllm/Qwen/Qwen3-8B:persistent",
            "--student", "stateless=vllm/Qwen/Qwen3-8B:stateless",
            "--student", "base=vllm/Qwen/Qwen3-8B",
            "--runtimes", "persistent,stateless",
            "--difficulty", "easy,medium",
            "--num", "10",
            "--log-dir", str(tmp_path / "logs"),
            "--max-connections", "32",
            "--time-limit", "900",
            "--dry-run",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "temperature=0.2 max_tokens=12288 time_limit=900" in out
    assert out.startswith(f"12 conditions -> eval set in {tmp_path / 'logs'}")
    assert "--model vllm/Qwen/Qwen3-8B:stateless -T runtime=persistent -T difficulty=medium -T num=10" in out
    assert "max_connections=32" in out
    assert not (tmp_path / "logs").exists()
    assert main(["matrix", "--student", "a=x/y", "--student", "b=x/y", "--log-dir", "l", "--dry-run"]) == 2
    assert "share model" in capsys.readouterr().err


def test_matrix_runs_on_given_task_folders_one_per_difficulty(tmp_path, capsys):
    import shutil

    from opaque_knapsack.knapsack import PRESETS
    from opaque_knapsack.knapsack.writer import generate_tasks
    from opaque_knapsack.reports import load_runs

    easy = tmp_path / "easy"
    generate_tasks(PRESETS["easy"], easy, 1, 123456789)
    generated = tmp_path / "medium-generated"
    generate_tasks(PRESETS["medium"], generated, 1, 123456789)
    medium = tmp_path / "paper-medium"  # bare files, as the paper's artifacts ship them
    medium.mkdir()
    for file in (generated / "tasks" / "knapsack").glob("*.json"):
        shutil.copy(file, medium / file.name)
    log_dir = tmp_path / "logs"
    argv = [
        "matrix", "--student", "persistent=scripted/persistent", "--runtimes", "persistent",
        "--tasks", str(easy), "--tasks", str(medium), "--log-dir", str(log_dir),
    ]  # fmt: skip
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 conditions")
    assert f"-T tasks={medium}" in out and "difficulty:medium" in out
    spec = MatrixSpec(students={"persistent": "scripted/persistent"}, tasks=[str(easy)], log_dir="l",
                      task_options={"max_turns": 3})
    from opaque_knapsack.evaluate.matrix import task_args

    assert task_args(spec, conditions(spec)[0])["max_turns"] == 3  # task options reach given task folders too
    assert main(argv) == 0
    runs = load_runs([log_dir])
    assert sorted(run.condition.difficulty for run in runs) == ["easy", "medium"]
    assert all(run.n_episodes == 1 for run in runs)
    # two folders of one difficulty, or --tasks with --difficulty, are refused up front
    assert main(["matrix", "--student", "a=x/y", "--tasks", str(easy), "--tasks", str(easy), "--log-dir", "l"]) == 2
    assert "both 'easy'" in capsys.readouterr().err
    assert main(["matrix", "--student", "a=x/y", "--tasks", str(easy), "--difficulty", "easy", "--log-dir", "l"]) == 2
    assert "not both" in capsys.readouterr().err


def test_matrix_warns_about_step_timeouts_and_kernel_restarts():
    from inspect_ai.log import EvalLog, EvalMetric, EvalResults, EvalScore

    from opaque_knapsack.evaluate.cli import _fault_note

    def log(timeouts_mean: float, restarts_mean: float) -> EvalLog:
        scores = [
            EvalScore(name=name, scorer="knapsack_scorer", scored_samples=20,
                      metrics={"mean": EvalMetric(name="mean", value=value)})
            for name, value in (("optimality", 0.9), ("step_timeouts", timeouts_mean), ("kernel_restarts", restarts_mean))
        ]
        spec = build_tasks(MatrixSpec(students={"s": "mockllm/s"}, runtimes=["stateless"], difficulties=["easy"],
                                      num=1, log_dir="l"), fake_factory)[0]
        from inspect_ai.log import EvalDataset, EvalSpec

        eval_spec = EvalSpec(created="2026-01-01T00:00:00+00:00", task="t", dataset=EvalDataset(), model="mockllm/s",
                             config={}, metadata=spec.metadata)
        return EvalLog(eval=eval_spec, results=EvalResults(completed_samples=20, scores=scores), location="x.eval")

    note = _fault_note(log(0.15, 0.05))
    assert note is not None and note.startswith("s/stateless/easy (x.eval): 3 step timeouts and 1 kernel restarts in 20 episodes")
    assert _fault_note(log(0.0, 0.0)) is None
