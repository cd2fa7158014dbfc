"""Generator configs: the paper presets, custom files, impossible settings refused early."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opaque_knapsack.knapsack import PRESETS, ConfigError, generate_instance, load_config
from opaque_knapsack.knapsack.presets import class_letters, config_from_dict, resolve_config

from .helpers import write_json

BASE: dict[str, Any] = {
    "n_items": [10, 20],
    "weight": [1, 10],
    "value": [1, 50],
    "num_classes": 6,
    "num_allowed_classes": 2,
    "capacity_ratio": [0.3, 0.5],
}


def test_presets_match_the_paper() -> None:
    easy, medium, hard = PRESETS["easy"], PRESETS["medium"], PRESETS["hard"]
    assert (easy.n_items, easy.weight, easy.value, easy.num_allowed_classes, easy.capacity_ratio) == (
        (25, 40), (5, 20), (10, 100), 3, (0.35, 0.5))
    assert easy.class_names == list("ABCDEFGHIJKLMNO")
    assert (medium.n_items, medium.weight, medium.value, medium.num_allowed_classes, medium.capacity_ratio) == (
        (80, 120), (5, 50), (10, 500), 5, (0.4, 0.6))
    assert medium.class_names == [chr(65 + i) for i in range(26)]
    assert (hard.n_items, hard.weight, hard.value, hard.num_allowed_classes, hard.capacity_ratio) == (
        (30, 50), (1, 25), (1, 80), 3, (0.28, 0.45))
    assert hard.class_names == list("ABCDEFGHIJK")


def test_custom_config_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "c.json", {**BASE, "classes": ["x", "y", "z"], "num_classes": None})
    config = load_config(path)
    assert config.name == "custom" and config.class_names == ["x", "y", "z"]
    instance = generate_instance(config, 0, 1)
    assert set(instance.public.classes or []) == {"x", "y", "z"}
    assert resolve_config(None, path) == config
    assert resolve_config(None, None) is PRESETS["easy"]


def test_class_letters_go_past_z() -> None:
    assert class_letters(28)[-3:] == ["Z", "AA", "AB"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"num_allowed_classes": 7}, "num_allowed_classes", "between 1 and the number of classes (6)"),
        ({"n_items": [20, 10]}, "n_items", "inverted"),
        ({"weight": [9, 3]}, "weight", "inverted"),
        ({"n_items": [3, 10]}, "n_items", "below 5"),
        ({"weight": [0, 10]}, "weight", "at least 1"),
        ({"value": [-1, 10]}, "value", "negative"),
        ({"capacity_ratio": [0.2, 1.5]}, "capacity_ratio", "(0, 1]"),
        ({"max_attempts": 0}, "max_attempts", "at least 1"),
        ({"classes": ["A", "A"], "num_classes": None}, "classes", "unique"),
        ({"num_classes": None}, "classes", "either classes"),
        ({"n_items": "many"}, "n_items", "got 'many'"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_impossible_configs_are_refused(tmp_path: Path, change: dict[str, Any], field: str, words: str) -> None:
    path = write_json(tmp_path / "bad.json", {**BASE, **change})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{path}: {field}: ")
    assert words in str(caught.value)


def test_missing_and_unknown() -> None:
    data = dict(BASE)
    del data["value"]
    with pytest.raises(ConfigError, match="value: Field required"):
        config_from_dict(data)
    with pytest.raises(ConfigError, match="unknown preset 'brutal'"):
        resolve_config("brutal", None)
