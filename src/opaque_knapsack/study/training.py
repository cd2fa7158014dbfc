"""The train stage: Axolotl configs and one LoRA adapter per trained runtime.

Axolotl runs from its own environment (it pins its own torch, transformers
and tokenizers): the managed one the study creates under the envs cache, a
given one, or whatever `axolotl` is on PATH. With `base_model: tiny` the
base model is built first, by that environment's Python (the harness itself
needs no torch). With `checks: true` the stage also checks what Axolotl did:
the loss falls, and only assistant turns carry loss.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opaque_knapsack.study import adapters
from opaque_knapsack.study.context import RunOptions, Study, StudyError
from opaque_knapsack.study.spec import MANAGED, TINY_BASE

__all__ = ["train_students", "run_logged"]

STAGE = "train"


def train_students(study: Study, options: RunOptions) -> dict[str, Any]:
    trained = study.spec.trained()
    if not trained:
        options.echo("   no student to train (the matrix evaluates no trained runtime)")
        return {}
    executable = _axolotl(study)
    details: dict[str, Any] = {"axolotl": executable}
    if study.spec.students.base_model == TINY_BASE:
        details["tiny_model"] = _tiny_model(study, Path(executable).parent / "python", options)
    for label in trained:
        details[label] = _train_one(study, label, executable, options)
    return details


def _axolotl(study: Study) -> str:
    given = study.spec.students.axolotl
    if given and given != MANAGED and not study.path(given).exists():
        raise StudyError(STAGE, f"students.axolotl: {study.path(given)} does not exist; give Axolotl's virtual environment "
                         "(or executable), or `managed` to have it created on demand")
    try:
        if given == MANAGED:
            return str(adapters.managed_env("student-train", study.folder.stage_log("environments")) / "bin" / "axolotl")
        return adapters.axolotl_executable(str(study.path(given)) if given else None)
    except adapters.tool_errors() as error:
        raise StudyError(STAGE, f"students.axolotl: {error}") from None


def _tiny_model(study: Study, python: Path, options: RunOptions) -> dict[str, Any]:
    traces = [study.folder.trace_file(runtime) for runtime in study.spec.teacher.runtimes]
    try:
        summary = adapters.build_tiny_model(python, study.folder.tiny_model, traces, study.spec.students.tiny_seed)
    except adapters.tool_errors() as error:
        raise StudyError(STAGE, f"students.base_model tiny: {error}") from None
    options.echo(f"   tiny base model: {summary['parameters']:,} parameters, vocabulary {summary['vocab_size']}")
    return {key: summary[key] for key in ("parameters", "vocab_size", "weights_sha256")}


def _train_one(study: Study, label: str, executable: str, options: RunOptions) -> dict[str, Any]:
    section = study.spec.students
    adapter = study.folder.adapter(label)
    overrides = {
        "output_dir": str(adapter),
        "dataset_prepared_path": str(study.folder.prepared(label)),
        **section.overrides,
    }
    config = study.folder.config(label)
    try:
        values = adapters.axolotl_config(
            study.folder.trace_file(label), label, study.base_model(), section.profile, overrides, config
        )
    except adapters.tool_errors() as error:
        raise StudyError(STAGE, f"students: {error}") from None
    if adapters.needs_gpu_here(config):
        raise StudyError(
            STAGE,
            f"students.profile {section.profile}: {config} needs a CUDA GPU (QLoRA, bf16, flash attention) and none is "
            "visible here; run the study on a GPU machine, or use the cpu-tiny profile",
        )
    log = study.folder.stage_log(f"train-{label}")
    run_logged([executable, "train", str(config)], log, cwd=study.folder.root, env=adapters.tool_env(executable))
    if not (adapter / "adapter_config.json").is_file():
        raise StudyError(STAGE, f"Axolotl wrote no adapter_config.json in {adapter}", log)
    result: dict[str, Any] = {"config": str(config), "epochs": values.get("num_epochs"), "max_steps": values.get("max_steps")}
    if section.checks:
        result.update(_checks(study, label, executable, log))
        options.echo(
            f"   {label}: loss {result['loss_first']:.3f} -> {result['loss_last']:.3f} over {result['losses']} logged "
            f"steps; {result['rows_checked']} prepared rows trained on assistant turns only"
        )
    else:
        options.echo(f"   {label}: adapter in {adapter}")
    return result


def _checks(study: Study, label: str, executable: str, train_log: Path) -> dict[str, Any]:
    """Loss falls; labels only inside assistant turns (read in the training environment, checked here)."""
    rows = study.folder.prepared(label).with_suffix(".rows.jsonl")
    python = Path(executable).parent / "python"
    base = Path(study.base_model())
    log = study.folder.stage_log(f"prepared-{label}")
    run_logged(adapters.prepared_rows_command(python, study.folder.prepared(label), base, rows), log, cwd=study.folder.root,
               env=adapters.tool_env(executable))
    try:
        return adapters.check_training(train_log.read_text(encoding="utf-8", errors="replace"), rows, train_log)
    except adapters.tool_errors() as error:
        raise StudyError(STAGE, f"{label}: {error}", train_log) from None


def run_logged(command: Sequence[str], log: Path, *, cwd: Path, env: dict[str, str]) -> None:
    """Run a tool with its output in LOG; StudyError naming the stage, the command and the log when it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as stream:
        stream.write(f"$ {' '.join(command)}\n")
        stream.flush()
        try:
            code = subprocess.run(list(command), cwd=cwd, env=env, stdout=stream, stderr=subprocess.STDOUT, check=False).returncode
        except OSError as error:
            raise StudyError(STAGE, f"cannot run {command[0]} ({error.strerror})", log) from None
    if code != 0:
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        raise StudyError(STAGE, f"`{' '.join(command[:3])}` exited with status {code}: {lines[-1] if lines else ''}", log)
