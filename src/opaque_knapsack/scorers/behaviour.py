"""Behaviour metrics of an episode's code, from Python's ``ast``.

Each step's code block is reduced to the module-level names it *reads before
binding* and the names it *binds*, in execution order. Across steps that gives
the study's three behaviour signatures:

- a carried reference is a name that step t reads, that the same block did not
  bind before reading it, that is neither a builtin nor a tool, and that an
  earlier step bound;
- state utilization counts the carried references the interpreter actually
  served: the name was bound in the interpreter when the step started, as the
  runtime reports it (never read from error text). A stateless runtime starts
  every step empty, so it serves none;
- the re-import rate is the share of steps after the first whose code imports a
  module an earlier step already imported;
- the context symbol lifespan is the mean distance, in turns, from a carried
  reference back to the turn that last bound the name.

``tool_call_sites`` is the paper's static count of tool calls, by the paper's
own text rule (see ``tool_call_sites``): the one figure here that is read with
a regular expression, on purpose, so it can be set beside the paper's.
``ast_tool_call_sites`` is the same idea read with ``ast`` (plain calls of a
tool by name in code that parses); the exact count of calls the runtime made
is recorded separately.

Function bodies, lambdas and comprehensions are their own scopes: the free
names they use count as reads of the enclosing step when they are defined,
since a definition that closes over an earlier step's name depends on it.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass(frozen=True)
class BlockNames:
    """Names one code block reads before binding, binds, and imports."""

    reads: tuple[str, ...]  # in first-read order, each once
    binds: frozenset[str]
    imports: frozenset[str]  # top-level module names
    parsed: bool = True


@dataclass(frozen=True)
class StepCode:
    """One executed step: its turn number, code, and what the interpreter held at its start."""

    turn: int
    code: str
    bound_at_start: frozenset[str] | None = None
    """Names bound in the interpreter when the step started (the runtime's
    report); None when unknown, which serves nothing."""


@dataclass
class BehaviourMetrics:
    carried_references: int = 0
    state_utilization: int = 0
    reimport_rate: float = 0.0
    symbol_lifespan: float = 0.0
    carried: list[tuple[int, str, int]] = field(default_factory=list)  # (turn, name, bound_turn)


def _target_names(node: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]


class _ScopeFreeNames(ast.NodeVisitor):
    """Free names of a nested scope (function, lambda, comprehension)."""

    def __init__(self) -> None:
        self.loads: list[str] = []
        self.local: set[str] = set()
        self.globals: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loads.append(node.id)
        else:
            self.local.add(node.id)

    def visit_Global(self, node: ast.Global) -> None:
        self.globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.globals.update(node.names)

    def visit_arg(self, node: ast.arg) -> None:
        self.local.add(node.arg)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.local.add(node.name)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.local.add(node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        inner = _ScopeFreeNames()
        inner.visit(node.args)
        for statement in node.body:
            inner.visit(statement)
        self.loads.extend(inner.free())

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.local.add(node.name)
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            self.local.add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import  # type: ignore[assignment]

    def free(self) -> list[str]:
        return [name for name in self.loads if name not in self.local or name in self.globals]


def _nested_free_names(node: ast.AST) -> list[str]:
    """Free names of a lambda/comprehension/function expression."""
    scope = _ScopeFreeNames()
    if isinstance(node, ast.Lambda):
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                scope.visit(default)
        inner = _ScopeFreeNames()
        inner.visit(node.args)
        inner.visit(node.body)
        return scope.loads + inner.free()
    # comprehension: the first iterable is evaluated in the enclosing scope
    generators = node.generators  # type: ignore[attr-defined]
    outer = _ScopeFreeNames()
    outer.visit(generators[0].iter)
    inner = _ScopeFreeNames()
    for index, generator in enumerate(generators):
        inner.visit(generator.target)
        if index:
            inner.visit(generator.iter)
        for condition in generator.ifs:
            inner.visit(condition)
    for part in ("elt", "key", "value"):
        if hasattr(node, part):
            inner.visit(getattr(node, part))
    return outer.loads + inner.free()


class _ModuleWalker:
    """Walks module-level statements in execution order."""

    def __init__(self) -> None:
        self.reads: dict[str, None] = {}  # ordered set
        self.bound: set[str] = set()
        self.imports: set[str] = set()

    def read_expression(self, node: ast.AST | None) -> None:
        if node is None:
            return
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, ast.Name):
                if isinstance(current.ctx, ast.Load):
                    self._read(current.id)
                elif isinstance(current.ctx, ast.Store):
                    self.bound.add(current.id)  # walrus at module level
                continue
            if isinstance(current, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                for name in _nested_free_names(current):
                    self._read(name)
                continue
            stack.extend(reversed(list(ast.iter_child_nodes(current))))

    def _read(self, name: str) -> None:
        if name not in self.bound and name not in self.reads:
            self.reads[name] = None

    def bind_target(self, target: ast.AST) -> None:
        # subscripts/attributes in a target read their base (x[0] = 1 reads x)
        for node in ast.walk(target):
            if isinstance(node, (ast.Subscript, ast.Attribute)):
                self.read_expression(node.value)
                if isinstance(node, ast.Subscript):
                    self.read_expression(node.slice)
        self.bound.update(_target_names(target))

    def statements(self, body: Iterable[ast.stmt]) -> None:
        for statement in body:
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:  # noqa: C901 - one case per statement kind
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope = _ScopeFreeNames()
            scope.visit(node)
            for name in scope.free():
                self._read(name)
            self.bound.add(node.name)
        elif isinstance(node, ast.Assign):
            self.read_expression(node.value)
            for target in node.targets:
                self.bind_target(target)
        elif isinstance(node, ast.AnnAssign):
            self.read_expression(node.value)
            self.bind_target(node.target)
        elif isinstance(node, ast.AugAssign):
            self.read_expression(node.value)
            if isinstance(node.target, ast.Name):
                self._read(node.target.id)
            self.bind_target(node.target)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.read_expression(node.iter)
            self.bind_target(node.target)
            self.statements(node.body)
            self.statements(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.read_expression(item.context_expr)
                if item.optional_vars is not None:
                    self.bind_target(item.optional_vars)
            self.statements(node.body)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if isinstance(node, ast.Import):
                    self.imports.add(alias.name.split(".")[0])
                    self.bound.add((alias.asname or alias.name).split(".")[0])
                else:
                    if node.module and not node.level:
                        self.imports.add(node.module.split(".")[0])
                    if alias.name != "*":
                        self.bound.add(alias.asname or alias.name)
        elif isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            self.statements(node.body)
            for handler in node.handlers:
                self.read_expression(handler.type)
                if handler.name:
                    self.bound.add(handler.name)
                self.statements(handler.body)
            self.statements(node.orelse)
            self.statements(node.finalbody)
        elif isinstance(node, (ast.If, ast.While)):
            self.read_expression(node.test)
            self.statements(node.body)
            self.statements(node.orelse)
        elif isinstance(node, ast.Match):
            self.read_expression(node.subject)
            for case in node.cases:
                self.bound.update(
                    n for p in ast.walk(case.pattern) for n in _pattern_names(p)
                )
                self.read_expression(case.guard)
                self.statements(case.body)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self.read_expression(target)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            pass  # no effect at module level
        else:  # Expr, Return, Raise, Assert, Pass, Break, Continue, TypeAlias
            for child in ast.iter_child_nodes(node):
                self.read_expression(child)


def _pattern_names(pattern: ast.AST) -> list[str]:
    names = [getattr(pattern, "name", None), getattr(pattern, "rest", None)]
    return [n for n in names if isinstance(n, str)]


@functools.lru_cache(maxsize=4096)
def block_names(code: str) -> BlockNames:
    """Reads-before-binding, bindings and imports of one code block.

    Cached: agents often send the same block in many episodes.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return BlockNames(reads=(), binds=frozenset(), imports=frozenset(), parsed=False)
    walker = _ModuleWalker()
    walker.statements(tree.body)
    return BlockNames(
        reads=tuple(walker.reads), binds=frozenset(walker.bound), imports=frozenset(walker.imports)
    )


