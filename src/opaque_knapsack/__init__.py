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

Names are imported lazily so ``import opaque_knapsack`` stays cheap.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from opaque_knapsack._lazy import lazy_attributes

try:
    __version__ = version("opaque-knapsack")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

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


__getattr__ = lazy_attributes(__name__, _EXPORTS)
