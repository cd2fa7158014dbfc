"""Checking the ``-T`` options of a task family's task, with one-line errors.

A bad option is the user's mistake, not the harness's: Inspect prints a
``PrerequisiteError``'s message alone, without the exception group and its
250-line traceback, and exits 1. Inspect exports no public name for that
class (0.3.x keeps it in ``inspect_ai._util.error``), so it is imported here,
in one place, with a plain ``ValueError`` base when it is not there; the test
of this module fails if Inspect moves it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TypeVar

try:  # no public export; see the module docstring
    from inspect_ai._util.error import PrerequisiteError as _PrintedWithoutTraceback
except ImportError:  # pragma: no cover - a future Inspect without it
    _PrintedWithoutTraceback = ValueError  # type: ignore[assignment,misc]


class TaskOptionError(_PrintedWithoutTraceback, ValueError):  # type: ignore[misc,valid-type]
    """A ``-T`` option with a bad value: names the option, the value and what it accepts."""

    def __init__(self, name: str, value: object, expected: str, task: str | None = None) -> None:
        self.option, self.value, self.expected, self.task = name, value, expected, task
        message = f"{task + ' task: ' if task else ''}-T {name}={value!r} {expected}"
        super().__init__(message)
        self.message = message  # what Inspect prints

    def __str__(self) -> str:
        return self.message


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
