"""`study run` end to end with scripted teachers and the Axolotl and vLLM stand-ins."""

from __future__ import annotations

import json
import os
import time

import pytest
from fakes import process_alive
from polling import wait_until
from study_helpers import small_spec, write_spec

from opaque_knapsack.cli import main
from opaque_knapsack.study.context import Study
from opaque_knapsack.study.runner import study_states

pytestmark = pytest.mark.slow


def test_the_whole_study_runs_then_a_rerun_skips_every_stage(trained, monkeypatch, capsys):
    # tasks, teacher, export and train ran in the session's fixture, with these settings but for serve's
    pids = trained / "server.json"
    monkeypatch.setenv("FAKE_VLLM_PIDS", str(pids))
    spec = write_spec(trained, small_spec(serve={"max_loras": 1}))
    assert main(["study", "run", str(spec)]) == 0
    out = capsys.readouterr().out
    for stage in ("tasks", "teacher", "export", "train"):
        assert f"== {stage}: done, skipped" in out, out
    for stage in ("matrix", "report"):
        assert f"== {stage}: finished in" in out, out
    study = Study.load(spec)
    assert all(state.done for state in study_states(study))

    # the server: every adapter served, at least as many LoRAs per batch as students, and stopped after
    server = json.loads(pids.read_text())
    argv = server["argv"]
    assert argv[argv.index("--max-loras") + 1] == "2"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "1"
    assert wait_until(lambda: not process_alive(server["server"]))
    assert not study.folder.server_pid.exists()

    # the matrix: 3 students x 2 runtimes x 1 difficulty, each condition one log with both samples
    from inspect_ai.log import read_eval_log

    logs = sorted(study.folder.matrix_logs.glob("*.eval"))
    assert len(logs) == 6
    for path in logs:
        log = read_eval_log(str(path))
        assert log.status == "success" and len(log.samples) == 2
        assert log.eval.model.startswith("vllm/base-model")

    page = (study.folder.report / "README.md").read_text()
    for heading in ("## Results", "## Figures", "## Per-condition statistics", "## Paired comparisons", "## Logs"):
        assert heading in page
    assert "inspect view --log-dir ../matrix/logs" in page
    assert all(f"({os.path.relpath(path, study.folder.report)})" in page for path in logs)
    assert "![cost_performance](cost_performance.png)" in page

    started = time.monotonic()
    assert main(["study", "run", str(spec)]) == 0
    again = capsys.readouterr().out
    assert time.monotonic() - started < 30
    assert again.count("done, skipped") == 6 and "finished in" not in again
    assert "0 stage(s) run, 6 skipped, " in again
