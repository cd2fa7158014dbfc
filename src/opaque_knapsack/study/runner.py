"""`study run`: the stages in order, each skipped when its marker says it is done.

Before a stage runs, its inputs are hashed. A stage with a marker of the
same inputs and untouched outputs is skipped. A stage whose inputs changed
since its outputs were made has those outputs moved to ``superseded/``
(nothing finished is lost) and runs again; a stage interrupted with the same
inputs resumes into its outputs (the evaluation stages through Inspect's
``eval_set``). A stage whose outputs were edited by hand stops the run with
one line naming the file. A failing stage names itself and its log, and
leaves every finished stage as it was: markers are only ever written for a
stage that finished.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opaque_knapsack.study import adapters
from opaque_knapsack.study.bookkeeping import (
    Marker,
    StageState,
    changed_inputs,
    changed_outputs,
    digest,
    file_digests,
    read_marker,
    write_json_atomic,
    write_marker,
)
from opaque_knapsack.study.context import RunOptions, Study, StudyError
from opaque_knapsack.study.stages import STAGES, Stage, section_digest, stage_named

__all__ = ["StageResult", "ready_inputs", "run_eval_stage", "run_study", "stage_inputs", "stage_logs", "study_states"]


def _version() -> str:
    from opaque_knapsack import __version__

    return __version__


def _marker_path(study: Study, stage: str) -> Path:
    return study.folder.markers / f"{stage}.json"


def _started_path(study: Study, stage: str) -> Path:
    return study.folder.markers / f"{stage}.started.json"


def _relative(study: Study, path: Path) -> str:
    try:
        return path.relative_to(study.folder.root).as_posix()
    except ValueError:
        return str(path)


def stage_inputs(study: Study, stage: Stage, markers: Mapping[str, Marker | None]) -> dict[str, str] | None:
    """The hashes of STAGE's inputs, or None while an upstream stage is not done."""
    inputs = {f"spec:{name}": section_digest(getattr(study.spec, name)) for name in stage.sections}
    inputs["version"] = _version()
    reads = stage.reads(study)
    for name in stage.upstream:
        marker = markers.get(name)
        if marker is None:
            return None
        prefixes = [_relative(study, path) for path in reads.get(name, [])]
        read = {key: value for key, value in marker.outputs.items() if not prefixes or any(_under(key, prefix) for prefix in prefixes)}
        inputs[f"upstream:{name}"] = digest(read)
    return inputs


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix.rstrip("/") + "/")


def _current_outputs(study: Study, stage: Stage) -> dict[str, str]:
    return file_digests(study.folder.root, stage.outputs(study))


def _state(study: Study, stage: Stage, markers: dict[str, Marker | None]) -> StageState:
    """Where STAGE stands; records its marker in MARKERS only when it is done (downstream reads it)."""
    marker = read_marker(_marker_path(study, stage.name))
    inputs = stage_inputs(study, stage, markers)
    if inputs is None:
        waiting = [name for name in stage.upstream if markers.get(name) is None]
        return StageState(stage.name, "waiting", [f"after {', '.join(waiting)}"])
    running = _running(study, stage.name)
    if running:
        return StageState(stage.name, "running", [running], inputs=inputs)
    if marker is None:
        return StageState(stage.name, *_unfinished(study, stage.name), inputs=inputs)
    reasons = changed_inputs(marker.inputs, inputs)
    if reasons:
        return StageState(stage.name, "changed", reasons, marker, inputs)
    edited, removed = changed_outputs(marker.outputs, _current_outputs(study, stage))
    if edited:
        return StageState(stage.name, "edited", [f"{_shown(study, edited[0])} changed since the stage finished"], marker, inputs)
    if removed:
        return StageState(stage.name, "to run", [f"its output {_shown(study, removed[0])} was removed"], marker, inputs)
    markers[stage.name] = marker
    return StageState(stage.name, "done", [f"in {marker.seconds:.0f}s"], marker, inputs)


def _shown(study: Study, name: str) -> str:
    return str(study.folder.root / name) if not Path(name).is_absolute() else name


def _unfinished(study: Study, stage: str) -> tuple[Any, list[str]]:
    started = _read_json(_started_path(study, stage))
    if started is None:
        return "to run", []
    if started.get("error"):
        log = f" (log: {started['log']})" if started.get("log") else ""
        return "failed", [f"{started['error']}{log}; re-run to resume"]
    return "to run", ["interrupted; resumes where it stopped"]


def _running(study: Study, stage: str) -> str | None:
    started = _read_json(_started_path(study, stage))
    pid = int((started or {}).get("pid") or 0)
    if pid <= 0 or pid == os.getpid():  # a finished, failed or interrupted attempt records no pid
        return None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return None
    except PermissionError:
        pass
    return f"by process {pid} since {time.strftime('%H:%M:%S', time.localtime(started.get('since', 0)))}"


