"""Generator settings: the three paper presets and custom JSON configs.

A config is checked in full when it is built, so an impossible one (more
allowed classes than classes, an inverted range, fewer items than the rules
need) is refused with a message naming the field before any instance is drawn.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opaque_knapsack.family.names import DEFAULT_PRESET

IntRange = Annotated[tuple[int, int], Field(description="Inclusive [min, max].")]
FloatRange = Annotated[tuple[float, float], Field(description="Inclusive [min, max].")]

CUSTOM = "custom"
"""The label of instances no preset fits, or of a custom config."""


class ConfigError(ValueError):
    """An impossible or malformed generator config; `field` names the culprit."""

    def __init__(self, field: str, message: str, source: str | None = None) -> None:
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{field}: {message}")
        self.field = field
        self.source = source


def class_letters(count: int) -> list[str]:
    """Spreadsheet-style class names: A..Z, then AA, AB, ..."""
    names: list[str] = []
    letters = string.ascii_uppercase
    for number in range(count):
        name = ""
        number += 1
        while number:
            number, rest = divmod(number - 1, 26)
            name = letters[rest] + name
        names.append(name)
    return names


class GeneratorConfig(BaseModel):
    """How instances of one difficulty are drawn (see DESIGN.md, presets)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = CUSTOM
    """Preset name, or "custom"; recorded in the manifest, not in task files."""
    n_items: IntRange
    """Number of items per instance."""
    weight: IntRange
    """Item weight range (positive integers)."""
    value: IntRange
    """Item value range (non-negative integers)."""
    classes: list[str] | None = None
    """All class names, in order. Give this or `num_classes`."""
    num_classes: int | None = None
    """Number of classes, named A, B, ... when `classes` is not given."""
    num_allowed_classes: int
    """How many of the classes are allowed (drawn per instance)."""
    capacity_ratio: FloatRange
    """Capacity as a share of the total weight of the allowed items."""
    max_attempts: int = 1000
    """Draws per instance before giving up with an error."""
    strict: bool = True
    """Enforce the quality rules (optimal set size, item dominance); the
    structural rules (allowed items, item 0 allowed) always hold."""
    min_allowed_items: int = 5
    """Reject draws with fewer allowed items than this."""
    min_optimal_set_size: int = 3
    """Reject draws whose optimal set is smaller (when strict)."""
    max_item_dominance: float = 0.4
    """Reject draws where one optimal item carries more than this share of the
    optimal value (when strict)."""

    @model_validator(mode="before")
    @classmethod
    def _fill_classes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        classes, count = data.get("classes"), data.get("num_classes")
        if classes is None and count is None:
            raise ConfigError("classes", "give either classes (a list of names) or num_classes")
        if classes is None and isinstance(count, int) and count >= 1:
            data["classes"] = class_letters(count)
        elif classes is not None and count is None and isinstance(classes, list):
            data["num_classes"] = len(classes)
        return data

    @model_validator(mode="after")
    def _check_possible(self) -> GeneratorConfig:
        for field in ("n_items", "weight", "value", "capacity_ratio"):
            low, high = getattr(self, field)
            if low > high:
                raise ConfigError(field, f"range is inverted or empty (min {low} > max {high})")
        classes = self.classes or []
        if self.num_classes != len(classes):
            raise ConfigError(
                "num_classes", f"{self.num_classes} does not match the {len(classes)} class names given"
            )
        if not classes:
            raise ConfigError("classes", "at least one class is needed")
        if len(set(classes)) != len(classes) or any(not c for c in classes):
            raise ConfigError("classes", "class names must be non-empty and unique")
        if not 1 <= self.num_allowed_classes <= len(classes):
            raise ConfigError(
                "num_allowed_classes",
                f"{self.num_allowed_classes} must be between 1 and the number of classes ({len(classes)})",
            )
        if self.min_allowed_items < 1:
            raise ConfigError("min_allowed_items", f"{self.min_allowed_items} must be at least 1")
        if self.n_items[0] < 5:
            raise ConfigError("n_items", f"minimum {self.n_items[0]} is below 5 items")
        if self.n_items[1] < self.min_allowed_items:
            raise ConfigError(
                "n_items",
                f"maximum {self.n_items[1]} cannot hold {self.min_allowed_items} allowed items",
            )
        if self.weight[0] < 1:
            raise ConfigError("weight", f"minimum {self.weight[0]} must be at least 1")
        if self.value[0] < 0:
            raise ConfigError("value", f"minimum {self.value[0]} must not be negative")
        if self.value[1] < 1:
            raise ConfigError("value", f"maximum {self.value[1]} must be at least 1")
        if not 0 < self.capacity_ratio[0] <= self.capacity_ratio[1] <= 1:
            raise ConfigError("capacity_ratio", f"{list(self.capacity_ratio)} must lie in (0, 1]")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts", f"{self.max_attempts} must be at least 1")
        if self.min_optimal_set_size < 1:
            raise ConfigError("min_optimal_set_size", f"{self.min_optimal_set_size} must be at least 1")
        if self.strict and self.min_optimal_set_size > self.n_items[1]:
            raise ConfigError(
                "min_optimal_set_size",
                f"{self.min_optimal_set_size} is larger than the maximum number of items ({self.n_items[1]})",
            )
        if not 0 < self.max_item_dominance <= 1:
            raise ConfigError("max_item_dominance", f"{self.max_item_dominance} must lie in (0, 1]")
        if self.strict and self.max_item_dominance * self.n_items[1] < 1:
            raise ConfigError(
                "max_item_dominance",
                f"{self.max_item_dominance} cannot be met with at most {self.n_items[1]} items",
            )
        return self

    @property
    def class_names(self) -> list[str]:
        return list(self.classes or [])


