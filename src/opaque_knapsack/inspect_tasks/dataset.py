"""Knapsack instances as an Inspect dataset: one sample per instance.

The sample's input is the task statement (public facts only). The hidden
instance rides in the sample's metadata, which the harness reads and the model
never sees.
"""

from __future__ import annotations

from collections.abc import Iterable

from inspect_ai.dataset import MemoryDataset, Sample

from opaque_knapsack.family import PRESETS, TaskInstance, generate_instance, load_tasks
from opaque_knapsack.records import instance_metadata
from opaque_knapsack.solvers.prompts import task_statement


def instance_sample(instance: TaskInstance, difficulty: str) -> Sample:
    public = instance.public
    return Sample(
        id=instance.task_id,
        input=task_statement(
            n_items=len(public.item_ids),
            capacity=public.capacity,
            inspect_budget=public.inspect_budget,
            class_names=instance.class_names(),
        ),
        target=str(instance.reference.optimal_value),
        metadata={
            "task_id": instance.task_id,
            "seed": instance.seed,
            "difficulty": difficulty,
            "n_items": len(public.item_ids),
            "instance": instance_metadata(instance),
        },
    )


def generated_instances(difficulty: str, num: int, seed_start: int) -> list[TaskInstance]:
    config = PRESETS[difficulty]
    return [generate_instance(config, index, seed_start + index) for index in range(num)]


def knapsack_dataset(instances: Iterable[TaskInstance], difficulty: str, name: str) -> MemoryDataset:
    return MemoryDataset([instance_sample(i, difficulty) for i in instances], name=name)


def dataset_from_path(path: str, difficulty: str | None) -> MemoryDataset:
    instances = load_tasks(path)
    return knapsack_dataset(instances, difficulty or "custom", name=path)
