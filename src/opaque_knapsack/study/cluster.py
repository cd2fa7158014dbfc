"""An evaluation stage run from outside `study run`: its definition as a command, and worker commands for a cluster.

`study eval STAGE SPEC` is the definition every worker executes (Inspect's
protocol reads its capture or selection from the environment). `study
workers STAGE SPEC` writes one such command per unfinished task, for a
Slurm array (examples/slurm/) or a Kubernetes Job against a shared log
directory; afterwards `study run` finds the tasks finished and marks the
stage done. Both need the stages before it done: their outputs are what
the eval set is built from, and their hashes name the eval set.
"""

from __future__ import annotations

import os
from pathlib import Path

from opaque_knapsack.study import adapters
from opaque_knapsack.study.context import Study, StudyError
from opaque_knapsack.study.evalsets import SERVER_URL_ENV, eval_set_id, run_definition
from opaque_knapsack.study.runner import ready_inputs

__all__ = ["run_stage_definition", "write_worker_commands"]


def _needs_server(study: Study, stage: str) -> None:
    if stage == "matrix" and study.spec.served() and not os.environ.get(SERVER_URL_ENV):
        raise StudyError(
            stage,
            f"the students must be served for the matrix's workers: start the server (opaque-knapsack serve ...) and "
            f"set {SERVER_URL_ENV}, or let `study run --workers N` serve them",
        )


def run_stage_definition(study: Study, stage: str, *, display: str = "none", limit: int | None = None) -> bool:
    """Run STAGE's eval set as Inspect's protocol asks (whole, captured, or a worker's selection)."""
    _needs_server(study, stage)
    set_id = eval_set_id(stage, ready_inputs(study, stage))
    try:
        success, _, _ = run_definition(study, stage, set_id, display=display, limit=limit)
    except adapters.tool_errors() as error:
        raise StudyError(stage, str(error)) from None
    return success


def write_worker_commands(study: Study, stage: str) -> tuple[Path, int]:
    """Capture STAGE, then write a selection and a command per unfinished task; (commands file, count)."""
    from opaque_knapsack.study.evalsets import log_dir
    from opaque_knapsack.study.workers import capture, pending, write_cluster_commands

    _needs_server(study, stage)
    set_id = eval_set_id(stage, ready_inputs(study, stage))
    manifest = capture(study, stage, dict(os.environ))
    items = pending(manifest, log_dir(study, stage))
    return write_cluster_commands(study, stage, items, set_id), len(items)
