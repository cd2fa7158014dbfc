"""A study killed outright in the middle of the matrix, re-run: every sample exactly once, no server left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from polling import wait_until

from opaque_knapsack.cli import main
from opaque_knapsack.study.context import Study
from opaque_knapsack.study.runner import study_states

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_sigkill_in_the_middle_of_the_matrix_then_rerun_finishes_each_sample_once(trained, monkeypatch):
    spec = trained / "study.yaml"
    requests, pids = trained / "requests.jsonl", trained / "server.json"
    env = {**os.environ, "FAKE_VLLM_DELAY": "0.5", "FAKE_VLLM_REQUESTS": str(requests), "FAKE_VLLM_PIDS": str(pids),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-m", "opaque_knapsack.cli", "study", "run", str(spec)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    first_server = None
    try:
        # 6 conditions x 2 samples x 2 turns = 24 replies; kill after a third of them
        assert wait_until(lambda: requests.exists() and len(requests.read_text().splitlines()) >= 8, timeout=240)
        first_server = json.loads(pids.read_text())["server"]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        assert _alive(first_server)  # the server is in its own process group: SIGKILL of the run missed it
        monkeypatch.setenv("FAKE_VLLM_DELAY", "0")
        monkeypatch.setenv("FAKE_VLLM_PIDS", str(pids))
        assert main(["study", "run", str(spec)]) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert wait_until(lambda: not _alive(first_server))  # the re-run stopped the server the killed run left

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


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(trained, monkeypatch):
    spec = trained / "study.yaml"
    requests, pids = trained / "requests.jsonl", trained / "server.json"
    env = {**os.environ, "FAKE_VLLM_DELAY": "0.5", "FAKE_VLLM_REQUESTS": str(requests), "FAKE_VLLM_PIDS": str(pids),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-m", "opaque_knapsack.cli", "study", "run", str(spec)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert wait_until(lambda: requests.exists() and len(requests.read_text().splitlines()) >= 4, timeout=240)
        server = json.loads(pids.read_text())["server"]
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C at a terminal sends
        _, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "opaque-knapsack study: interrupted; re-run to resume" and "Traceback" not in err
    assert not _alive(server)  # the server and its group went with the stage
    states = {state.stage: state for state in study_states(Study.load(spec))}
    assert states["matrix"].status == "to run" and states["matrix"].reasons == ["interrupted; resumes where it stopped"]
    monkeypatch.setenv("FAKE_VLLM_DELAY", "0")
    assert main(["study", "run", str(spec)]) == 0
    assert len(list(Study.load(spec).folder.matrix_logs.glob("*.eval"))) == 6
