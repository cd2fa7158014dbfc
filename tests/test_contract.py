"""The log contract has one home: ``records.py`` (difficulty labels included).

Every module of the package is read with ``ast``: a string literal equal to a
contract name (store key, metadata key, score key, scorer or task name, end
reason) anywhere but ``records.py`` is a copy that a rename would silently
leave behind, and so is a re-typed runtime or difficulty vocabulary (a
``Literal[...]`` of runtime names, or a tuple, list, set or dict that spells
out every runtime or every preset). Docstrings are prose, not code, and are
skipped. What remains is allow-listed below, each with its reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import get_args

import opaque_knapsack
from opaque_knapsack import records
from opaque_knapsack.knapsack.presets import PRESET_NAMES, PRESETS, Preset

PACKAGE = Path(opaque_knapsack.__file__).parent
HOMES = {"records.py"}

# Contract names too common as plain words to scan for: each is written and
# read through its records.py constant, but the same word means other things
# (the training split "train"; the kernel wire's "error" field, Inspect's
# error status).
TOO_COMMON = {
    records.TRAIN_METADATA_KEY: "also the training split's name, argparse dests and condition fields",
    records.EPISODE_ERROR: "also the kernel wire's error field and many unrelated messages",
}
# The condition's metadata keys are also -T option names, report columns and
# Condition fields: they are checked where they key metadata or task arguments
# (``metadata_literals``), not wherever the word occurs.
METADATA_WORDS = {
    records.RUNTIME_METADATA_KEY: "RUNTIME_METADATA_KEY",
    records.DIFFICULTY_METADATA_KEY: "DIFFICULTY_METADATA_KEY",
    records.AGENT_METADATA_KEY: "AGENT_METADATA_KEY",
}


def contract_names() -> dict[str, str]:
    """Literal -> the records.py attribute that is its one home."""
    names = {
        value: name
        for name, value in vars(records).items()
        if name.endswith("_KEY") and isinstance(value, str)
    }
    names.update({key.value: f"ScoreKey.{key.name}" for key in records.ScoreKey})
    names[records.SCORER_NAME] = "SCORER_NAME"
    names[records.TASK_REGISTRY_NAME] = "TASK_REGISTRY_NAME"
    names[records.SCRIPTED_PROVIDER] = "SCRIPTED_PROVIDER"
    names[records.BASE_TRAIN] = "BASE_TRAIN"
    names[records.CODEACT] = "CODEACT"
    names[records.REACT] = "REACT"
    end_reasons = {
        value: name for name, value in vars(records).items() if name.isupper() and value in get_args(records.EndReason)
    }
    names.update(end_reasons)
    return {literal: home for literal, home in names.items() if literal not in TOO_COMMON and literal not in METADATA_WORDS}


# (module under the package, literal) -> why the literal stays
ALLOWED: dict[tuple[str, str], str] = {
    ("__init__.py", records.SCORER_NAME): "the Python attribute the package exports lazily, not a log name",
    ("knapsack/__init__.py", records.SCORER_NAME): "the Python attribute the family package exports lazily",
    ("models/scripted.py", records.FAMILY_METADATA_KEY): "the scripted provider's -M family model argument",
    ("__init__.py", records.CODEACT): "the Python attribute the package exports lazily (the agent's function)",
    ("__init__.py", records.REACT): "the Python attribute the package exports lazily (the agent's function)",
    ("solvers/__init__.py", records.CODEACT): "__all__ lists the Python attribute",
    ("solvers/__init__.py", records.REACT): "__all__ lists the Python attribute",
    ("knapsack/environment.py", records.FINISHED): "the environment's own state field; family is the bottom layer",
    ("knapsack/generator.py", records.FAMILY_METADATA_KEY): "the task file's 'family' field (knapsack/schema.py)",
    ("knapsack/writer.py", records.FAMILY_METADATA_KEY): "the manifest's 'family' field (knapsack/schema.py)",
    ("models/scripted.py", records.ScoreKey.TOOL_CALLS): "Inspect's stop reason 'tool_calls'",
    ("solvers/turns.py", records.ScoreKey.TOOL_CALLS): "Inspect's stop reason 'tool_calls' (a normal ReAct reply)",
    ("train/conversation.py", records.ScoreKey.TOOL_CALLS): "the OpenAI chat message field 'tool_calls'",
    ("solvers/codeact.py", records.ScoreKey.TOOL_CALLS): "a key of the transcript's info event for people reading it",
    ("solvers/codeact.py", records.ScoreKey.INPUT_TOKENS): "a key of the transcript's info event for people reading it",
    ("solvers/codeact.py", records.ScoreKey.OUTPUT_TOKENS): "a key of the transcript's info event for people reading it",
    ("reports/columns.py", records.ScoreKey.INPUT_TOKENS): "Inspect's ModelUsage attribute (the tokens fallback)",
    ("reports/columns.py", records.ScoreKey.OUTPUT_TOKENS): "Inspect's ModelUsage attribute (the tokens fallback)",
    ("reports/columns.py", records.ScoreKey.TOTAL_TOKENS): "Inspect's ModelUsage attribute (the tokens fallback)",
    ("quickstart.py", records.ScoreKey.OPTIMALITY): "a column header people read (the key beside it is ScoreKey)",
    ("quickstart.py", records.ScoreKey.SOLVED): "a column header people read (the key beside it is ScoreKey)",
    ("quickstart.py", records.ScoreKey.STEPS): "a column header people read (the key beside it is ScoreKey)",
    ("reports/results_table.py", records.ScoreKey.SOLVED): "the results table's own column key (CellValues.solved)",
    ("reports/results_table.py", records.ScoreKey.STEPS): "the results table's own column key (CellValues.steps)",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (module, class, function, attribute)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for index, statement in enumerate(body):
            if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)):
                continue
            first = index == 0 and isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            after_assignment = index > 0 and isinstance(body[index - 1], ast.Assign | ast.AnnAssign)
            if first or after_assignment:
                found.add(id(statement.value))
    return found


def contract_literals(source: str, names: Mapping[str, str]) -> list[tuple[int, str]]:
    """(line, literal) of every string literal in code equal to a contract name."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in names
        and id(node) not in docstrings
    )


