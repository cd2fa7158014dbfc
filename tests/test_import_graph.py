"""The package's import graph, read with ``ast``: the layering the design asks for.

Imports inside functions count too (the CLI imports lazily), so an edge cannot
hide in a handler.
"""

from __future__ import annotations

import ast
from pathlib import Path

import opaque_knapsack

PACKAGE = Path(opaque_knapsack.__file__).parent
AREAS = ("family", "sandboxes", "solvers", "scorers", "inspect_tasks", "models", "train", "reports", "study")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it, as absolute dotted names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def edges() -> dict[str, set[str]]:
    return {module_name(path): imported_modules(path) for path in PACKAGE.rglob("*.py")}


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_graph_is_read_from_every_module():
    graph = edges()
    assert "opaque_knapsack.quickstart" in graph
    assert "opaque_knapsack.errors" in graph["opaque_knapsack.quickstart"]
    # the reader sees lazy imports inside functions (the quickstart's reports)
    assert any(_in(m, "opaque_knapsack.reports") for m in graph["opaque_knapsack.quickstart"])


def test_inspect_tasks_never_import_reports():
    bad = {
        module: sorted(m for m in imports if _in(m, "opaque_knapsack.reports"))
        for module, imports in edges().items()
        if _in(module, "opaque_knapsack.inspect_tasks")
    }
    assert not {module: found for module, found in bad.items() if found}


def test_no_area_imports_the_top_level_cli():
    bad = {
        module: sorted(m for m in imports if _in(m, "opaque_knapsack.cli"))
        for module, imports in edges().items()
        if any(_in(module, f"opaque_knapsack.{area}") for area in AREAS)
    }
    assert not {module: found for module, found in bad.items() if found}


def test_command_error_lives_in_a_leaf_module():
    imports = imported_modules(PACKAGE / "errors.py")
    assert not any(_in(m, "opaque_knapsack") for m in imports)
    from opaque_knapsack.cli import CommandError as FromCli
    from opaque_knapsack.errors import CommandError

    assert FromCli is CommandError


def test_every_module_the_package_imports_exists():
    # A lazy import inside a handler fails only when that handler runs: a module
    # moved elsewhere must not leave a stale path behind in some rarely run command.
    known = set(edges())
    stale = {
        module: sorted(
            name
            for name in imports
            if _in(name, "opaque_knapsack") and name not in known and name.rpartition(".")[0] not in known
        )
        for module, imports in edges().items()
    }
    assert {module: names for module, names in stale.items() if names} == {}


# What any module may import: the log contract and the leaf helpers every area shares.
SHARED = ("opaque_knapsack.records", "opaque_knapsack.errors", "opaque_knapsack._cli", "opaque_knapsack._lazy")


def test_the_study_reaches_the_other_areas_through_its_adapters_only():
    # the family and the student tooling are moving; only study/adapters.py should need to follow them
    bad = {
        module: sorted(
            name
            for name in imports
            if _in(name, "opaque_knapsack")
            and name not in ("opaque_knapsack", "opaque_knapsack.__version__")
            and not _in(name, "opaque_knapsack.study")
            and not any(_in(name, shared) for shared in SHARED)
        )
        for module, imports in edges().items()
        if _in(module, "opaque_knapsack.study") and module != "opaque_knapsack.study.adapters"
    }
    assert {module: names for module, names in bad.items() if names} == {}
    assert any(_in(m, "opaque_knapsack.train") for m in edges()["opaque_knapsack.study.adapters"])


def test_nothing_below_the_study_imports_it():
    bad = {
        module: sorted(m for m in imports if _in(m, "opaque_knapsack.study"))
        for module, imports in edges().items()
        if not _in(module, "opaque_knapsack.study") and module != "opaque_knapsack.cli"
    }
    assert {module: found for module, found in bad.items() if found} == {}


def test_no_module_imports_a_private_inspect_module():
    # Inspect's public API only: a private module may move in any release
    private = {
        module: sorted(name for name in imports if name.startswith("inspect_ai._"))
        for module, imports in edges().items()
    }
    assert {module: names for module, names in private.items() if names} == {}


def test_the_episode_limits_are_a_leaf():
    # the defaults' one home: the sandboxes' config, the agents and the task all read it
    assert not any(_in(m, "opaque_knapsack") for m in imported_modules(PACKAGE / "limits.py"))


def _cycles(modules: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that reach each other through imports (lazy ones included)."""
    def resolve(name: str) -> str | None:
        for candidate in (name, name.rpartition(".")[0]):
            if candidate in modules:
                return candidate
        return None

    reach = {m: {r for n in imports if (r := resolve(n)) and r != m} for m, imports in modules.items()}
    for middle in reach:  # transitive closure: the graphs are small
        for start in reach:
            if middle in reach[start]:
                reach[start] |= reach[middle]
    found = {tuple(sorted({m, *(o for o in reach[m] if m in reach[o])})) for m in reach if m in reach[m]}
    return [list(group) for group in sorted(found)]


def test_the_reports_modules_import_no_cycle():
    reports = {m: imports for m, imports in edges().items() if _in(m, "opaque_knapsack.reports") and m != "opaque_knapsack.reports"}
    assert "opaque_knapsack.reports.columns" in reports
    assert _cycles(reports) == []
    assert _cycles({"a": {"b"}, "b": {"c.x"}, "c": {"a"}}) == [["a", "b", "c"]]  # the reader finds one
