"""Running the `opaque-knapsack` command in-process, as the CLI tests of every area do."""

from __future__ import annotations

import pytest

from opaque_knapsack.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of one command (arguments taken as strings, paths welcome)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
