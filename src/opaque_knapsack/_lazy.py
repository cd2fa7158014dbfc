"""Attributes of a package loaded on first use, so importing it (and the CLI) stays instant.

A leaf: it imports nothing of the package, so every ``__init__`` may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) when ``name`` is first read."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(module), name)

    return __getattr__


def exports_of(package: str, names_by_module: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """``{name: module path}`` for ``lazy_attributes``, from ``{module of package: its names}``."""
    return {name: f"{package}.{module}" for module, names in names_by_module.items() for name in names}
