"""The study's one door to the rest of the package: every stage reaches tasks, the agents' task,
export, Axolotl, vLLM and the reports through a function here.

Kept in one module because the areas move (the knapsack family into its own
folder, the student tooling beside the study): a move then changes the
imports of this file and of nothing else in ``study/``. Imports are made
inside the functions, so loading the study's command line stays instant and
a missing optional extra matters only to the stage that needs it. The
preset vocabulary is imported at the top: the spec's fields are typed by it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opaque_knapsack.family.names import DEFAULT_PRESET, PRESET_NAMES, Preset

__all__ = [
    "DEFAULT_PRESET",
    "PAPER_EVAL_PRESETS",
    "PRESET_NAMES",
    "Preset",
]

PAPER_EVAL_PRESETS: tuple[Preset, ...] = (DEFAULT_PRESET, "medium")
"""The paper's evaluation sets: 100 easy and 100 medium instances (the paper calls medium "Hard")."""


def tool_errors() -> tuple[type[Exception], ...]:
    """The errors the package's tools raise for bad input or a missing tool: a stage reports them in one line."""
    from opaque_knapsack.family import ConfigError as GeneratorConfigError
    from opaque_knapsack.family import TaskFileError
    from opaque_knapsack.inspect_tasks.options import TaskOptionError
    from opaque_knapsack.reports.errors import ReportError
    from opaque_knapsack.train.axolotl_config import ConfigError
    from opaque_knapsack.train.export import ExportError
    from opaque_knapsack.train.launch import LaunchError
    from opaque_knapsack.train.matrix import MatrixError
    from opaque_knapsack.train.student_smoke import SmokeError
    from opaque_knapsack.train.tiny_model import TinyModelError

    return (
        GeneratorConfigError, TaskFileError, TaskOptionError, ReportError, ConfigError, ExportError,
        LaunchError, MatrixError, SmokeError, TinyModelError,
    )  # fmt: skip


# -- tasks -------------------------------------------------------------------------------------------


def generate_task_set(preset: str, num: int, seed_start: int, out: Path) -> None:
    """Write NUM instances of PRESET under OUT (resumes: files already there are kept)."""
    from opaque_knapsack.family import PRESETS
    from opaque_knapsack.family.writer import generate_tasks

    generate_tasks(PRESETS[preset], out, num, seed_start, run_name=f"study-{out.name}")


def task_files(folder: Path) -> list[Path]:
    """The task files of a folder (a tasks root, a folder of files, or one file)."""
    from opaque_knapsack.family import task_files as found

    return [Path(path) for path in found(folder)]


def task_set_label(folder: Path) -> str:
    """The difficulty the files of FOLDER are, from their manifest or the files themselves."""
    from opaque_knapsack.family import load_tasks
    from opaque_knapsack.family.labels import tasks_label

    return str(tasks_label(folder, load_tasks(folder)))


# -- evaluation: the knapsack task, the teachers' and the matrix's tasks ---------------------------


def task_option_names() -> list[str]:
    """The -T options opaque_knapsack/knapsack takes (what a spec's task_options may set)."""
    import inspect

    from opaque_knapsack.inspect_tasks.knapsack_task import knapsack

    return [name for name in inspect.signature(knapsack).parameters if name != "solver"]


def teacher_task(tasks: Path, runtime: str, model: str, options: dict[str, Any]) -> Any:
    """One teacher run: the knapsack task on the teacher set, in RUNTIME, carrying its model and limits."""
    from inspect_ai import task_with
    from inspect_ai.model import GenerateConfig

    from opaque_knapsack.inspect_tasks.knapsack_task import knapsack
    from opaque_knapsack.records import TASK_NAME

    task = knapsack(tasks=str(tasks), runtime=runtime, agent=options["agent"], **options["task_options"])
    return task_with(
        task,
        name=f"{TASK_NAME}-teacher-{runtime}",
        model=model,
        # the teachers run on the provider's sampling defaults unless the spec names some
        config=GenerateConfig(**options["sampling"]),
        time_limit=options["time_limit"],
    )


