"""Errors and warnings the reports raise about their inputs."""

from __future__ import annotations


class ReportError(ValueError):
    """Input the reports cannot use: names the file or field at fault."""


class ReportWarning(UserWarning):
    """Input the reports can use, with a caveat the reader should see (e.g. a cancelled eval)."""
