"""Training and serving: export traces, Axolotl configs, train/serve launchers.

Reads Inspect logs and never imports the solvers. Nothing here imports the
``train`` or ``serve`` extras (axolotl, peft, bitsandbytes, transformers,
vllm): training and serving run as subprocesses, and Axolotl's schema is only
imported, lazily, to validate a config when it is installed.
"""

from __future__ import annotations

from opaque_knapsack._lazy import lazy_attributes

# Loaded on first use, so the command line starts without importing Inspect.
_EXPORTS = {
    "AxolotlConfig": "opaque_knapsack.train.axolotl_config",
    "AxolotlDataset": "opaque_knapsack.train.axolotl_config",
    "ConfigError": "opaque_knapsack.train.axolotl_config",
    "build_axolotl_config": "opaque_knapsack.train.axolotl_config",
    "validate_with_axolotl": "opaque_knapsack.train.axolotl_config",
    "write_axolotl_config": "opaque_knapsack.train.axolotl_config",
    "ExportError": "opaque_knapsack.train.export",
    "ExportOptions": "opaque_knapsack.train.export",
    "ExportSummary": "opaque_knapsack.train.export",
    "export_traces": "opaque_knapsack.train.export",
    "split_of": "opaque_knapsack.train.export",
    "LaunchError": "opaque_knapsack.train.launch",
    "ServeSpec": "opaque_knapsack.train.launch",
    "eval_hints": "opaque_knapsack.train.launch",
    "serve_command": "opaque_knapsack.train.launch",
    "train_command": "opaque_knapsack.train.launch",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