def matrix_tasks(
    students: dict[str, str], runtimes: Sequence[str], folders: Sequence[Path], agent: str,
    task_options: dict[str, Any], time_limit: int | None,
) -> list[Any]:
    """One task per student x runtime x difficulty, named and tagged as `opaque-knapsack matrix` names them."""
    from inspect_ai import task_with

    from opaque_knapsack.train.matrix import MatrixSpec, build_tasks

    spec = MatrixSpec(
        students={label: _fresh_model(name) for label, name in students.items()},
        runtimes=list(runtimes),  # type: ignore[arg-type]
        tasks=[str(folder) for folder in folders],
        agent=agent,  # type: ignore[arg-type]
        task_options=task_options,
        log_dir="unused",
    )
    return [task_with(task, time_limit=time_limit) for task in build_tasks(spec)]


def _fresh_model(name: str) -> Any:
    """A new Inspect model for NAME, knowing nothing of an earlier run in this process.

    Inspect's vLLM provider remembers, for the life of the process, the server
    it first reached for a base model; a study serves its students anew on
    each run (on another port when the spec leaves the port free). Closing
    a vLLM model resets that memory (it stops no server it did not start),
    so the students are looked for at the server this run started.
    """
    from inspect_ai.model import get_model

    model = get_model(name, memoize=False)
    if name.startswith("vllm/"):
        model.api.close()
    return model


# -- export -------------------------------------------------------------------------------------------


def export_runtime(logs: Path, out: Path, runtime: str, options: dict[str, Any]) -> dict[str, Any]:
    """The teachers' episodes of one runtime as training conversations; returns the export's summary."""
    from opaque_knapsack.train.export import ExportOptions, export_traces

    summary = export_traces([logs], out, ExportOptions(runtime=runtime, **options))  # type: ignore[arg-type]
    return summary.model_dump(mode="json", exclude={"options"})


def export_fields() -> list[str]:
    """The option names the export accepts (for a spec's `export.options`)."""
    from opaque_knapsack.train.export import ExportOptions

    return list(ExportOptions.model_fields)


def trace_siblings(out: Path) -> list[Path]:
    """The files one export writes for OUT: train, validation (when any) and summary."""
    from opaque_knapsack.train.export import sibling_paths

    return [path for path in sibling_paths(out).values() if Path(path).exists()]


# -- training -----------------------------------------------------------------------------------------


