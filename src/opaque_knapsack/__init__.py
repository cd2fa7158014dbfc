"""opaque-knapsack: how interpreter persistence shapes what agents learn.

An Inspect AI harness for the Opaque Knapsack task family with persistent and
stateless Python runtimes.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("opaque-knapsack")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
