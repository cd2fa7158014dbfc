"""The kernel's public face: a control part and a step part, and nothing private used from outside."""

from __future__ import annotations

import ast
from pathlib import Path

import opaque_knapsack
from opaque_knapsack.records import SEMANTICS
from opaque_knapsack.sandboxes import Kernel, RuntimeConfig
from opaque_knapsack.sandboxes.control import KernelControl
from opaque_knapsack.sandboxes.step_channel import StepChannel

PACKAGE = Path(opaque_knapsack.__file__).parent
KERNEL_MODULES = {"kernel", "control", "step_channel"}  # the kernel's own parts may share private names


def _private_uses(path: Path) -> list[str]:
    """Underscore names imported from the kernel's modules, and ``<...kernel...>._name`` accesses."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1] in KERNEL_MODULES:
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else owner.id if isinstance(owner, ast.Name) else ""
            if "kernel" in name.lower() and name != "_kernel":
                found.append(f"line {node.lineno}: {name}.{node.attr}")
    return found


def test_modules_outside_the_kernel_use_only_its_public_api() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "sandboxes" and path.stem in KERNEL_MODULES:
            continue
        uses = _private_uses(path)
        if uses:
            offenders[str(path.relative_to(PACKAGE))] = uses
    assert offenders == {}


async def test_a_kernel_is_its_control_channel_and_its_step_channel() -> None:
    kernel = Kernel(SEMANTICS["persistent"], RuntimeConfig())
    try:
        assert isinstance(kernel.control, KernelControl) and isinstance(kernel.steps, StepChannel)
        assert kernel.control.workdir == kernel.control.workdir and kernel.control.pid is None  # nothing started yet
        assert kernel.control.confinement_cfg()["rlimits"]["RLIMIT_AS"] == RuntimeConfig().memory_mb * 1024 * 1024
    finally:
        await kernel.close()
    assert not Path(kernel.control.workdir).exists()
