"""The `opaque-knapsack` command.

Each area of the package contributes its own subcommands through a
``register(subparsers)`` function in its ``cli`` module; this file only wires
them together, so adding a command never touches the others. Heavy imports
stay inside each command's handler so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from opaque_knapsack.errors import CommandError

__all__ = ["CommandError", "build_parser", "main"]

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = (
    "opaque_knapsack.study.cli",
    "opaque_knapsack.generate",
    "opaque_knapsack.knapsack.cli",
    "opaque_knapsack.quickstart",
    "opaque_knapsack.reports.cli",
    "opaque_knapsack.train.cli",
    "opaque_knapsack.evaluate.cli",
    "opaque_knapsack.student.cli",
)

# Commands whose work survives an interruption (atomic writes, Inspect's
# eval_set): Ctrl-C tells the user that running them again picks up.
RESUMABLE_COMMANDS = frozenset({"generate", "quickstart", "matrix", "study", "student-smoke"})


class _VersionAction(argparse.Action):
    """``--version``: the installed version, read only when asked for (not to build the parser)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        from opaque_knapsack import __version__

        print(f"{parser.prog} {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opaque-knapsack",
        description=(
            "Opaque Knapsack: generate tasks, run agents in persistent or stateless "
            "Python runtimes through Inspect AI, export traces, train and serve "
            "students, and report the 2x2 comparison."
        ),
    )
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue  # that area has no commands yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CommandError as error:
        print(f"opaque-knapsack {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.filename is None:
            raise
        reason = error.strerror or type(error).__name__
        if isinstance(error, FileExistsError):  # mkdir met a file where a folder should be
            reason = "exists and is not a folder"
        print(f"opaque-knapsack {args.command}: error: {error.filename}: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        resume = "; re-run to resume" if args.command in RESUMABLE_COMMANDS else ""
        print(f"opaque-knapsack {args.command}: interrupted{resume}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
