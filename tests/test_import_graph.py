"""The package's import graph, read with ``ast``: the layering DESIGN.md states.

One direction of dependency: ``records`` and the shared leaves at the bottom
(``families.py`` among them: the ``TaskFamily`` interface and the registry,
which names each family as a string), then ``sandboxes``; the generic agents
and scorers (``solvers``, ``scorers``, and the ``scripted`` provider in
``models``) above them; the task families (one package each) above those; the commands that
span areas (``generate``, ``quickstart``, ``evaluate``, ``student``) and
``study`` on top. ``reports`` and ``train`` read logs and import neither the
agents nor any family. Imports inside functions count too (the CLI imports
lazily), so an edge cannot hide in a handler.
"""

from __future__ import annotations

import ast
from pathlib import Path

import opaque_knapsack

PACKAGE = Path(opaque_knapsack.__file__).parent
AREAS = ("knapsack", "guess", "sandboxes", "solvers", "scorers", "models", "train", "reports", "study", "evaluate", "student")


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


def family_packages() -> tuple[str, ...]:
    """The registered families' packages (``opaque_knapsack.knapsack``, ...), from the registry's one line each."""
    from opaque_knapsack.families import FAMILIES

    return tuple(sorted({".".join(reference.split(":")[0].split(".")[:2]) for reference in FAMILIES.values()}))


def forbidden_edges(importers: tuple[str, ...], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> dict:
    """Modules under ``importers`` that import something under ``forbidden`` (and not under ``allowed``)."""
    found = {
        module: sorted(
            name
            for name in imports
            if any(_in(name, f) for f in forbidden) and not any(_in(name, a) for a in allowed)
        )
        for module, imports in edges().items()
        if any(_in(module, i) for i in importers)
    }
    return {module: names for module, names in found.items() if names}


P = "opaque_knapsack."
ABOVE_FAMILIES = tuple(P + name for name in ("generate", "quickstart", "evaluate", "student", "study", "cli"))
GENERIC = tuple(P + name for name in ("records", "logs", "errors", "_cli", "_lazy", "task_options", "families",
                                      "sandboxes", "solvers", "scorers", "models", "reports", "train"))  # fmt: skip


def test_every_registered_family_is_a_package_of_its_own():
    packages = family_packages()
    assert P + "knapsack" in packages and P + "guess" in packages
    for package in packages:
        assert (PACKAGE / package.split(".")[1] / "__init__.py").is_file()


def test_the_generic_parts_never_import_a_family():
    # agents, scorers, runtimes, the scripted provider, reports and export reach a family only through
    # the live episode's TaskFamily (or, by name, the registry)
    assert forbidden_edges(GENERIC, family_packages()) == {}


def test_a_family_imports_no_other_family_and_nothing_above_the_families():
    for package in family_packages():
        others = tuple(p for p in family_packages() if p != package)
        above = (*others, *ABOVE_FAMILIES, P + "reports", P + "train")
        assert forbidden_edges((package,), above) == {}


def test_the_runtimes_sit_below_the_agents():
    above = (P + "solvers", P + "scorers", P + "models", P + "reports", P + "train", P + "families", *ABOVE_FAMILIES)
    assert forbidden_edges((P + "sandboxes",), above) == {}


def test_the_agents_and_scorers_import_nothing_above_them():
    above = (P + "reports", P + "train", *ABOVE_FAMILIES)
    assert forbidden_edges((P + "solvers", P + "scorers"), (*above, P + "models")) == {}
    assert forbidden_edges((P + "models",), above) == {}


def test_reports_and_train_read_logs_and_never_import_agents_runtimes_or_families():
    forbidden = (P + "solvers", P + "scorers", P + "sandboxes", P + "models", P + "families", *ABOVE_FAMILIES)
    assert forbidden_edges((P + "reports", P + "train"), forbidden) == {}


def test_train_and_reports_stay_apart():
    assert forbidden_edges((P + "train",), (P + "reports",)) == {}
    assert forbidden_edges((P + "reports",), (P + "train",)) == {}


def test_the_log_contract_and_the_shared_leaves_import_only_each_other():
    leaves = (P + "records", P + "errors", P + "_cli", P + "_lazy", P + "task_options", P + "families")
    graph = edges()
    for leaf in leaves:
        inside = {name for name in graph[leaf] if _in(name, "opaque_knapsack")}
        assert all(any(_in(name, other) for other in leaves) for name in inside), (leaf, inside)


def test_families_never_import_reports():
    assert forbidden_edges(family_packages(), (P + "reports",)) == {}


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