def _keys_metadata(node: ast.expr) -> bool:
    """The expression is a metadata or task-arguments mapping (``state.metadata``, ``task_args``, ...)."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name.endswith(("metadata", "task_args"))


def metadata_literals(source: str, words: Mapping[str, str]) -> list[tuple[int, str]]:
    """(line, literal) of each word written out where it keys metadata or task arguments:
    ``metadata["runtime"]``, ``task_args.get("agent")``, ``metadata={"difficulty": ...}``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        keys: list[ast.expr | None] = []
        if isinstance(node, ast.Subscript) and _keys_metadata(node.value):
            keys = [node.slice]
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "pop")
            and _keys_metadata(node.func.value) and node.args
        ):
            keys = [node.args[0]]
        elif isinstance(node, ast.keyword) and node.arg is not None and node.arg.endswith("metadata") and isinstance(node.value, ast.Dict):
            keys = list(node.value.keys)
        elif isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value in words for k in node.keys):
            # a dict that holds a metadata key beside another contract key is metadata
            if any(isinstance(k, ast.Name) and k.id.endswith("_KEY") for k in node.keys):
                keys = list(node.keys)
        found.update((key.lineno, key.value) for key in keys if isinstance(key, ast.Constant) and key.value in words)
    return sorted(found)


RUNTIME_CONSTANTS = {"PERSISTENT", "STATELESS"}


def runtime_comparisons(source: str) -> list[int]:
    """Lines that compare something with a runtime's name (``== "persistent"``, ``!= STATELESS``)."""
    names = set(records.RUNTIMES)
    lines = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if any(
            (isinstance(o, ast.Constant) and o.value in names)
            or (isinstance(o, ast.Name) and o.id in RUNTIME_CONSTANTS)
            or (isinstance(o, ast.Attribute) and o.attr in RUNTIME_CONSTANTS)
            for o in operands
        ):
            lines.add(node.lineno)
    return sorted(lines)


def _is_literal_type(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "Literal") or (
        isinstance(node, ast.Attribute) and node.attr == "Literal"
    )