def axolotl_config(traces: Path, runtime: str, base_model: str, profile: str, overrides: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write the Axolotl config for one student; returns its values (for the plan and the checks)."""
    from opaque_knapsack.train.axolotl_config import build_axolotl_config, config_dict, write_axolotl_config

    config, unknown = build_axolotl_config(
        traces, runtime, base_model, profile=profile, overrides=overrides, allow_unknown=False  # type: ignore[arg-type]
    )
    write_axolotl_config(config, out, unknown)
    return config_dict(config, unknown)


def profile_values(profile: str) -> dict[str, Any]:
    """The Axolotl settings a profile starts from (the paper's values, with the profile's changes)."""
    from opaque_knapsack.train.axolotl_config import PROFILES, AxolotlConfig

    defaults = {name: field.default for name, field in AxolotlConfig.model_fields.items()}
    return {**defaults, **PROFILES[profile]}


def managed_env(name: str, log: Path) -> Path:
    """The student-train or student-serve environment, created now if it is missing (10-15 minutes, once)."""
    from opaque_knapsack.train.envs import ENVS, ensure_env

    return ensure_env(ENVS[name], log=log).path


def axolotl_executable(given: str | None) -> str:
    from opaque_knapsack.train.launch import resolve_axolotl

    return resolve_axolotl(given)


def needs_gpu_here(config: Path) -> bool:
    """The config asks for CUDA-only pieces and this machine has no CUDA GPU."""
    from opaque_knapsack.train.launch import config_needs_gpu, cuda_available

    return config_needs_gpu(config) and not cuda_available()


def tool_env(executable: str | None) -> dict[str, str]:
    """Environment variables for Axolotl and vLLM: offline, their own environment's PATH first."""
    from opaque_knapsack.train.launch import offline_env

    return offline_env(executable)


def build_tiny_model(python: Path, out: Path, traces: Sequence[Path], seed: int) -> dict[str, Any]:
    """Build the tiny base model with the training environment's Python (it has torch; the harness needs none)."""
    from opaque_knapsack.train.tiny_model import TinyModelSpec, build_elsewhere

    return build_elsewhere(str(python), out, traces, TinyModelSpec(seed=seed))


def prepared_rows_command(python: Path, prepared: Path, base_model: Path, out: Path, limit: int = 50) -> list[str]:
    """Dump Axolotl's prepared rows and the chat markers' token ids, in the training environment."""
    from opaque_knapsack.train.student_smoke import DUMP_PREPARED

    return [str(python), "-c", DUMP_PREPARED, str(prepared), str(base_model), str(out), str(limit)]


def check_training(log_text: str, rows_file: Path | None, log: Path) -> dict[str, Any]:
    """The cpu-tiny checks of what Axolotl did: the loss fell; only assistant turns carry loss."""
    from opaque_knapsack.train.student_smoke import check_loss_falls, check_prepared_rows, loss_curve

    curve = loss_curve(log_text)
    check_loss_falls(curve, log)
    checked = check_prepared_rows(rows_file) if rows_file is not None else 0
    return {"loss_first": curve[0], "loss_last": curve[-1], "losses": len(curve), "rows_checked": checked}


# -- serving ------------------------------------------------------------------------------------------


def vllm_python(given: str | None) -> str:
    from opaque_knapsack.train.launch import resolve_vllm_python

    return resolve_vllm_python(given)


def vllm_build(python: str) -> Any:
    """Which vLLM PYTHON has (None: none); the CPU build needs no GPU."""
    from opaque_knapsack.train.launch import detect_vllm_build

    return detect_vllm_build(python)


def cuda_here() -> bool:
    from opaque_knapsack.train.launch import cuda_available

    return cuda_available()


def serve_spec(**fields: Any) -> Any:
    from opaque_knapsack.train.launch import ServeSpec

    return ServeSpec(**fields)


def check_served_inputs(spec: Any) -> None:
    """Before a minute-long start: the adapters are adapters, their rank fits, the port is free."""
    from opaque_knapsack.train.launch import check_adapters, check_base_model, check_port_free

    check_base_model(spec.base_model)
    check_adapters(spec.loras, spec.max_lora_rank)
    check_port_free(spec.host, spec.port)


def server_command(spec: Any, build: Any) -> list[str]:
    from opaque_knapsack.train.launch import serve_command

    return serve_command(spec, build)


def server_process(command: list[str], env: dict[str, str], log: Path) -> Any:
    from opaque_knapsack.train.server import ServerProcess

    return ServerProcess(command, env=env, log_path=log)


# -- reading logs and reporting -----------------------------------------------------------------------


def episodes(logs: Path) -> Any:
    """One row per episode of the logs under LOGS (pandas), with every score as a column."""
    from opaque_knapsack.reports import episodes_df

    return episodes_df([logs])


def write_reports(logs: Path, out: Path) -> dict[str, Path]:
    """Stats, paired comparisons, the results table and the figures (the `report` command's set)."""
    import warnings

    from opaque_knapsack.reports.all_reports import write_reports as write_all
    from opaque_knapsack.reports.errors import ReportWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReportWarning)
        return write_all(logs, out)


def python_executable() -> str:
    return sys.executable