def behaviour_metrics(steps: Sequence[StepCode], tool_names: Iterable[str] = ()) -> BehaviourMetrics:
    """The three behaviour metrics of one episode's executed steps, in turn order."""
    excluded = BUILTIN_NAMES | set(tool_names)
    last_bound: dict[str, int] = {}
    imported: set[str] = set()
    reimport_steps = 0
    metrics = BehaviourMetrics()
    for index, step in enumerate(steps):
        names = block_names(step.code)
        for name in names.reads:
            if name in excluded or name not in last_bound:
                continue
            metrics.carried.append((step.turn, name, last_bound[name]))
            if step.bound_at_start is not None and name in step.bound_at_start:
                metrics.state_utilization += 1
        if index > 0 and names.imports & imported:
            reimport_steps += 1
        imported |= names.imports
        for name in names.binds:
            last_bound[name] = step.turn
    metrics.carried_references = len(metrics.carried)
    if len(steps) > 1:
        metrics.reimport_rate = reimport_steps / (len(steps) - 1)
    if metrics.carried:
        metrics.symbol_lifespan = sum(t - b for t, _, b in metrics.carried) / len(metrics.carried)
    return metrics


@functools.lru_cache(maxsize=256)
def _tool_call_pattern(tool_names: frozenset[str]) -> re.Pattern[str] | None:
    if not tool_names:
        return None
    names = "|".join(re.escape(name) for name in sorted(tool_names))
    return re.compile(rf"\b(?:{names})\s*\(")


@functools.lru_cache(maxsize=4096)
def tool_call_sites(code: str, tool_names: frozenset[str]) -> int:
    r"""The paper's figure: a tool name followed by optional whitespace and ``(``, anywhere in the text.

    Deliberately a regular expression over the code text, not ``ast`` as every
    other behaviour figure is, because this is the figure the paper's trace
    statistics report and it is kept to be set beside theirs. So method calls
    (``env.inspect(``), occurrences in strings, comments and docstrings, a
    ``def finish():`` line, a call split as ``finish\n()`` and code that does not
    parse all count; a call in a loop counts once. The name must be a whole
    word (``\binspect\s*\(``): ``my_inspect(`` does not count, a preceding
    ``.`` does not stop a match.
    """
    pattern = _tool_call_pattern(tool_names)
    return len(pattern.findall(code)) if pattern is not None else 0


@functools.lru_cache(maxsize=4096)
def ast_tool_call_sites(code: str, tool_names: frozenset[str]) -> int:
    """Calls of a tool by its plain name in the parsed code (0 for code that does not parse).

    What ``tool_call_sites`` means to count, read with ``ast``: no strings,
    comments, definitions or method calls of the same name.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return 0
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in tool_names
    )
