"""The Opaque Knapsack task family: schema, presets, generator, exact solver,
and the environment that holds an episode's hidden state and tool semantics.

Names are exported lazily, so importing one module (the command line's
``names``) does not load them all.
"""

from opaque_knapsack._lazy import lazy_attributes

_EXPORTS = {
    "KnapsackEnvironment": "opaque_knapsack.family.environment",
    "KnapsackToolError": "opaque_knapsack.family.environment",
    "GenerationError": "opaque_knapsack.family.generator",
    "generate_instance": "opaque_knapsack.family.generator",
    "instance_json": "opaque_knapsack.family.generator",
    "task_id_for": "opaque_knapsack.family.generator",
    "load_tasks": "opaque_knapsack.family.loader",
    "task_files": "opaque_knapsack.family.loader",
    "PRESETS": "opaque_knapsack.family.presets",
    "ConfigError": "opaque_knapsack.family.presets",
    "GeneratorConfig": "opaque_knapsack.family.presets",
    "load_config": "opaque_knapsack.family.presets",
    "PRESET_NAMES": "opaque_knapsack.family.names",
    "Preset": "opaque_knapsack.family.names",
    "TaskFileError": "opaque_knapsack.family.schema",
    "TaskInstance": "opaque_knapsack.family.schema",
    "dump_instance": "opaque_knapsack.family.schema",
    "parse_instance": "opaque_knapsack.family.schema",
    "read_instance": "opaque_knapsack.family.schema",
    "Optimum": "opaque_knapsack.family.solver",
    "SolverMismatchError": "opaque_knapsack.family.solver",
    "solve_instance": "opaque_knapsack.family.solver",
    "verify_optimum": "opaque_knapsack.family.solver",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
