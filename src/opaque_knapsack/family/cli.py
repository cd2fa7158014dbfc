"""`opaque-knapsack generate` and `opaque-knapsack validate`."""

from __future__ import annotations

import argparse
from typing import Any

from opaque_knapsack._cli import add_command, progress_bar, require_at_least, user_errors
from opaque_knapsack.family.names import PRESET_NAMES


def register(subparsers: Any) -> None:
    generate = add_command(
        subparsers,
        "generate",
        _generate,
        help="generate Opaque Knapsack task files",
        description=(
            "Generate task files DIR/tasks/knapsack/knapsack-<10-digit index>.json and "
            "DIR/manifest.json. Instance i uses seed SEED_START + i; the same preset, "
            "index and seed give byte-identical files on any machine and with any number "
            "of workers. Writes are atomic and the command is resumable: files that "
            "already hold the right bytes are kept, others are (re)written."
        ),
    )
    generate.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        default=None,
        help="difficulty preset from the paper (default: easy); not with --config",
    )
    generate.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="custom generator config: a JSON object with GeneratorConfig's fields "
        "(n_items, weight, value, classes or num_classes, num_allowed_classes, "
        "capacity_ratio, and optionally max_attempts, strict, ...)",
    )
    generate.add_argument("--num", type=int, default=100, help="number of instances (default: 100)")
    generate.add_argument(
        "--seed-start",
        type=int,
        default=0,
        help="seed of instance 0; instance i gets SEED_START + i (default: 0)",
    )
    generate.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    generate.add_argument(
        "--workers", type=int, default=1, help="worker processes (default: 1, in this process)"
    )
    generate.add_argument(
        "--run-name", default=None, metavar="NAME", help="label stored in every task file and the manifest"
    )
    generate.add_argument("--quiet", action="store_true", help="no progress bar")

    validate = add_command(
        subparsers,
        "validate",
        _validate,
        help="check task files against the schema and re-solve them",
        description=(
            "Check every task file under DIR_OR_FILE (a file, a folder of files, or a tasks root "
            "with tasks/knapsack/*.json) against the schema, and re-solve each instance to "
            "confirm its reference is optimal. Prints one line per bad file (path, field, "
            "problem) and a summary; exit status 1 if any file is bad."
        ),
    )
    validate.add_argument(
        "path", metavar="DIR_OR_FILE", help="task file, folder of task files, or tasks root"
    )
    validate.add_argument(
        "--skip-optimum", action="store_true", help="check the schema only; do not re-solve"
    )


def _generate(args: argparse.Namespace) -> int:
    import time

    from opaque_knapsack.errors import CommandError
    from opaque_knapsack.family.generator import GenerationError
    from opaque_knapsack.family.presets import ConfigError, resolve_config
    from opaque_knapsack.family.writer import generate_tasks

    if args.preset is not None and args.config is not None:
        raise CommandError("give --preset or --config, not both")
    require_at_least(args, 0, "num", "seed_start")
    require_at_least(args, 1, "workers")
    with user_errors(ConfigError):
        config = resolve_config(args.preset, args.config)
    started = time.perf_counter()
    with progress_bar("generating", quiet=args.quiet, total=args.num) as bar, user_errors(GenerationError):
        report = generate_tasks(
            config,
            args.out,
            args.num,
            args.seed_start,
            workers=args.workers,
            run_name=args.run_name,
            on_progress=bar.advance,
            settings={"config_file": args.config},
        )
    counts = report.counts
    print(
        f"{args.num} {config.name} task files in {report.out / 'tasks' / 'knapsack'} "
        f"({counts['written']} written, {counts['kept']} kept, {counts['rewritten']} rewritten) "
        f"in {time.perf_counter() - started:.2f} s; manifest {report.manifest_path}"
    )
    return 0


def _validate(args: argparse.Namespace) -> int:
    from opaque_knapsack.family.loader import task_files
    from opaque_knapsack.family.schema import TaskFileError, read_instance
    from opaque_knapsack.family.solver import SolverMismatchError, verify_optimum

    with user_errors(TaskFileError):
        files = task_files(args.path)
    bad = 0
    seen: dict[str, str] = {}
    for file in files:
        try:
            instance = read_instance(file)
            if not args.skip_optimum:
                verify_optimum(instance, str(file))
            if instance.task_id in seen:
                other = seen[instance.task_id]
                raise TaskFileError(file, "task_id", f"{instance.task_id!r} is also the task id of {other}")
            seen[instance.task_id] = str(file)
        except TaskFileError as error:
            bad += 1
            print(error)
        except SolverMismatchError as error:
            bad += 1
            print(f"{file}: (solver): {error}")
    checked = "schema" if args.skip_optimum else "schema and optimum"
    print(f"{len(files)} task files checked ({checked}): {len(files) - bad} ok, {bad} bad")
    return 1 if bad else 0
