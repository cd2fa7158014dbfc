"""Knapsack instances as an Inspect dataset: one sample per instance.

The sample's input is the task statement (public facts only). The hidden
instance rides in the sample's metadata, which the harness reads and the model
never sees.
"""

from __future__ import annotations

from collections.abc import Iterable

from inspect_ai.dataset import MemoryDataset, Sample

from opaque_knapsack.knapsack import PRESETS, TaskInstance, generate_instance, load_tasks
from opaque_knapsack.knapsack.labels import MIXED, check_label, preset_of, tasks_label
from opaque_knapsack.knapsack.prompts import task_statement
from opaque_knapsack.knapsack.schema import instance_metadata
from opaque_knapsack.records import DIFFICULTY_METADATA_KEY, INSTANCE_METADATA_KEY
from opaque_knapsack.solvers.prompts import DEFAULT_PROMPTS, Prompts


def instance_sample(instance: TaskInstance, difficulty: str, prompts: Prompts = DEFAULT_PROMPTS) -> Sample:
    public = instance.public
    return Sample(
        id=instance.task_id,
        input=task_statement(
            n_items=len(public.item_ids),
            capacity=public.capacity,
            inspect_budget=public.inspect_budget,
            class_names=instance.class_names(),
            prompts=prompts,
        ),
        target=str(instance.reference.optimal_value),
        metadata={
            "task_id": instance.task_id,
            "seed": instance.seed,
            DIFFICULTY_METADATA_KEY: difficulty,
            "n_items": len(public.item_ids),
            INSTANCE_METADATA_KEY: instance_metadata(instance),
        },
    )


def generated_instances(difficulty: str, num: int, seed_start: int) -> list[TaskInstance]:
    config = PRESETS[difficulty]
    return [generate_instance(config, index, seed_start + index) for index in range(num)]


def knapsack_dataset(
    instances: Iterable[TaskInstance], difficulty: str, name: str, prompts: Prompts = DEFAULT_PROMPTS
) -> MemoryDataset:
    return MemoryDataset([instance_sample(i, difficulty, prompts) for i in instances], name=name)


def dataset_from_path(
    path: str, difficulty: str | None, prompts: Prompts = DEFAULT_PROMPTS
) -> tuple[MemoryDataset, str]:
    """The task files under `path` and their difficulty label.

    The label comes from the files' manifest, else from the files themselves
    (the preset they fit); a `difficulty` that contradicts it is an error, so
    easy files can never be reported as hard. In a folder that mixes presets,
    each sample carries its own file's label.
    """
    instances = load_tasks(path)
    label = check_label(difficulty, tasks_label(path, instances), path)
    samples = [instance_sample(i, preset_of(i) if label == MIXED else label, prompts) for i in instances]
    return MemoryDataset(samples, name=path), label
