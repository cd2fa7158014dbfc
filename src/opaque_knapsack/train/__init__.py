"""Training and serving: export traces, Axolotl configs, train/serve launchers.

Reads Inspect logs and never imports the solvers. Nothing here imports the
``train`` or ``serve`` extras (axolotl, peft, bitsandbytes, transformers,
vllm): training and serving run as subprocesses, and Axolotl's schema is only
imported, lazily, to validate a config when it is installed.
"""

from __future__ import annotations

from opaque_knapsack._lazy import exports_of, lazy_attributes

# Loaded on first use, so the command line starts without importing Inspect.
_EXPORTS = exports_of(__name__, {
    "axolotl_config": ("AxolotlConfig", "AxolotlDataset", "ConfigError", "build_axolotl_config", "validate_with_axolotl", "write_axolotl_config"),
    "export": ("ExportError", "ExportOptions", "ExportSummary", "export_traces", "split_of"),
    "launch": ("LaunchError", "ServeSpec", "eval_hints", "serve_command", "train_command"),
})

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
