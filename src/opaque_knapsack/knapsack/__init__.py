"""The Opaque Knapsack task family, all of it, in one folder.

Its data and rules (``schema``, ``presets``, ``generator``, ``optimum``: the
exact solver, ``environment``: the hidden state and tool semantics, ``loader``,
``writer``, ``labels``), what the agents meet (``family``: the declaration the
registry names, ``prompts``, ``episode``, ``tools``, ``runtime_handle``) and
what Inspect runs (``dataset``, ``task``, ``scorer``). Names are exported
lazily, so importing one module does not load them all.
"""

from opaque_knapsack._lazy import exports_of, lazy_attributes

_NAMES = {
    "environment": ("KnapsackEnvironment", "KnapsackToolError"),
    "generator": ("GenerationError", "generate_instance", "instance_json", "task_id_for"),
    "loader": ("load_tasks", "task_files"),
    "presets": ("PRESETS", "PRESET_NAMES", "ConfigError", "GeneratorConfig", "Preset", "load_config"),
    "schema": ("TaskFileError", "TaskInstance", "dump_instance", "parse_instance", "read_instance"),
    "optimum": ("Optimum", "SolverMismatchError", "solve_instance", "verify_optimum"),
    "task": ("knapsack",),
    "scorer": ("knapsack_scorer", "episode_figures"),
    "tools": ("knapsack_tools",),
    "episode": ("knapsack_setup", "KnapsackEpisode", "current_episode"),
    "runtime_handle": ("knapsack_runtime", "KnapsackRuntime"),
}
"""Module of the family -> the names it exports here."""
_EXPORTS = exports_of(__name__, _NAMES)

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
