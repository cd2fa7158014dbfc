"""Write a set of task files to disk: atomic, resumable, optionally parallel.

Each file is written to a hidden temporary file in the same folder, fsynced,
then renamed over its final name, so a killed run leaves complete files or
none (plus stray temporaries, removed by the next run). An existing file is
kept only if its bytes equal a fresh generation; anything else (truncated,
corrupt, from another config) is rewritten. The run's manifest records what
the task files deliberately do not: time, host, versions, and each file's
sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from opaque_knapsack.families import GeneratedTasks, TaskRequest
from opaque_knapsack.knapsack.generator import generate_instance, instance_json, task_id_for
from opaque_knapsack.knapsack.loader import TASKS_SUBDIR
from opaque_knapsack.knapsack.presets import GeneratorConfig

TEMP_PREFIX = ".partial-"
MANIFEST_NAME = "manifest.json"
IO_THREADS = 4


@dataclass(frozen=True)
class FileOutcome:
    index: int
    status: str  # "written" | "kept" | "rewritten"
    sha256: str


@dataclass
class GenerateReport:
    out: Path
    outcomes: list[FileOutcome] = field(default_factory=list)
    manifest_path: Path | None = None

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def counts(self) -> dict[str, int]:
        return {status: self.count(status) for status in ("written", "kept", "rewritten")}


def task_path(tasks_dir: Path, index: int) -> Path:
    return tasks_dir / f"{task_id_for(index)}.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Write-to-temp, fsync, rename: readers see the old file or the new one, whole."""
    temp = path.parent / f"{TEMP_PREFIX}{path.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _store(path: Path, data: bytes) -> str:
    """Keep the file if it already holds `data`, else write it atomically."""
    try:
        existing = path.read_bytes()
    except FileNotFoundError:
        existing = None
    if existing == data:
        return "kept"
    write_atomic(path, data)
    return "written" if existing is None else "rewritten"


_io_pool: ThreadPoolExecutor | None = None


def _io_threads() -> ThreadPoolExecutor:
    """File creation and fsync wait on the disk with the GIL released, so a few
    threads overlap them with each other and with generation (one pool per process)."""
    global _io_pool
    if _io_pool is None:
        _io_pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="task-writer")
    return _io_pool


def produce_chunk(
    config: GeneratorConfig, indices: list[int], seed_start: int, tasks_dir: str, run_name: str | None
) -> list[FileOutcome]:
    """Generate and store some instances (module-level so spawned workers can import it)."""
    folder = Path(tasks_dir)
    pool = _io_threads()
    pending = []
    for index in indices:
        instance = generate_instance(config, index, seed_start + index, run_name=run_name)
        data = instance_json(instance).encode("ascii")
        store = pool.submit(_store, task_path(folder, index), data)
        pending.append((index, hashlib.sha256(data).hexdigest(), store))
    return [FileOutcome(index, store.result(), digest) for index, digest, store in pending]


def _chunks(indices: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def remove_stale_temporaries(tasks_dir: Path) -> int:
    removed = 0
    for stray in tasks_dir.glob(f"{TEMP_PREFIX}*.tmp"):
        try:
            stray.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def generate_tasks(
    config: GeneratorConfig,
    out: str | Path,
    num: int,
    seed_start: int = 0,
    *,
    workers: int = 1,
    run_name: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    settings: dict[str, Any] | None = None,
) -> GenerateReport:
    """Write instances 0..num-1 (seed of instance i = seed_start + i) under `out`.

    The result is the same whatever `workers` is: each file depends only on
    its config, index and seed.
    """
    if num < 0:
        raise ValueError(f"num: {num} must not be negative")
    if workers < 1:
        raise ValueError(f"workers: {workers} must be at least 1")
    out = Path(out)
    tasks_dir = out / TASKS_SUBDIR
    tasks_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(tasks_dir)
    report = GenerateReport(out)
    indices = list(range(num))
    if workers == 1 or num <= 1:
        for chunk in _chunks(indices, 100):
            outcomes = produce_chunk(config, chunk, seed_start, str(tasks_dir), run_name)
            report.outcomes.extend(outcomes)
            if on_progress:
                on_progress(len(outcomes))
    else:
        size = max(1, min(250, -(-num // (workers * 8))))
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = [
                pool.submit(produce_chunk, config, chunk, seed_start, str(tasks_dir), run_name)
                for chunk in _chunks(indices, size)
            ]
            for future in as_completed(futures):
                outcomes = future.result()
                report.outcomes.extend(outcomes)
                if on_progress:
                    on_progress(len(outcomes))
    report.outcomes.sort(key=lambda outcome: outcome.index)
    _fsync_dir(tasks_dir)
    report.manifest_path = write_manifest(out, config, num, seed_start, workers, run_name, report, settings)
    return report


def _host_info() -> dict[str, Any]:
    import numpy

    try:
        from importlib.metadata import version

        ortools_version = version("ortools")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        ortools_version = "unknown"
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "numpy": numpy.__version__,
        "ortools": ortools_version,
    }


def write_manifest(
    out: Path,
    config: GeneratorConfig,
    num: int,
    seed_start: int,
    workers: int,
    run_name: str | None,
    report: GenerateReport,
    settings: dict[str, Any] | None = None,
) -> Path:
    from opaque_knapsack import __version__

    manifest = {
        "family": "knapsack",
        "package_version": __version__,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "preset": config.name,
            "config": config.model_dump(mode="json"),
            "num": num,
            "seed_start": seed_start,
            "workers": workers,
            "run_name": run_name,
            **(settings or {}),
        },
        "host": _host_info(),
        "counts": report.counts,
        "files": {
            f"{TASKS_SUBDIR.as_posix()}/{task_id_for(o.index)}.json": o.sha256 for o in report.outcomes
        },
    }
    path = out / MANIFEST_NAME
    write_atomic(path, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    _fsync_dir(out)
    return path


class KnapsackGenerator:
    """The knapsack family's ``TaskGenerator``: the paper's presets, or a custom config file."""

    @property
    def presets(self) -> tuple[str, ...]:
        from opaque_knapsack.knapsack.presets import PRESET_NAMES

        return PRESET_NAMES

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        from opaque_knapsack.knapsack.generator import GenerationError
        from opaque_knapsack.knapsack.presets import ConfigError

        return (ConfigError, GenerationError)

    def write(self, out: Path, request: TaskRequest) -> GeneratedTasks:
        from opaque_knapsack.knapsack.presets import resolve_config

        generator_config = resolve_config(request.preset, request.config)
        report = generate_tasks(
            generator_config, out, request.num, request.seed_start, workers=request.workers,
            run_name=request.run_name, on_progress=request.on_progress, settings={"config_file": request.config},
        )  # fmt: skip
        return GeneratedTasks(
            folder=report.out / TASKS_SUBDIR, label=generator_config.name, counts=report.counts,
            manifest=report.manifest_path,
        )  # fmt: skip


GENERATOR = KnapsackGenerator()
