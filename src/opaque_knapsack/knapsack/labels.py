"""The difficulty label of a task set: from its manifest, else from the files.

The label splits conditions in every report, so it must say what the files
are, not what someone typed: a folder of easy files is "easy" whether or not
``difficulty=`` was given, and calling it anything else is an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from opaque_knapsack.knapsack.loader import TASKS_SUBDIR
from opaque_knapsack.knapsack.presets import CUSTOM, PRESETS, GeneratorConfig
from opaque_knapsack.knapsack.schema import TaskInstance

MIXED = "mixed"
MANIFEST_NAME = "manifest.json"


class DifficultyMismatch(ValueError):
    """A ``difficulty`` that contradicts the task files or their manifest."""


def fits_preset(instance: TaskInstance, config: GeneratorConfig) -> bool:
    """Whether a preset could have drawn the instance (its ranges, classes and p_valid)."""
    items = instance.private.items.values()
    classes = config.class_names
    known = set(classes)
    return (
        config.n_items[0] <= instance.n_items <= config.n_items[1]
        and all(config.weight[0] <= item.weight <= config.weight[1] for item in items)
        and all(config.value[0] <= item.value <= config.value[1] for item in items)
        and all(item.class_ in known for item in items)
        and len(instance.public.allowed_classes) == config.num_allowed_classes
        and (instance.public.classes is None or instance.public.classes == classes)
        and round(instance.difficulty.p_valid, 2) == round(config.num_allowed_classes / len(classes), 2)
    )


def preset_of(instance: TaskInstance) -> str:
    """The one preset that fits the instance, else ``custom``."""
    fitting = [name for name, config in PRESETS.items() if fits_preset(instance, config)]
    return fitting[0] if len(fitting) == 1 else CUSTOM


def manifest_preset(path: str | Path) -> str | None:
    """The preset recorded by ``opaque-knapsack generate`` for the tasks under `path`."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    candidates = [folder / MANIFEST_NAME]
    if folder.name == TASKS_SUBDIR.name and folder.parent.name == TASKS_SUBDIR.parent.name:
        candidates.append(folder.parent.parent / MANIFEST_NAME)
    for manifest in candidates:
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        preset = (data.get("settings") or {}).get("preset") if isinstance(data, dict) else None
        if isinstance(preset, str) and preset and preset != CUSTOM:
            return preset
    return None


def tasks_label(path: str | Path, instances: Sequence[TaskInstance]) -> str:
    """The label of a task set: the manifest's preset, else the one preset all files fit."""
    recorded = manifest_preset(path)
    if recorded is not None:
        return recorded
    labels = {preset_of(instance) for instance in instances}
    if len(labels) == 1:
        return labels.pop()
    return MIXED if labels - {CUSTOM} else CUSTOM


def check_label(given: str | None, label: str, path: str | Path) -> str:
    """The label to use: the files' own; a given ``difficulty`` must agree with it.

    A custom set (no manifest preset, no single fitting preset) may be given
    any label that is not a preset name.
    """
    if given is None or given == label:
        return label
    if label == CUSTOM and given not in PRESETS:
        return given
    raise DifficultyMismatch(
        f"knapsack task: difficulty={given!r} contradicts the task files in {path}, which are {label!r} "
        "(from their manifest or their contents); drop difficulty= to use the files' label"
    )
