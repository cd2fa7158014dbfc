"""Scale-out through Inspect's own eval-set worker protocol, not a scheduler of our own.

Inspect (0.3.261 and later) runs an eval set in two halves. With
``INSPECT_EVAL_SET_CAPTURE=FILE`` set, ``eval_set()`` resolves its tasks,
writes a manifest of them (each with an identifier, its model and sample
count) and exits. With ``INSPECT_EVAL_SET_SELECTION=FILE`` set, it runs
only the tasks a selection document names (optionally resuming each from a
prior log) through the ordinary ``eval()`` path, with none of the eval
set's own bookkeeping, so many worker processes can write into one log
directory. The runner that wrote the selections owns that directory: it
decides what is finished, what resumes from which log, and writes the eval
set's metadata at the end.

Here the runner is the study. A stage's definition (``opaque-knapsack study
eval STAGE SPEC``) is captured once; the tasks not yet finished in the log
directory are split over N local worker processes, each its own Python with
its own event loop and kernels' zygote, so a study uses every core; or
written out as one worker command per task, for a Slurm array or a
Kubernetes Job against a shared log directory. Afterwards the ordinary
``eval_set`` over the same definition finds every task finished, runs
nothing, and writes the eval set's metadata.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opaque_knapsack.study.bookkeeping import write_json_atomic
from opaque_knapsack.study.context import Study, StudyError

__all__ = [
    "CAPTURE_ENV",
    "SELECTION_ENV",
    "Capture",
    "WorkItem",
    "capture",
    "definition_command",
    "expected_work",
    "pending",
    "run_workers",
    "split",
    "write_cluster_commands",
]

CAPTURE_ENV = "INSPECT_EVAL_SET_CAPTURE"
SELECTION_ENV = "INSPECT_EVAL_SET_SELECTION"
SELECTION_VERSION = 1
"""The selection schema version whose fields (identifier, resume, eval_set_id) are all we write."""


class CapturedTask(BaseModel):
    """The fields of one task of Inspect's capture manifest that the runner reads."""

    model_config = ConfigDict(extra="ignore")

    name: str
    model: str
    identifier: str
    samples: int
    epochs: int = 1
    args: dict[str, Any] = Field(default_factory=dict)
    """The task's arguments as passed (``tasks``: the folder of its instances)."""


class Capture(BaseModel):
    """Inspect's capture manifest, as far as the runner reads it."""

    model_config = ConfigDict(extra="ignore")

    version: int
    tasks: list[CapturedTask]


@dataclass(frozen=True)
class WorkItem:
    """A task still to run, and the log to resume it from (its finished samples are kept)."""

    task: CapturedTask
    resume: str | None = None
    done: int = 0


def definition_command(study: Study, stage: str, *, console_script: bool = False, limit: int | None = None) -> list[str]:
    """The command that executes STAGE's eval set: plain, under capture, or as a worker."""
    head = ["opaque-knapsack"] if console_script else [sys.executable, "-m", "opaque_knapsack.cli"]
    command = [*head, "study", "eval", stage, str(study.spec_path)]
    return command + (["--limit", str(limit)] if limit else [])


