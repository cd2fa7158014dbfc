"""Many episodes at once: nothing left behind, nothing lost, and load does not change the figures.

Each harness runs in a subprocess of its own with its own TMPDIR, so every
check ("no process, descriptor or directory left") is scoped to that harness:
other runs on the machine are never looked at.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from polling import wait_until

from opaque_knapsack.sandboxes.kernel import KERNEL_SCRIPT

pytestmark = pytest.mark.slow

def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TMPDIR"] = str(tmp)
    # the parent's import path in its order (src/ first would let an installed
    # checkout's egg-info shadow the distribution Inspect namespaces tasks by)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, sys.path))
    env["INSPECT_LOG_LEVEL"] = "error"
    env.pop("INSPECT_EVAL_LOG_FILE_PATTERN", None)
    return env


def _script(tmp: Path, body: str) -> list[str]:
    path = tmp / "harness.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def _processes_of(harness_pid: int) -> list[psutil.Process]:
    """Zygote, kernels and step processes started by one harness (they carry its pid)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info.get("cmdline") or []
        if KERNEL_SCRIPT not in cmdline or proc.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        try:
            cfg = json.loads(cmdline[cmdline.index(KERNEL_SCRIPT) + 2])
        except (ValueError, IndexError):
            continue
        if cfg.get("harness_pid") == harness_pid:
            found.append(proc)
    return found


def _workdirs(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.glob("ok-kernel-*"))


EVAL_SET = """
    import json, os, sys
    import psutil
    from inspect_ai import eval_set
    from inspect_ai.log import read_eval_log
    from opaque_knapsack.knapsack import knapsack

    log_dir, num, latency = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

    def fds():
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                found.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                pass
        return sorted(found)

    def run(tasks, where=log_dir):
        return eval_set(tasks, log_dir=where, model="scripted/persistent", display="none",
                        model_args={"latency": latency} if latency else {}, max_samples=num,
                        max_connections=num, max_tasks=2, retry_attempts=2, retry_wait=0.1)

    run([knapsack(num=2, runtime="persistent")], log_dir + "-warmup")  # Inspect's one-time files
    tasks = [knapsack(num=num, runtime="persistent"), knapsack(num=num, runtime="stateless")]
    before = fds()
    success, logs = run(tasks)
    after = fds()
    children = [p.pid for p in psutil.Process().children(recursive=True)]
    logs = sorted((read_eval_log(log.location) for log in logs), key=lambda log: log.eval.task_args["runtime"])
    print(json.dumps({"success": success, "fds": [before, after], "children": children,
                      "samples": [sorted(str(s.id) for s in log.samples or []) for log in logs],
                      "errors": [sum(s.error is not None for s in log.samples or []) for log in logs]}))
"""


def test_an_eval_set_of_many_episodes_leaves_no_process_descriptor_or_directory(tmp_path: Path) -> None:
    num = 60
    command = _script(tmp_path, EVAL_SET) + [str(tmp_path / "logs"), str(num), "0"]
    first = subprocess.run(command, env=_env(tmp_path), capture_output=True, text=True, timeout=400, check=False)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert report["success"] and report["errors"] == [0, 0]
    assert [len(ids) for ids in report["samples"]] == [num, num]
    assert report["children"] == []  # no zygote, kernel or step process outlives the eval set
    before, after = report["fds"]
    assert len(after) <= len(before), f"descriptors leaked: {before} before, {after} after {2 * num} episodes"
    assert _workdirs(tmp_path) == []
    # Re-running the finished eval set runs nothing again and loses nothing.
    again = subprocess.run(command, env=_env(tmp_path), capture_output=True, text=True, timeout=400, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads(again.stdout.strip().splitlines()[-1])
    assert rerun["success"] and rerun["samples"] == report["samples"]


def test_sigkill_at_full_concurrency_then_cleanup_leaves_nothing_and_the_rerun_completes(tmp_path: Path) -> None:
    num = 40
    log_dir = tmp_path / "logs"
    command = _script(tmp_path, EVAL_SET) + [str(log_dir), str(num)]
    harness = subprocess.Popen(
        command + ["1"], env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 240
        # full concurrency: both tasks' kernels up (zygote + kernel + step process each)
        while len(_processes_of(harness.pid)) < 2 * num and time.monotonic() < deadline:
            assert harness.poll() is None, harness.stderr.read()[-3000:] if harness.stderr else ""
            time.sleep(0.2)
        assert len(_processes_of(harness.pid)) >= 2 * num
        assert _workdirs(tmp_path)
        harness.send_signal(signal.SIGKILL)
        harness.wait(30)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait(30)
    cleanup = subprocess.run(["inspect", "sandbox", "cleanup", "persistent_python"], env=_env(tmp_path),
                             capture_output=True, text=True, timeout=120, check=False)
    assert cleanup.returncode == 0, cleanup.stderr[-2000:]
    wait_until(lambda: not _processes_of(harness.pid))
    assert _processes_of(harness.pid) == []
    assert _workdirs(tmp_path) == []
    # The eval set, run again (same settings), finishes the interrupted tasks: every sample once.
    again = subprocess.run(command + ["1"], env=_env(tmp_path), capture_output=True, text=True, timeout=400,
                           check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads(again.stdout.strip().splitlines()[-1])
    assert report["success"] and report["errors"] == [0, 0]
    expected = sorted(f"knapsack-{i:010d}" for i in range(num))
    assert report["samples"] == [expected, expected]


def _figures(logs: list) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """Per condition (model, runtime) and per sample: the episode scorer's whole dict."""
    from inspect_ai.log import read_eval_log

    figures: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for header in logs:
        log = read_eval_log(header.location)
        assert log.status == "success", log.error
        key = (log.eval.model, str(log.eval.task_args["runtime"]))
        figures[key] = {str(s.id): dict(s.scores["knapsack_scorer"].value) for s in log.samples or []}
    return figures


def test_the_same_tasks_give_the_same_figures_at_concurrency_one_and_under_load(tmp_path: Path) -> None:
    from inspect_ai import eval as inspect_eval

    from opaque_knapsack.knapsack import knapsack

    num = 16

    def run(concurrency: int, log_dir: Path) -> dict:
        tasks = [
            knapsack(num=num, runtime="stateless", difficulty="medium"),
            knapsack(num=num, runtime="persistent", difficulty="easy"),
        ]
        logs = inspect_eval(
            tasks, model=["scripted/persistent", "scripted/stateless"], log_dir=str(log_dir), display="none",
            max_samples=concurrency, max_connections=max(concurrency, 1), max_tasks=4 if concurrency > 1 else 1,
            score_display=False,
        )
        return _figures(logs)

    alone = run(1, tmp_path / "one")
    loaded = run(2 * num, tmp_path / "many")  # every episode of all four conditions at once
    assert len(alone) == 4 and sorted(alone) == sorted(loaded)
    for condition, samples in alone.items():
        assert len(samples) == num
        for sample_id, figures in samples.items():
            assert loaded[condition][sample_id] == figures, (condition, sample_id)
        faults = sum(f["step_timeouts"] + f["kernel_restarts"] for f in loaded[condition].values())
        assert faults == 0, condition
