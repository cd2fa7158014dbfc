"""The kernel process (``_kernel.py``, standard library only) and the harness speak one protocol.

``_wire`` holds the names and formats both import; the pydantic models of
``protocol.py`` must match what ``_kernel.py`` sends and reads, which this test
checks by reading ``_kernel.py`` with ``ast`` (it cannot import the package).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from pydantic import BaseModel

from opaque_knapsack.sandboxes import _wire, kernel, launcher, protocol

KERNEL_SOURCE = ast.parse(Path(launcher.KERNEL_SCRIPT).read_text())

SENT_BY_TYPE: dict[str, type[BaseModel]] = {
    _wire.TOOL_CALL: protocol.ToolCallMessage,
    _wire.RESULT: protocol.ResultMessage,
    _wire.READY: protocol.ReadyMessage,
    _wire.EXIT: protocol.ExitMessage,
}


def _literal(model: type[BaseModel], field: str) -> tuple[object, ...]:
    return get_args(model.model_fields[field].annotation)


def _wire_value(node: ast.expr) -> object:
    """A constant, or ``_wire.NAME`` resolved through the harness's import of the same module."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "_wire":
        return getattr(_wire, node.attr)
    raise AssertionError(f"line {node.lineno}: message type is neither a constant nor a _wire name")


def test_message_names_are_the_wire_names() -> None:
    for type_name, model in SENT_BY_TYPE.items():
        assert _literal(model, "type") == (type_name,), model.__name__
    assert protocol.StepRequest.model_fields["op"].default == _wire.STEP
    assert protocol.ToolReply.model_fields["op"].default == _wire.TOOL_RESULT
    assert protocol.HEADER is _wire.FRAME_HEADER


def test_every_message_the_kernel_sends_has_the_fields_its_model_expects() -> None:
    sent = [
        node for node in ast.walk(KERNEL_SOURCE)
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "type" for k in node.keys)
    ]
    seen = set()
    for node in sent:
        keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
        type_node = node.values[[k.value if isinstance(k, ast.Constant) else None for k in node.keys].index("type")]
        if isinstance(type_node, ast.Name):  # an exception's class name: the error of a result
            model: type[BaseModel] = protocol.StepError
        else:
            model = SENT_BY_TYPE[_wire_value(type_node)]  # type: ignore[index]
        seen.add(model)
        fields = set(model.model_fields)
        required = {name for name, info in model.model_fields.items() if info.is_required()}
        assert keys <= fields, f"line {node.lineno}: {sorted(keys - fields)} not in {model.__name__}"
        assert required <= keys, f"line {node.lineno}: {model.__name__} needs {sorted(required - keys)}"
    assert seen == {*SENT_BY_TYPE.values(), protocol.StepError}


def _keys_read(function: str, variable: str) -> set[str]:
    """String keys ``variable[...]`` / ``variable.get(...)`` reads in ``_kernel.py``'s ``function``."""
    [body] = [n for n in ast.walk(KERNEL_SOURCE) if isinstance(n, ast.FunctionDef) and n.name == function]
    keys = set()
    for node in ast.walk(body):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == variable:
            if isinstance(node.slice, ast.Constant):
                keys.add(node.slice.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == variable
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            keys.add(node.args[0].value)
    return keys


def test_every_field_the_kernel_reads_is_one_the_harness_sends() -> None:
    for function, variable, model in [
        ("run_step", "msg", protocol.StepRequest),
        ("run_step", "tool", protocol.ToolSpec),
        ("call", "reply", protocol.ToolReply),
    ]:
        keys = _keys_read(function, variable)
        assert keys, (function, variable)  # the reading is found at all
        assert keys <= set(model.model_fields), f"{function}: {sorted(keys - set(model.model_fields))}"


def test_names_are_capped_by_one_rule_on_both_sides() -> None:
    names = ["alpha", "beta", "gamma", "delta"]
    assert _wire.cap_names(names, 100) == (names, 0)
    assert _wire.cap_names(names, 14) == (["alpha", "beta"], 2)
    assert kernel._cap_globals(names, 14) == _wire.cap_names(names, 14)
    assert kernel._cap_globals(None, 14) == ([], 0)
    # the kernel uses the same function (no copy of the rule of its own)
    called = {
        node.func.id for node in ast.walk(KERNEL_SOURCE) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert "_cap_names" in called and "_bounded_globals" not in called
