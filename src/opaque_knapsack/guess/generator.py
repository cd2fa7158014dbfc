"""The guess family's task files: one hidden number per file, the same for a (preset, seed) anywhere.

``DIR/tasks/guess/guess-<10-digit index>.json`` holds the range and the
number; instance i has seed SEED_START + i. A file already holding the right
bytes is kept, any other is replaced atomically (write, then rename), so a
run can be repeated or resumed.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from opaque_knapsack.families import GeneratedTasks, TaskRequest

RANGES: dict[str, tuple[int, int]] = {"easy": (1, 100), "hard": (1, 1_000_000)}
"""Preset -> the range the number is drawn from, in order: the first is the default."""
TASKS_SUBDIR = Path("tasks") / "guess"


class GuessTaskError(ValueError):
    """A task file that cannot be used: names the file."""


@dataclass(frozen=True)
class GuessInstance:
    task_id: str
    seed: int
    preset: str
    low: int
    high: int
    secret: int


def make_instance(preset: str, index: int, seed: int) -> GuessInstance:
    """Instance ``index`` of a preset: its number depends only on the preset's range and the seed."""
    low, high = RANGES[preset]
    secret = random.Random(f"guess:{low}:{high}:{seed}").randint(low, high)
    return GuessInstance(f"guess-{index:010d}", seed, preset, low, high, secret)


def instance_bytes(instance: GuessInstance) -> bytes:
    return (json.dumps(asdict(instance), sort_keys=True) + "\n").encode()


def read_instances(path: str | Path) -> list[GuessInstance]:
    """The instances of one task file, a folder of them, or a tasks root (``DIR/tasks/guess``)."""
    path = Path(path)
    root = path / TASKS_SUBDIR
    folder = root if root.is_dir() else path
    files = sorted(folder.glob("guess-*.json")) if folder.is_dir() else [path]
    if not files or not files[0].exists():
        raise GuessTaskError(f"{path}: no guess task files (guess-*.json) there")
    try:
        return [GuessInstance(**json.loads(file.read_text(encoding="utf-8"))) for file in files]
    except (OSError, ValueError, TypeError) as error:
        raise GuessTaskError(f"{path}: not a guess task file set ({error})") from None


class GuessGenerator:
    """The guess family's ``TaskGenerator``."""

    presets: Sequence[str] = tuple(RANGES)
    errors: tuple[type[Exception], ...] = (GuessTaskError,)

    def write(self, out: Path, request: TaskRequest) -> GeneratedTasks:
        """One file per instance, in this process (``workers`` is not needed at this size)."""
        if request.config is not None:
            raise GuessTaskError("the guess family has no generator config: give --preset")
        preset = request.preset or self.presets[0]
        folder = Path(out) / TASKS_SUBDIR
        folder.mkdir(parents=True, exist_ok=True)
        counts = {"written": 0, "kept": 0, "rewritten": 0}
        for index in range(request.num):
            data = instance_bytes(make_instance(preset, index, request.seed_start + index))
            counts[_store(folder / f"guess-{index:010d}.json", data)] += 1
            if request.on_progress:
                request.on_progress(1)
        return GeneratedTasks(folder=folder, label=preset, counts=counts)


def _store(path: Path, data: bytes) -> str:
    """Write the file unless it already holds ``data``: written, kept or rewritten."""
    existed = path.exists()
    if existed and path.read_bytes() == data:
        return "kept"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return "rewritten" if existed else "written"


GENERATOR = GuessGenerator()
