"""CONTRIBUTING.md's "Add a task family" section, followed as it stands: the guess family is exactly
the files it lists (``tests/reports/test_add_a_report.py`` follows "Add a report")."""

from __future__ import annotations

import re
from pathlib import Path

import opaque_knapsack
from opaque_knapsack.families import FAMILIES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(opaque_knapsack.__file__).parent
CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    return CONTRIBUTING.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def _python_files(folder: Path) -> set[str]:
    return {path.relative_to(ROOT).as_posix() for path in folder.rglob("*.py") if "__pycache__" not in path.parts}


def test_the_guess_family_is_exactly_the_files_the_section_lists() -> None:
    text = section("Add a task family")
    [listing] = blocks(text, "text")
    listed = {line.strip().replace("<family>", "guess") for line in listing.splitlines() if line.strip()}
    assert all((ROOT / path).is_file() for path in listed)
    assert _python_files(ROOT / "src" / "opaque_knapsack" / "guess") | _python_files(ROOT / "tests" / "guess") == listed


def test_the_registry_line_is_the_one_the_section_shows() -> None:
    [line] = blocks(section("Add a task family"), "python")
    expected = line.strip().replace("<family>", "guess").replace("<FAMILY>", "GUESS")
    source = (PACKAGE / "families.py").read_text(encoding="utf-8")
    assert expected in [line.strip() for line in source.splitlines()]
    assert expected == f'"guess": "{FAMILIES["guess"]}",'  # the registry holds what the line says
