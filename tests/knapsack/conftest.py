from __future__ import annotations

import json
from typing import Any

import pytest

from opaque_knapsack.knapsack import PRESETS, TaskInstance, generate_instance, instance_json
from opaque_knapsack.knapsack.presets import GeneratorConfig


@pytest.fixture
def easy_instance() -> TaskInstance:
    return generate_instance(PRESETS["easy"], 3, 123456792)


@pytest.fixture
def easy_data(easy_instance: TaskInstance) -> dict[str, Any]:
    return json.loads(instance_json(easy_instance))


@pytest.fixture
def tiny_config() -> GeneratorConfig:
    """Small enough for brute force over every subset of items."""
    return GeneratorConfig(
        name="tiny",
        n_items=(5, 12),
        weight=(1, 10),
        value=(1, 20),
        classes=["A", "B", "C"],
        num_allowed_classes=2,
        capacity_ratio=(0.3, 0.7),
        strict=False,
    )
