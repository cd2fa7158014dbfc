"""The training area's subcommands: export, axolotl-config, train and serve, one module each.

Handlers import their modules lazily so ``opaque-knapsack --help`` stays
instant and a missing optional extra only matters to the command needing it.
The evaluation matrix is ``opaque_knapsack.evaluate``'s, the tiny student
model ``opaque_knapsack.student``'s.
"""

from __future__ import annotations

from typing import Any

from opaque_knapsack.train import axolotl_cli, export_cli, launch_cli


def register(subparsers: Any) -> None:
    export_cli.register(subparsers)
    axolotl_cli.register(subparsers)
    launch_cli.register(subparsers)