PRESETS: dict[str, GeneratorConfig] = {
    "easy": GeneratorConfig(
        name="easy",
        n_items=(25, 40),
        weight=(5, 20),
        value=(10, 100),
        num_classes=15,
        num_allowed_classes=3,
        capacity_ratio=(0.35, 0.5),
    ),
    "medium": GeneratorConfig(
        name="medium",
        n_items=(80, 120),
        weight=(5, 50),
        value=(10, 500),
        num_classes=26,
        num_allowed_classes=5,
        capacity_ratio=(0.4, 0.6),
    ),
    "hard": GeneratorConfig(
        name="hard",
        n_items=(30, 50),
        weight=(1, 25),
        value=(1, 80),
        num_classes=11,
        num_allowed_classes=3,
        capacity_ratio=(0.28, 0.45),
    ),
}


def config_from_dict(data: Any, source: str | None = None) -> GeneratorConfig:
    """Build a config, turning pydantic's errors into one `ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError("(top level)", "a config must be a JSON object", source)
    data = dict(data)
    data.setdefault("name", CUSTOM)
    try:
        return GeneratorConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError):
            raise ConfigError(cause.field, str(cause).split(": ", 1)[1], source) from None
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"]
        if first["type"] not in ("missing", "extra_forbidden"):
            message = f"{message} (got {first.get('input')!r})"
        elif first["type"] == "extra_forbidden":
            message = "unknown field"
        raise ConfigError(field, message, source) from None


def load_config(path: str | Path) -> GeneratorConfig:
    """Read a custom config from a JSON file with GeneratorConfig's fields."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError("(file)", f"cannot read: {error.strerror or error}", str(path)) from None
    except json.JSONDecodeError as error:
        raise ConfigError("(file)", f"not valid JSON: {error}", str(path)) from None
    return config_from_dict(data, str(path))


def resolve_config(preset: str | None, config_path: str | Path | None) -> GeneratorConfig:
    """The config a command asked for: a custom file wins over a preset name."""
    if config_path is not None:
        return load_config(config_path)
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return PRESETS[name]
