"""opaque-knapsack: how interpreter persistence shapes what agents learn.

An Inspect AI harness for the Opaque Knapsack task family (and any other
family, one folder each: ``opaque_knapsack.knapsack``, ``opaque_knapsack.guess``)
with persistent and stateless Python runtimes. The public Python API, for
people who bring their own solver:

- ``opaque_knapsack.knapsack.knapsack``: the Inspect task (``opaque_knapsack/knapsack``;
  the package ``opaque_knapsack.knapsack`` is the whole family);
- ``codeact`` and ``react``: the two agents;
- ``knapsack_tools()``: list_items, inspect, take_item and finish as Inspect
  tools bound to the current sample's hidden environment;
- ``knapsack_runtime()``: the current sample's Python runtime with those tools
  bound, to run code blocks in;
- ``load_tasks``: read task files.

Names are imported lazily so ``import opaque_knapsack`` stays cheap; so is
``__version__`` (reading the installed metadata costs more than the command
line's parsers).
"""

from __future__ import annotations

from typing import Any

from opaque_knapsack._lazy import lazy_attributes

_EXPORTS = {
    "codeact": "opaque_knapsack.solvers.codeact",
    "react": "opaque_knapsack.solvers.react",
    "knapsack_tools": "opaque_knapsack.knapsack.tools",
    "knapsack_runtime": "opaque_knapsack.knapsack.runtime_handle",
    "KnapsackRuntime": "opaque_knapsack.knapsack.runtime_handle",
    "knapsack_scorer": "opaque_knapsack.knapsack.scorer",
    "load_tasks": "opaque_knapsack.knapsack.loader",
    "TaskInstance": "opaque_knapsack.knapsack.schema",
    "KnapsackEnvironment": "opaque_knapsack.knapsack.environment",
}

__all__ = ["__version__", *_EXPORTS]


_exported = lazy_attributes(__name__, _EXPORTS)


def __getattr__(name: str) -> Any:
    if name != "__version__":
        return _exported(name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("opaque-knapsack")
    except PackageNotFoundError:  # running from a source tree without install
        found = "0.0.0"
    globals()["__version__"] = found
    return found