def capture(study: Study, stage: str, env: dict[str, str], *, limit: int | None = None) -> Capture:
    """Run the definition under capture; the manifest it writes, read."""
    folder = study.folder.workers(stage)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    manifest.unlink(missing_ok=True)
    log = folder / "capture.log"
    with log.open("w", encoding="utf-8") as stream:
        result = subprocess.run(
            definition_command(study, stage, limit=limit), env={**env, CAPTURE_ENV: str(manifest)},
            stdout=stream, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
    if result.returncode != 0 or not manifest.is_file():
        raise StudyError(stage, f"capturing the eval set's tasks failed (exit {result.returncode}): {_last_line(log)}", log)
    return Capture.model_validate_json(manifest.read_text(encoding="utf-8"))


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _headers(log_dir: Path) -> list[Any]:
    from inspect_ai.log import list_eval_logs, read_eval_log

    if not log_dir.is_dir():
        return []
    return [read_eval_log(info, header_only=True) for info in list_eval_logs(str(log_dir), recursive=False)]


def pending(manifest: Capture, log_dir: Path) -> list[WorkItem]:
    """The captured tasks without a finished log in LOG_DIR, each with its newest log to resume from.

    A task's log is found by its task name and model, which the study makes
    unique within a stage (each condition is named after its cell); the
    worker itself checks that a resumed log belongs to its task.
    """
    headers = _headers(log_dir)
    items = []
    for task in manifest.tasks:
        logs = sorted(
            (header for header in headers if header.eval.task == task.name and header.eval.model == task.model),
            key=lambda header: header.eval.created,
        )
        latest = logs[-1] if logs else None
        finished = _completed(latest)
        if latest is not None and latest.status == "success" and finished >= task.samples * task.epochs:
            continue
        items.append(WorkItem(task, latest.location if latest is not None else None, finished))
    return items


def _completed(header: Any) -> int:
    results = getattr(header, "results", None) if header is not None else None
    return int(results.completed_samples) if results is not None else 0


def split(items: Sequence[WorkItem], workers: int) -> list[list[WorkItem]]:
    """Share the tasks among WORKERS: each next-largest task (by ``expected_work``) to the least loaded."""
    work = expected_work(items)
    shares: list[list[WorkItem]] = [[] for _ in range(min(workers, len(items)))]
    loads = [0.0] * len(shares)
    for index in sorted(range(len(items)), key=lambda index: work[index], reverse=True):
        least = loads.index(min(loads))
        shares[least].append(items[index])
        loads[least] += work[index]
    return shares


def expected_work(items: Sequence[WorkItem]) -> list[float]:
    """Each task's expected work: its samples left to run, times the mean size of its instance files
    where every task names a folder of them (bigger instances make longer episodes: a medium
    knapsack's files are about twice an easy one's, and so are its episodes' turns and tokens)."""
    left = [float(item.task.samples * item.task.epochs - item.done) for item in items]
    folders = [item.task.args.get("tasks") for item in items]
    sizes = {folder: _mean_file_size(folder) for folder in set(folders)}  # a folder serves several tasks
    per_sample = [sizes[folder] for folder in folders]
    if any(size is None for size in per_sample):
        return left
    return [count * size for count, size in zip(left, per_sample, strict=True) if size is not None]


def _mean_file_size(folder: Any) -> float | None:
    """The mean size in bytes of the files under FOLDER; None if it is not a folder holding any."""
    if not isinstance(folder, str) or not Path(folder).is_dir():
        return None
    sizes = [path.stat().st_size for path in Path(folder).rglob("*") if path.is_file()]
    return sum(sizes) / len(sizes) if sizes and sum(sizes) else None


def selection_document(items: Sequence[WorkItem], eval_set_id: str) -> dict[str, Any]:
    """Inspect's selection document for one worker."""
    tasks = [{"identifier": item.task.identifier, **({"resume": item.resume} if item.resume else {})} for item in items]
    return {"version": SELECTION_VERSION, "eval_set_id": eval_set_id, "tasks": tasks}


def run_workers(
    study: Study,
    stage: str,
    items: Sequence[WorkItem],
    workers: int,
    eval_set_id: str,
    env: dict[str, str],
    *,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Run the pending tasks as WORKERS processes into the stage's log directory; StudyError if one fails.

    Ctrl-C reaches the workers (they share the terminal's process group) and
    each stops cleanly, leaving its logs for the next run to resume from.
    """
    folder = study.folder.workers(stage)
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []
    streams = []
    try:
        for number, share in enumerate(split(items, workers)):
            selection = folder / f"selection-{number:03d}.json"
            write_json_atomic(selection, selection_document(share, eval_set_id))
            log = folder / f"worker-{number:03d}.log"
            stream = log.open("w", encoding="utf-8")
            streams.append(stream)
            command = definition_command(study, stage, limit=limit)
            process = subprocess.Popen(command, env={**env, SELECTION_ENV: str(selection)}, stdout=stream, stderr=subprocess.STDOUT)
            processes.append((process, log))
        _wait(processes, progress, len(items))
    except KeyboardInterrupt:
        _interrupt([process for process, _ in processes])
        raise
    finally:
        for stream in streams:
            stream.close()
    failed = [(process.returncode, log) for process, log in processes if process.returncode != 0]
    if failed:
        code, log = failed[0]
        raise StudyError(stage, f"{len(failed)} of {len(processes)} workers failed (exit {code}): {_last_line(log)}; re-run to resume", log)


def _wait(processes: list[tuple[subprocess.Popen[bytes], Path]], progress: Callable[[int, int], None] | None, total: int) -> None:
    while any(process.poll() is None for process, _ in processes):
        if progress is not None:
            progress(sum(process.poll() is not None for process, _ in processes), len(processes))
        time.sleep(0.5)
    if progress is not None:
        progress(len(processes), len(processes))


def _interrupt(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGINT to every worker still running (Inspect's clean stop), then wait; SIGKILL after a grace period."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 60
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _local(location: str) -> str:
    return location.removeprefix("file://")


def write_cluster_commands(study: Study, stage: str, items: Sequence[WorkItem], eval_set_id: str) -> Path:
    """One selection per task and one worker command per task (a line of commands.txt); returns the file."""
    folder = study.folder.workers(stage)
    for old in folder.glob("selection-*.json"):
        old.unlink()
    lines = []
    for number, item in enumerate(items):
        selection = folder / f"selection-{number:03d}.json"
        write_json_atomic(selection, selection_document([item], eval_set_id))
        command = definition_command(study, stage, console_script=True)
        lines.append(f"{SELECTION_ENV}={shlex.quote(str(selection))} {shlex.join(command)}")
    commands = folder / "commands.txt"
    commands.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return commands


def describe(items: Sequence[WorkItem]) -> list[str]:
    return [
        f"{item.task.name} ({item.task.model}): {item.task.samples * item.task.epochs - item.done} samples"
        + (f", resuming {Path(_local(item.resume)).name}" if item.resume else "")
        for item in items
    ]
