"""A study killed outright in the middle of the matrix, re-run: every sample exactly once, no server left."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import process_alive
from polling import wait_until

from opaque_knapsack.cli import main
from opaque_knapsack.study.context import Study
from opaque_knapsack.study.runner import study_states

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def matrix_in_progress(trained: Path, replies: int) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`study run` in its own process group, slowed by the fake server, once REPLIES replies are given: (process, server pid).

    6 conditions x 2 samples x 2 turns = 24 replies in all. Whatever the test does, the run is gone after.
    """
    requests, pids = trained / "requests.jsonl", trained / "server.json"
    env = {**os.environ, "FAKE_VLLM_DELAY": "0.5", "FAKE_VLLM_REQUESTS": str(requests), "FAKE_VLLM_PIDS": str(pids),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-m", "opaque_knapsack.cli", "study", "run", str(trained / "study.yaml")],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert wait_until(lambda: requests.exists() and len(requests.read_text().splitlines()) >= replies, timeout=240)
        yield process, json.loads(pids.read_text())["server"]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_sigkill_in_the_middle_of_the_matrix_then_rerun_finishes_each_sample_once(trained, monkeypatch):
    spec = trained / "study.yaml"
    with matrix_in_progress(trained, replies=8) as (process, first_server):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process_alive(first_server)  # the server is in its own process group: SIGKILL of the run missed it
    monkeypatch.setenv("FAKE_VLLM_PIDS", str(trained / "server.json"))
    assert main(["study", "run", str(spec)]) == 0
    assert wait_until(lambda: not process_alive(first_server))  # the re-run stopped the server the killed run left

    study = Study.load(spec)
    assert all(state.done for state in study_states(study))
    from inspect_ai.log import read_eval_log

    logs = [read_eval_log(str(path)) for path in sorted(study.folder.matrix_logs.glob("*.eval"))]
    assert len(logs) == 6, [log.location for log in logs]  # one log per condition, nothing left over
    for log in logs:
        assert log.status == "success"
        ids = Counter(sample.id for sample in log.samples)
        assert sorted(ids) == ["knapsack-0000000000", "knapsack-0000000001"] and set(ids.values()) == {1}
        assert all(sample.error is None and sample.scores for sample in log.samples)


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(trained):
    spec = trained / "study.yaml"
    with matrix_in_progress(trained, replies=4) as (process, server):
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C at a terminal sends
        _, err = process.communicate(timeout=180)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "opaque-knapsack study: interrupted; re-run to resume" and "Traceback" not in err
    assert not process_alive(server)  # the server and its group went with the stage
    states = {state.stage: state for state in study_states(Study.load(spec))}
    assert states["matrix"].status == "to run" and states["matrix"].reasons == ["interrupted; resumes where it stopped"]
    assert main(["study", "run", str(spec)]) == 0
    assert len(list(Study.load(spec).folder.matrix_logs.glob("*.eval"))) == 6