def _read_json(path: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def ready_inputs(study: Study, name: str) -> str:
    """The hash of a stage's inputs, for running it outside `study run`; StudyError while a stage before it is not done."""
    markers: dict[str, Marker | None] = {}
    for stage in STAGES:
        state = _state(study, stage, markers)
        if stage.name == name:
            if state.inputs is None:
                raise StudyError(name, f"the stages before it are not done ({state.line()}): run `opaque-knapsack study run --until {stage.upstream[-1]}` first")
            return digest(state.inputs)
    raise StudyError(name, "no such stage")


def stage_logs(study: Study, name: str) -> str:
    """Where a stage's logs are, for `study status`: the paths that exist (or will)."""
    return ", ".join(str(path) for path in stage_named(name).logs(study))


def study_states(study: Study) -> list[StageState]:
    """Every stage's state, in order (what `plan` and `status` print)."""
    markers: dict[str, Marker | None] = {}
    return [_state(study, stage, markers) for stage in STAGES]


# -- running --------------------------------------------------------------------------------------------


@dataclass
class StageResult:
    stage: str
    ran: bool
    seconds: float
    note: str = ""


def run_study(study: Study, options: RunOptions, *, on_stage: Callable[[str, str], None] | None = None) -> list[StageResult]:
    """Run every stage not done, in order, up to `options.until`; returns what each did."""
    if options.until is not None:
        stage_named(options.until)
    markers: dict[str, Marker | None] = {}
    results: list[StageResult] = []
    for stage in STAGES:
        state = _state(study, stage, markers)
        if state.done:
            results.append(StageResult(stage.name, False, 0.0, "done"))
            options.echo(f"== {stage.name}: done, skipped")
        elif state.status == "edited":
            raise StudyError(
                stage.name,
                f"{state.reasons[0]} (edited by hand?): restore it, or move it away to have the stage run again",
            )
        elif state.status == "running":
            raise StudyError(stage.name, f"running {state.reasons[0]}; wait for it, or stop that process first")
        else:
            assert state.inputs is not None, f"{stage.name} ran before its upstream stages"
            result = _run_stage(study, stage, state, options)
            results.append(result)
            if result.note == "limited":
                break
            markers[stage.name] = read_marker(_marker_path(study, stage.name))
        if stage.name == options.until:
            break
    return results


def _run_stage(study: Study, stage: Stage, state: StageState, options: RunOptions) -> StageResult:
    inputs = state.inputs or {}
    why = f" ({'; '.join(state.reasons)})" if state.reasons else ""
    options.echo(f"== {stage.name}: {stage.what}{why}")
    _supersede_if_changed(study, stage, inputs, options)
    started_path = _started_path(study, stage.name)
    write_json_atomic(started_path, {"pid": os.getpid(), "since": time.time(), "inputs": inputs})
    started = time.monotonic()
    limited = options.limit is not None and stage.evaluation
    in_inspect = stage.evaluation and options.workers == 1
    try:
        with options.activity(f"{stage.name}: {stage.what}", in_inspect) as update:
            options.status = update
            details = stage.run(study, options, digest(inputs))
    except StudyError as error:
        _record_failure(started_path, inputs, error.message, error.log)
        raise
    except adapters.tool_errors() as error:
        _record_failure(started_path, inputs, str(error), None)
        raise StudyError(stage.name, str(error)) from None
    except OSError as error:
        message = _os_problem(error)
        _record_failure(started_path, inputs, message, None)
        raise StudyError(stage.name, message) from None
    except KeyboardInterrupt:
        write_json_atomic(started_path, {"inputs": inputs, "interrupted": time.time()})
        raise
    seconds = time.monotonic() - started
    if limited:
        write_json_atomic(started_path, {"inputs": inputs, "limited": options.limit})
        options.echo(f"== {stage.name}: {options.limit} samples per task in {seconds:.0f}s (--limit: not marked done; "
                     "`study plan` now estimates from these logs)")
        return StageResult(stage.name, True, seconds, "limited")
    outputs = _current_outputs(study, stage)
    write_marker(_marker_path(study, stage.name), Marker(stage.name, inputs, outputs, seconds, details=_jsonable(details)))
    started_path.unlink(missing_ok=True)
    options.echo(f"== {stage.name}: finished in {seconds:.0f}s")
    return StageResult(stage.name, True, seconds)


def _os_problem(error: OSError) -> str:
    """A file-system failure in words: the path, what happened, and for a full disk what to do."""
    import errno

    where = f"{error.filename}: " if error.filename else ""
    message = f"{where}{error.strerror or error}"
    if error.errno == errno.ENOSPC:
        message += "; free some space and re-run (finished stages are kept, this one resumes)"
    return message


def _record_failure(path: Path, inputs: dict[str, str], message: str, log: Path | None) -> None:
    write_json_atomic(path, {"inputs": inputs, "error": message, "log": str(log) if log else None, "failed": time.time()})


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(details, default=str))


