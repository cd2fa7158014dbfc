"""CONTRIBUTING.md's "Add a report" section, followed as it stands: its two code blocks, put where it
says (a module of the reports, a command beside theirs), make a working ``median`` command."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from opaque_knapsack.errors import CommandError

ROOT = Path(__file__).resolve().parents[2]


def report_blocks() -> list[str]:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text.split("\n## Add a report\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def _median_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The section's two blocks, put where it says: a module of the reports, and a command beside theirs."""
    module_block, command_block = report_blocks()
    path = tmp_path / "median.py"
    path.write_text(module_block)
    spec = importlib.util.spec_from_file_location("opaque_knapsack.reports.median", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "opaque_knapsack.reports.median", module)
    spec.loader.exec_module(module)
    import opaque_knapsack.reports.cli as reports_cli

    namespace = dict(vars(reports_cli))
    exec(compile(command_block, "CONTRIBUTING.md", "exec"), namespace)
    parser = argparse.ArgumentParser(prog="opaque-knapsack")
    namespace["register_median"](parser.add_subparsers(dest="command"))
    return parser


def test_the_report_section_makes_a_working_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], matrix_dir: Path
) -> None:
    from opaque_knapsack.reports import load_runs

    parser = _median_command(tmp_path, monkeypatch)
    args = parser.parse_args(["median", str(matrix_dir), "--metric", "steps"])
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    runs = load_runs([matrix_dir])
    assert lines[0].split() == ["condition", "median", "steps", "episodes"] and len(lines) == 1 + len(runs) == 5
    for line, run in zip(lines[1:], runs, strict=True):
        assert line.startswith(run.label)
        assert line.split()[-2:] == [f"{run.values('steps').median():.3f}", str(run.n_episodes)]
    args = parser.parse_args(["median", str(matrix_dir), "--metric", "nope"])
    with pytest.raises(CommandError, match=r"^--metric 'nope': the logs hold no such score$"):
        args.handler(args)
