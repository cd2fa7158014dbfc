"""Errors and warnings the reports raise about their inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class ReportError(ValueError):
    """Input the reports cannot use: names the file or field at fault."""


class ReportWarning(UserWarning):
    """Input the reports can use, with a caveat the reader should see (e.g. a cancelled eval)."""


def validation_message(source: str, error: ValidationError, what: str) -> str:
    """One line naming every bad field of a pydantic ``ValidationError`` in ``source`` (a ``what``)."""
    problems = []
    for item in error.errors():
        where = _error_location(item["loc"])
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown field '{where}'")
        elif item["type"] == "missing":
            problems.append(f"missing field '{where}'")
        else:
            problems.append(f"field '{where}': {item['msg']}")
    return f"{source}: invalid {what}: " + "; ".join(problems)


def _error_location(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"