def _supersede_if_changed(study: Study, stage: Stage, inputs: dict[str, str], options: RunOptions) -> None:
    """Move aside outputs made from other inputs (a finished or an interrupted run), so none is lost or mixed in."""
    recorded = read_marker(_marker_path(study, stage.name))
    started = _read_json(_started_path(study, stage.name))
    previous = recorded.inputs if recorded is not None else (started or {}).get("inputs")
    if previous is None or previous == inputs:
        return
    folders = [folder for folder in stage.folders(study) if folder.exists() and any(folder.iterdir())]
    if not folders:
        return
    target = _free_slot(study.folder.superseded, stage.name)
    for folder in folders:
        destination = target / _relative(study, folder)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(destination))
    _marker_path(study, stage.name).unlink(missing_ok=True)
    options.echo(f"   earlier outputs (other inputs) moved to {target}")


def _free_slot(root: Path, stage: str) -> Path:
    number = 1
    while (root / f"{stage}-{number}").exists():
        number += 1
    return root / f"{stage}-{number}"


# -- the evaluation stages -------------------------------------------------------------------------


def run_eval_stage(study: Study, stage: str, inputs_hash: str, options: RunOptions, server_env: dict[str, str]) -> dict[str, Any]:
    """Run an evaluation stage's eval set: in this process, or as worker processes, then once here to finish it."""
    from opaque_knapsack.study.evalsets import eval_set_id, log_dir, run_definition, served_environment

    set_id = eval_set_id(stage, inputs_hash)
    with served_environment(server_env), _prerequisites(stage):
        if options.workers > 1:
            _run_workers(study, stage, set_id, log_dir(study, stage), options, server_env)
        success, logs, expected = run_definition(study, stage, set_id, display=options.display, limit=options.limit)
    details = _check_logs(stage, success, logs, expected, options)
    _set_aside_stale_logs(study, stage, log_dir(study, stage), logs, options)
    return details


def _set_aside_stale_logs(study: Study, stage: str, folder: Path, logs: list[Any], options: RunOptions) -> None:
    """Move out of the log directory every log that is not the eval set's final one for its task.

    A run killed outright leaves its logs marked started; a worker that
    resumed a task wrote a new log beside the old one. Their finished samples
    now live in the final logs, and a reader of the folder (the reports)
    would count those tasks twice, so they go to superseded/.
    """
    final = {Path(str(log.location).removeprefix("file://")).name for log in logs}
    stale = [path for path in sorted(folder.glob("*.eval")) if path.name not in final]
    if not stale:
        return
    target = _free_slot(study.folder.superseded, f"{stage}-logs")
    target.mkdir(parents=True)
    for path in stale:
        shutil.move(str(path), str(target / path.name))
    options.echo(f"   {len(stale)} logs of interrupted runs (their samples are in the final logs) moved to {target}")


@contextlib.contextmanager
def _prerequisites(stage: str) -> Iterator[None]:
    """Inspect's own refusal to start (a model's missing API key or package) as one line naming the stage."""
    try:
        yield
    except Exception as error:
        if type(error).__name__ != "PrerequisiteError":  # Inspect's error for what a user must provide
            raise
        lines = [re.sub(r"\[/?[a-z ]+\]", "", line).strip() for line in str(error).splitlines()]
        text = ": ".join(line.removeprefix("ERROR: ") for line in lines if line)
        raise StudyError(stage, f"{text} (set what it names, or change the model in the spec)") from None


def _run_workers(study: Study, stage: str, set_id: str, logs: Path, options: RunOptions, server_env: dict[str, str]) -> None:
    from opaque_knapsack.study.workers import capture, pending, run_workers

    env = {**options.env, **server_env}
    manifest = capture(study, stage, env, limit=options.limit)
    items = pending(manifest, logs)
    options.echo(f"   {len(manifest.tasks)} tasks, {len(items)} to run, on {min(options.workers, max(len(items), 1))} worker processes")
    if items:
        progress = lambda done, total: options.status(f"{stage}: {done} of {total} worker processes finished")  # noqa: E731
        run_workers(study, stage, items, options.workers, set_id, env, limit=options.limit, progress=progress)


def _check_logs(stage: str, success: bool, logs: list[Any], expected: int, options: RunOptions) -> dict[str, Any]:
    if len(logs) < expected or any(log.status == "cancelled" for log in logs):
        raise KeyboardInterrupt  # eval_set stopped on Ctrl-C: its logs stay for the next run to resume
    failed = [log for log in logs if log.status != "success"]
    if failed or not success:
        first = failed[0] if failed else logs[0]
        message = first.error.message.strip().splitlines()[-1] if first.error else first.status
        raised = re.search(r"raised (\w+)", message)  # a model call that failed after its retries
        message = f"the model could not be reached: {raised.group(1)}" if raised else message
        raise StudyError(stage, f"{len(failed)} of {len(logs)} tasks did not finish ({message}); re-run to resume",
                         Path(str(first.location).removeprefix("file://")))
    counts = {}
    for log in logs:
        samples = log.results.completed_samples if log.results else 0
        counts[log.eval.task] = samples
        options.echo(f"   {log.eval.task:<56} {log.eval.model:<36} {samples} samples")
    return {"tasks": counts}
