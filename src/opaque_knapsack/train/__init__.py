"""Training and serving: export traces, Axolotl configs, train/serve launchers, the eval matrix.

Reads Inspect logs and never imports the solvers. Nothing here imports the
``train`` or ``serve`` extras (axolotl, peft, bitsandbytes, transformers,
vllm): training and serving run as subprocesses, and Axolotl's schema is only
imported, lazily, to validate a config when it is installed.
"""

from opaque_knapsack.train.axolotl_config import (
    AxolotlConfig,
    AxolotlDataset,
    ConfigError,
    build_axolotl_config,
    validate_with_axolotl,
    write_axolotl_config,
)
from opaque_knapsack.train.export import ExportError, ExportOptions, ExportSummary, export_traces, split_of
from opaque_knapsack.train.launch import LaunchError, ServeSpec, eval_hints, serve_command, train_command
from opaque_knapsack.train.matrix import Condition, MatrixError, MatrixSpec, build_tasks, conditions, run_matrix

__all__ = [
    "AxolotlConfig",
    "AxolotlDataset",
    "Condition",
    "ConfigError",
    "ExportError",
    "ExportOptions",
    "ExportSummary",
    "LaunchError",
    "MatrixError",
    "MatrixSpec",
    "ServeSpec",
    "build_axolotl_config",
    "build_tasks",
    "conditions",
    "eval_hints",
    "export_traces",
    "run_matrix",
    "serve_command",
    "split_of",
    "train_command",
    "validate_with_axolotl",
    "write_axolotl_config",
]
