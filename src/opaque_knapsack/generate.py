"""``opaque-knapsack generate``: any registered task family's task files.

A top-level module because it spans the families: it finds the family by
name in the registry and asks its ``TaskGenerator`` for the files.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from opaque_knapsack._cli import add_command, progress_bar, require_at_least, user_errors
from opaque_knapsack.families import DEFAULT_FAMILY, FAMILIES


def register(subparsers: Any) -> None:
    generate = add_command(
        subparsers,
        "generate",
        run_generate,
        help="generate task files of a task family",
        description=(
            "Generate task files under DIR/tasks/<family>/ and DIR/manifest.json. Instance i uses "
            "seed SEED_START + i; the same family, preset, index and seed give byte-identical files "
            "on any machine and with any number of workers. Writes are atomic and the command is "
            "resumable: files that already hold the right bytes are kept, others are (re)written."
        ),
    )
    generate.add_argument(
        "--family",
        default=DEFAULT_FAMILY,
        help=f"task family: {', '.join(FAMILIES)} (default: %(default)s)",
    )
    generate.add_argument(
        "--preset",
        default=None,
        help="difficulty preset of the family (knapsack: the paper's easy, medium, hard; default: the "
        "family's first); not with --config",
    )
    generate.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="custom generator config, where the family has one (knapsack: a JSON object with "
        "GeneratorConfig's fields n_items, weight, value, classes or num_classes, "
        "num_allowed_classes, capacity_ratio, and optionally max_attempts, strict, ...)",
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


def run_generate(args: argparse.Namespace) -> int:
    import time

    from opaque_knapsack.errors import CommandError
    from opaque_knapsack.families import TaskRequest, UnknownFamily, task_family

    if args.preset is not None and args.config is not None:
        raise CommandError("give --preset or --config, not both")
    require_at_least(args, 0, "num", "seed_start")
    require_at_least(args, 1, "workers")
    with user_errors(UnknownFamily, ValueError):
        generator = task_family(args.family).task_generator()
    if args.preset is not None and args.preset not in generator.presets:
        raise CommandError(
            f"--preset {args.preset!r} is not a preset of the {args.family} family "
            f"(choices: {', '.join(generator.presets)})"
        )
    started = time.perf_counter()
    with progress_bar("generating", quiet=args.quiet, total=args.num) as bar, user_errors(*generator.errors):
        request = TaskRequest(
            args.num, args.seed_start, args.preset, args.config, args.workers, args.run_name, bar.advance
        )
        written = generator.write(Path(args.out), request)
    counts = written.counts
    manifest = f"; manifest {written.manifest}" if written.manifest else ""
    print(
        f"{args.num} {written.label} task files in {written.folder} "
        f"({counts['written']} written, {counts['kept']} kept, {counts['rewritten']} rewritten) "
        f"in {time.perf_counter() - started:.2f} s{manifest}"
    )
    return 0
