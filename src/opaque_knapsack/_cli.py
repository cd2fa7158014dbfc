"""What every area's commands share: declaring a subcommand, and a user's bad input as one line.

Beside ``errors`` (the only module of the package it imports), so that each
area's ``cli`` uses it without importing the top-level ``cli``. Pydantic is
imported inside the function that needs it, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from opaque_knapsack.errors import CommandError

T = TypeVar("T")

Handler = Callable[[argparse.Namespace], int]


def add_command(subparsers: Any, name: str, handler: Handler, *, help: str, description: str) -> argparse.ArgumentParser:
    """A subcommand whose parsed arguments go to ``handler`` (the top-level ``cli`` calls it)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(handler=handler)
    return parser


@contextlib.contextmanager
def user_errors(*errors: type[Exception], prefix: str = "") -> Iterator[None]:
    """Turn the errors a library raises for bad input into one line for the user, without a traceback."""
    try:
        yield
    except errors as error:
        raise CommandError(f"{prefix}{error}") from None


@dataclasses.dataclass
class ProgressBar:
    """One task's bar: ``advance`` by a count of finished items, or ``update`` to done of total."""

    progress: Any
    task: Any

    def advance(self, count: int) -> None:
        self.progress.advance(self.task, count)

    def update(self, done: int, total: int) -> None:
        self.progress.update(self.task, completed=done, total=total)


@contextlib.contextmanager
def progress_bar(label: str, *, quiet: bool, total: int | None = None) -> Iterator[ProgressBar]:
    """A rich progress bar on stderr, shown only on a terminal: stdout stays the command's result."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal, transient=True) as progress:
        yield ProgressBar(progress, progress.add_task(label, total=total))


def add_repeatable(parser: argparse.ArgumentParser, flag: str, metavar: str, help: str, **options: Any) -> None:
    """A flag given once per value, collected into a list (empty when not given); its help says so."""
    parser.add_argument(flag, action="append", default=[], metavar=metavar, help=f"{help} Repeatable.", **options)


def require_at_least(args: argparse.Namespace, minimum: int, *names: str) -> None:
    """Refuse a count below ``minimum`` before any work, naming the flag as the user typed it."""
    for name in names:
        value = getattr(args, name)
        if value < minimum:
            raise CommandError(f"{flag(name)} must be at least {minimum}, got {value}")


def flag(field: str, flags: Mapping[str, str] | None = None) -> str:
    """The command-line flag that sets a field: its name with dashes unless ``flags`` says otherwise."""
    return (flags or {}).get(field, "--" + field.replace("_", "-"))


def first_problem(error: Any, flags: Mapping[str, str] | None = None) -> str:
    """The first problem of a pydantic ``ValidationError``, named by the flag that set the field."""
    item = error.errors()[0]
    location = [str(part) for part in item["loc"]]
    message: str = item["msg"]
    if not location:
        return message
    value = item.get("input")
    shown = f" {value!r}" if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
    return f"{flag(location[0], flags)}{shown}: {message}"


def options_from(
    kind: Callable[..., T], args: argparse.Namespace, *, flags: Mapping[str, str] | None = None, **values: Any
) -> T:
    """Build a command's options (a pydantic model or a dataclass) from the flags named like its fields.

    ``values`` gives the fields whose flag is not the field itself (parsed lists,
    negated switches); a value the model refuses is a one-line error naming the flag.
    """
    from pydantic import ValidationError

    taken = {name: getattr(args, name) for name in _field_names(kind) if hasattr(args, name)}
    try:
        return kind(**{**taken, **values})
    except ValidationError as error:
        raise CommandError(first_problem(error, flags)) from None


def _field_names(kind: Any) -> list[str]:
    if dataclasses.is_dataclass(kind):
        return [field.name for field in dataclasses.fields(kind)]
    return list(kind.model_fields)
