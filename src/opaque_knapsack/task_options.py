"""Checking the ``-T`` options of a task family's task, with one-line errors.

A bad option is the user's mistake, not the harness's. Inspect's command
line is a click application, and click prints a ``ClickException`` as its
message alone, without a traceback, and exits 1; so ``TaskOptionError`` is
one (public API of click, which Inspect's CLI is built on), and a
``ValueError`` for code that calls the task from Python.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import IO, Any, TypeVar

import click


class TaskOptionError(click.ClickException, ValueError):
    """A ``-T`` option with a bad value: names the option, the value and what it accepts."""

    def __init__(self, name: str, value: object, expected: str, task: str | None = None) -> None:
        self.option, self.value, self.expected, self.task = name, value, expected, task
        message = f"{task + ' task: ' if task else ''}-T {name}={value!r} {expected}"
        super().__init__(message)
        self.message = message  # what Inspect prints

    def __str__(self) -> str:
        return self.message

    def show(self, file: IO[Any] | None = None) -> None:
        """What ``inspect eval`` prints: the one line, on stderr."""
        click.echo(self.message, file=file, err=True)


TaskFunction = TypeVar("TaskFunction", bound=Callable[..., object])


def checked_options(task: str) -> Callable[[TaskFunction], TaskFunction]:
    """A task function whose ``TaskOptionError``s name the task (``knapsack task: -T num=0 ...``).

    Put it under ``@task``: the signature Inspect reads stays the function's own.
    """

    def decorate(function: TaskFunction) -> TaskFunction:
        @functools.wraps(function)
        def checked(*args: object, **kwargs: object) -> object:
            try:
                return function(*args, **kwargs)
            except TaskOptionError as error:
                if error.task is not None:
                    raise
                raise TaskOptionError(error.option, error.value, error.expected, task) from None

        return checked  # type: ignore[return-value]

    return decorate


def choice(name: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise TaskOptionError(name, value, f"is not one of: {', '.join(choices)}")
    return value


def whole_number(name: str, value: object, minimum: int) -> int:
    """An int, also from the text of one (``-T num=10`` may reach us as a string)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value)
    if number is None:
        raise TaskOptionError(name, value, f"is not a whole number (give an integer >= {minimum})")
    if number < minimum:
        raise TaskOptionError(name, value, f"must be at least {minimum}")
    return number


def positive_seconds(name: str, value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TaskOptionError(name, value, "is not a number of seconds") from None
    if not seconds > 0:
        raise TaskOptionError(name, value, "must be a positive number of seconds")
    return seconds


def flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise TaskOptionError(name, value, "is not true or false")
