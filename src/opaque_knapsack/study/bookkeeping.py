"""Which stages are done: a marker per stage with the hash of its inputs and of every output file.

A stage is done when its marker's input hashes equal the ones computed now
(its spec section, its upstream stages' outputs, the package version) and its
output files still hash as they did when it finished. Then a re-run skips it.
When an input changed, the stage runs again and the reason names what
changed. When an output changed on disk, the stage is neither skipped nor
run over: the file was edited by hand, and the user is told which and what to
do. Markers are written atomically (a temporary file renamed into place), so
a run killed at any moment leaves either the old marker or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Marker",
    "StageState",
    "Status",
    "digest",
    "file_digests",
    "read_marker",
    "write_json_atomic",
]

Status = Literal["done", "to run", "changed", "edited", "waiting", "running", "failed"]


def digest(value: Any) -> str:
    """sha256 of a JSON-able value, written canonically (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def file_digests(root: Path, files: Iterable[Path]) -> dict[str, str]:
    """Path (relative to ROOT where it lies inside it) -> sha256 of its bytes."""
    found: dict[str, str] = {}
    for path in sorted(set(files)):
        try:
            name = path.relative_to(root).as_posix()
        except ValueError:
            name = str(path)
        found[name] = file_sha256(path)
    return found


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to PATH so that a reader (or a crash) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2, sort_keys=True, default=str)
        stream.write("\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


@dataclass
class Marker:
    """What a finished stage recorded: its inputs' hashes and its outputs' hashes."""

    stage: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    seconds: float = 0.0
    finished: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def outputs_hash(self) -> str:
        return digest(self.outputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "seconds": self.seconds,
            "finished_at": self.finished,
            "details": self.details,
        }


def read_marker(path: Path) -> Marker | None:
    """The marker at PATH, or None when there is none (or it is unreadable: then the stage runs again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Marker(
            stage=str(data["stage"]),
            inputs=dict(data["inputs"]),
            outputs=dict(data["outputs"]),
            seconds=float(data.get("seconds", 0.0)),
            finished=float(data.get("finished_at", 0.0)),
            details=dict(data.get("details") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_marker(path: Path, marker: Marker) -> None:
    marker.finished = marker.finished or time.time()
    write_json_atomic(path, marker.to_json())


@dataclass
class StageState:
    """Where one stage stands, and why, in words a person reads."""

    stage: str
    status: Status
    reasons: list[str] = field(default_factory=list)
    marker: Marker | None = None
    inputs: dict[str, str] | None = None

    @property
    def done(self) -> bool:
        return self.status == "done"

    def line(self) -> str:
        why = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return f"{self.status}{why}"


INPUT_NAMES = {"spec": "its spec section", "version": "the package version"}


def changed_inputs(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """What differs between two input hash sets, as reasons: 'spec section matrix changed', ..."""
    reasons = []
    for key in sorted(set(recorded) | set(current)):
        if recorded.get(key) == current.get(key):
            continue
        kind, _, name = key.partition(":")
        if kind == "upstream":
            reasons.append(f"the {name} stage's outputs changed")
        elif kind == "version":
            reasons.append(f"the package version changed ({recorded.get(key, '?')} -> {current.get(key, '?')})")
        else:
            reasons.append(f"spec section {name or kind} changed")
    return reasons


def changed_outputs(recorded: Mapping[str, str], current: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(files edited or added since the stage finished, files removed since)."""
    edited = sorted(name for name, value in current.items() if recorded.get(name) != value)
    removed = sorted(name for name in recorded if name not in current)
    return edited, removed
