"""`opaque-knapsack validate`: the knapsack family's own command (``generate`` is every family's)."""

from __future__ import annotations

import argparse
from typing import Any

from opaque_knapsack._cli import add_command, user_errors


def register(subparsers: Any) -> None:
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


def _validate(args: argparse.Namespace) -> int:
    from opaque_knapsack.knapsack.loader import task_files
    from opaque_knapsack.knapsack.optimum import SolverMismatchError, verify_optimum
    from opaque_knapsack.knapsack.schema import TaskFileError, read_instance

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