def _strings(nodes: list[ast.expr | None]) -> set[str]:
    return {n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def vocabulary_copies(source: str, vocabulary: tuple[str, ...]) -> list[int]:
    """Lines that re-type a vocabulary: a ``Literal[...]`` holding any of its
    names, or a tuple, list, set or dict (keys) that spells out all of them."""
    tree = ast.parse(source)
    everything = set(vocabulary)
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_literal_type(node.value):
            inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if _strings(list(inner)) & everything:
                lines.add(node.lineno)
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            if everything <= _strings(list(node.elts)):
                lines.add(node.lineno)
        elif isinstance(node, ast.Dict) and everything <= _strings(list(node.keys)):
            lines.add(node.lineno)
    return sorted(lines)


def package_modules() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text(encoding="utf-8")


# --- the scanners themselves can fail ---------------------------------------------------------


def test_the_literal_scanner_finds_a_copy_and_skips_docstrings():
    names = {"knapsack:steps": "STEPS_KEY", "optimality": "ScoreKey.OPTIMALITY"}
    source = '''
"""Module docstring naming knapsack:steps."""
STEPS = "knapsack:steps"
"""An attribute docstring: optimality."""

def read(store):
    """Reads optimality."""
    return store.get("knapsack:steps"), {"optimality": 1.0}, "optimality rate"
'''
    assert contract_literals(source, names) == [(3, "knapsack:steps"), (8, "knapsack:steps"), (8, "optimality")]
    assert contract_literals('x = "unrelated"', names) == []


def test_the_vocabulary_scanner_finds_retyped_runtimes():
    runtimes = ("persistent", "stateless")
    assert vocabulary_copies('Semantics = Literal["persistent", "stateless"]', runtimes) == [1]
    assert vocabulary_copies('x: typing.Literal["stateless"] = "stateless"', runtimes) == [1]
    assert vocabulary_copies('CHOICES = ["stateless", "persistent", "react"]', runtimes) == [1]
    assert vocabulary_copies('COLOURS = {"persistent": 1, "stateless": 2}', runtimes) == [1]
    assert vocabulary_copies("Semantics = Runtime\nCHOICES = get_args(Runtime)", runtimes) == []
    # comparing one value with one name is checked by the type, not a copy of the vocabulary
    assert vocabulary_copies('if runtime == "persistent": pass', runtimes) == []


# --- the package ----------------------------------------------------------------------------------


def test_no_module_retypes_a_contract_name():
    names = contract_names()
    found = {
        (module, literal): f"line {line}: use records.{names[literal]}"
        for module, source in package_modules()
        if module not in HOMES
        for line, literal in contract_literals(source, names)
    }
    unexplained = {key: where for key, where in found.items() if key not in ALLOWED}
    assert unexplained == {}
    stale = sorted(set(ALLOWED) - set(found))
    assert stale == [], "allow-list entries that no longer occur: remove them"


def test_the_contract_covers_the_names_logs_are_read_by():
    names = contract_names()
    assert {records.STEPS_KEY, records.END_REASON_KEY, records.RUNTIME_KEY, records.AGENT_KEY} <= set(names)
    assert {records.SCORER_NAME, records.TASK_REGISTRY_NAME, records.FINISHED, records.TURN_LIMIT} <= set(names)
    assert set(records.SCORE_KEYS) <= set(names)
    assert {records.INSTANCE_METADATA_KEY, records.END_REASON_METADATA_KEY, records.FAMILY_METADATA_KEY} <= set(names)
    assert set(records.AGENTS) | {records.SCRIPTED_PROVIDER, records.BASE_TRAIN} <= set(names)


def test_the_metadata_scanner_finds_keys_and_leaves_other_words():
    source = '''
state.metadata["runtime"] = name
args = log.eval.task_args.get("agent", "codeact")
task = Task(metadata={"difficulty": d}, name="runtime")
choice("runtime", runtime, RUNTIMES)
row = {"runtime": r, "label": x}
meta = {TRAIN_METADATA_KEY: t, "runtime": r}
'''
    assert metadata_literals(source, METADATA_WORDS) == [(2, "runtime"), (3, "agent"), (4, "difficulty"), (7, "runtime")]


def test_no_module_writes_out_a_metadata_key():
    found = {
        module: lines
        for module, source in package_modules()
        if module not in HOMES and (lines := metadata_literals(source, METADATA_WORDS))
    }
    assert found == {}


def test_the_comparison_scanner_finds_runtime_names():
    assert runtime_comparisons('if kernel.semantics == "persistent": pass') == [1]
    assert runtime_comparisons("ok = c.train == c.runtime == records.STATELESS") == [1]
    assert runtime_comparisons('ok = x != PERSISTENT\ny = mode == "drop"') == [1]
    assert runtime_comparisons("if semantics.persists_state: pass") == []


def test_no_module_compares_runtime_names():
    # a runtime is asked (RuntimeSemantics.persists_state, .keeps_files), never compared by name
    found = {
        module: lines
        for module, source in package_modules()
        if module not in HOMES and (lines := runtime_comparisons(source))
    }
    assert found == {}


def test_no_module_retypes_the_runtime_vocabulary():
    homes = HOMES | {"sandboxes/_kernel.py"}  # stdlib only, run as a file: it cannot import records
    found = {
        module: lines
        for module, source in package_modules()
        if module not in homes and (lines := vocabulary_copies(source, records.RUNTIMES))
    }
    assert found == {}


def test_no_module_retypes_the_difficulty_presets():
    found = {
        module: lines
        for module, source in package_modules()
        # knapsack/presets.py keys its PRESETS by the names records.Difficulty lists
        if module not in HOMES | {"knapsack/presets.py"} and (lines := vocabulary_copies(source, PRESET_NAMES))
    }
    assert found == {}


def test_the_vocabularies_agree_with_what_they_name():
    from opaque_knapsack.knapsack.scorer import knapsack_scorer

    assert records.RUNTIMES == get_args(records.Runtime) == (records.PERSISTENT, records.STATELESS)
    assert records.AGENTS == get_args(records.Agent) == (records.CODEACT, records.REACT)
    assert tuple(PRESETS) == PRESET_NAMES == get_args(Preset) == records.DIFFICULTIES
    assert records.SCORE_KEYS == tuple(key.value for key in records.ScoreKey)
    assert knapsack_scorer.__name__ == records.SCORER_NAME  # Inspect names the score by the function
    assert records.TASK_REGISTRY_NAME.endswith(f"/{records.TASK_NAME}")
