"""The Opaque Knapsack task family, all of it, in one folder.

Its data and rules (``schema``, ``presets``, ``generator``, ``optimum``: the
exact solver, ``environment``: the hidden state and tool semantics, ``loader``,
``writer``, ``labels``), what the agents meet (``family``: the declaration the
registry names, ``prompts``, ``episode``, ``tools``, ``runtime_handle``) and
what Inspect runs (``dataset``, ``task``, ``scorer``). Names are exported
lazily, so importing one module does not load them all.
"""

from opaque_knapsack._lazy import lazy_attributes

_EXPORTS = {
    "KnapsackEnvironment": "opaque_knapsack.knapsack.environment",
    "KnapsackToolError": "opaque_knapsack.knapsack.environment",
    "GenerationError": "opaque_knapsack.knapsack.generator",
    "generate_instance": "opaque_knapsack.knapsack.generator",
    "instance_json": "opaque_knapsack.knapsack.generator",
    "task_id_for": "opaque_knapsack.knapsack.generator",
    "load_tasks": "opaque_knapsack.knapsack.loader",
    "task_files": "opaque_knapsack.knapsack.loader",
    "PRESETS": "opaque_knapsack.knapsack.presets",
    "PRESET_NAMES": "opaque_knapsack.knapsack.presets",
    "ConfigError": "opaque_knapsack.knapsack.presets",
    "GeneratorConfig": "opaque_knapsack.knapsack.presets",
    "Preset": "opaque_knapsack.knapsack.presets",
    "load_config": "opaque_knapsack.knapsack.presets",
    "TaskFileError": "opaque_knapsack.knapsack.schema",
    "TaskInstance": "opaque_knapsack.knapsack.schema",
    "dump_instance": "opaque_knapsack.knapsack.schema",
    "parse_instance": "opaque_knapsack.knapsack.schema",
    "read_instance": "opaque_knapsack.knapsack.schema",
    "Optimum": "opaque_knapsack.knapsack.optimum",
    "SolverMismatchError": "opaque_knapsack.knapsack.optimum",
    "solve_instance": "opaque_knapsack.knapsack.optimum",
    "verify_optimum": "opaque_knapsack.knapsack.optimum",
    "knapsack": "opaque_knapsack.knapsack.task",
    "knapsack_scorer": "opaque_knapsack.knapsack.scorer",
    "episode_figures": "opaque_knapsack.knapsack.scorer",
    "knapsack_tools": "opaque_knapsack.knapsack.tools",
    "knapsack_setup": "opaque_knapsack.knapsack.episode",
    "KnapsackEpisode": "opaque_knapsack.knapsack.episode",
    "current_episode": "opaque_knapsack.knapsack.episode",
    "knapsack_runtime": "opaque_knapsack.knapsack.runtime_handle",
    "KnapsackRuntime": "opaque_knapsack.knapsack.runtime_handle",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
