"""The Opaque Knapsack task family: schema, presets, generator, exact solver,
and the environment that holds an episode's hidden state and tool semantics."""

from opaque_knapsack.family.environment import KnapsackEnvironment, KnapsackToolError
from opaque_knapsack.family.generator import GenerationError, generate_instance, instance_json, task_id_for
from opaque_knapsack.family.loader import load_tasks, task_files
from opaque_knapsack.family.presets import PRESET_NAMES, PRESETS, ConfigError, GeneratorConfig, Preset, load_config
from opaque_knapsack.family.schema import (
    TaskFileError,
    TaskInstance,
    dump_instance,
    parse_instance,
    read_instance,
)
from opaque_knapsack.family.solver import Optimum, SolverMismatchError, solve_instance, verify_optimum

__all__ = [
    "PRESETS",
    "PRESET_NAMES",
    "ConfigError",
    "GenerationError",
    "GeneratorConfig",
    "KnapsackEnvironment",
    "KnapsackToolError",
    "Optimum",
    "Preset",
    "SolverMismatchError",
    "TaskFileError",
    "TaskInstance",
    "dump_instance",
    "generate_instance",
    "instance_json",
    "load_config",
    "load_tasks",
    "parse_instance",
    "read_instance",
    "solve_instance",
    "task_files",
    "task_id_for",
    "verify_optimum",
]
