"""Task generation speed: instances per second, worker scaling, and the CLI path.

Run: python benchmarks/generate.py [--easy 1000] [--medium 100] [--repeat 3]

What is measured (best of --repeat runs, wall clock):
  * generation = draw + exact optimum (numpy DP) + OR-tools cross-check +
    schema validation + canonical JSON, in this process;
  * the same with 1 and 2 worker processes (spawn), counted twice: including
    pool start-up, and steady state (pool already warm);
  * the CLI path: `opaque-knapsack generate --num N` writing N files
    (atomic write + fsync + sha256 + manifest), in-process and as a fresh
    subprocess (interpreter start-up and imports included), then a resume run
    where every file is kept.
Baseline, measured in the same run: the same generator with a plain-Python
dynamic programme (lists, no numpy) as the exact method and *no* cross-check,
i.e. the simplest correct implementation one would write first.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from timing import best_of

from opaque_knapsack.knapsack import PRESETS, generate_instance, instance_json
from opaque_knapsack.knapsack.optimum import Solution


def plain_python_dp(weights: Sequence[int], values: Sequence[int], capacity: int) -> Solution:
    """Baseline exact method: list-based DP over capacity with a take table."""
    best = [0] * (capacity + 1)
    took: list[list[bool]] = []
    for weight, value in zip(weights, values, strict=True):
        row = [False] * (capacity + 1)
        for room in range(capacity, weight - 1, -1):
            candidate = best[room - weight] + value
            if candidate > best[room]:
                best[room] = candidate
                row[room] = True
        took.append(row)
    chosen, room = [], capacity
    for index in range(len(weights) - 1, -1, -1):
        if took[index][room]:
            chosen.append(index)
            room -= weights[index]
    chosen.reverse()
    return Solution(tuple(chosen), sum(values[i] for i in chosen), sum(weights[i] for i in chosen))


def generate_range(preset: str, start: int, stop: int, baseline: bool = False) -> int:
    """Generate instances start..stop-1 (seed = index); returns bytes produced."""
    config = PRESETS[preset]
    options = {"cross_check": False, "solve": plain_python_dp} if baseline else {}
    return sum(len(instance_json(generate_instance(config, i, i, **options))) for i in range(start, stop))


# The `opaque-knapsack` parser with only this area's commands: isolates the
# generate command's own cost from start-up imports made by other areas' CLI modules.
FAMILY_ONLY_CLI = """
import argparse, sys
from opaque_knapsack.generate import register
parser = argparse.ArgumentParser()
register(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""


def _warm(_: int) -> int:
    return generate_range("easy", 0, 5)


def parallel(preset: str, count: int, workers: int, pool: ProcessPoolExecutor) -> None:
    size = max(1, -(-count // (workers * 4)))
    futures = [
        pool.submit(generate_range, preset, start, min(start + size, count))
        for start in range(0, count, size)
    ]
    for future in futures:
        future.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--easy", type=int, default=1000, help="easy instances per measurement")
    parser.add_argument("--medium", type=int, default=100, help="medium instances per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    args = parser.parse_args()
    generate_range("easy", 0, 3)  # imports, OR-tools solver object
    rows: list[tuple[str, str, int, float]] = []

    for preset, count in (("easy", args.easy), ("medium", args.medium)):
        seconds = best_of(args.repeat, lambda preset=preset, count=count: generate_range(preset, 0, count, baseline=True))
        rows.append(("baseline: plain-Python DP, no cross-check, 1 process", preset, count, seconds))
        seconds = best_of(args.repeat, lambda preset=preset, count=count: generate_range(preset, 0, count))
        rows.append(("numpy DP + OR-tools cross-check, 1 process", preset, count, seconds))

    scaling = (("easy", args.easy), ("medium", args.medium), ("medium", 10 * args.medium))
    for workers in (1, 2):
        for preset, count in scaling:
            started = time.perf_counter()
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                parallel(preset, count, workers, pool)
                cold = time.perf_counter() - started
                list(pool.map(_warm, range(workers * 2)))
                warm = best_of(args.repeat, lambda preset=preset, count=count, workers=workers: parallel(preset, count, workers, pool))
            rows.append((f"{workers} worker(s), incl. pool start-up", preset, count, cold))
            rows.append((f"{workers} worker(s), steady state", preset, count, warm))

    out = tempfile.mkdtemp(prefix="ok-bench-")
    try:
        from opaque_knapsack.cli import main as cli_main

        argv = ["generate", "--preset", "easy", "--num", str(args.easy), "--quiet"]
        targets = (os.path.join(out, f"run-{n}") for n in itertools.count())  # a fresh folder a run

        def in_process() -> None:
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                cli_main([*argv, "--out", next(targets)])

        def in_subprocess(command: list[str]) -> Callable[[], object]:
            return lambda: subprocess.run([*command, "--out", next(targets)], check=True, capture_output=True)

        seconds = best_of(args.repeat, in_process)
        rows.append(("CLI generate in-process: write+fsync+sha256+manifest", "easy", args.easy, seconds))
        command = [sys.executable, "-m", "opaque_knapsack.cli", *argv]
        seconds = best_of(args.repeat, in_subprocess(command))
        rows.append(("CLI generate subprocess (python start-up included)", "easy", args.easy, seconds))
        seconds = best_of(args.repeat, in_subprocess([sys.executable, "-c", FAMILY_ONLY_CLI, *argv]))
        rows.append(("same, family commands only (no other areas' imports)", "easy", args.easy, seconds))
        started = time.perf_counter()
        subprocess.run([*command, "--out", os.path.join(out, "run-0")], check=True, capture_output=True)
        rows.append(("CLI generate subprocess, resume (all kept)", "easy", args.easy, time.perf_counter() - started))
        started = time.perf_counter()
        subprocess.run([*command, "--out", os.path.join(out, "sub-w2"), "--workers", "2"], check=True, capture_output=True)
        rows.append(("CLI generate subprocess --workers 2", "easy", args.easy, time.perf_counter() - started))
    finally:
        shutil.rmtree(out, ignore_errors=True)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    width = max(len(row[0]) for row in rows)
    print(f"{'measurement':<{width}}  {'preset':<6}  {'n':>5}  {'seconds':>8}  {'tasks/s':>8}")
    for name, preset, count, seconds in rows:
        print(f"{name:<{width}}  {preset:<6}  {count:>5}  {seconds:>8.3f}  {count / seconds:>8.0f}")


if __name__ == "__main__":
    main()
