"""Time of `opaque-knapsack --help` and of every command's `--help`, against `python -c pass`.

Run: python benchmarks/cli_help.py [--repeat 7]

Each row is a fresh interpreter printing one help text: wall clock (best and
median of --repeat runs) and CPU time (user + system, best run), which a
loaded machine stretches less. The baseline, `python -c pass`, is measured in
the same run, and each row shows what help costs on top of it. Help should
load the argument parsers only (tests/test_cli_help.py checks which modules
it imports): under 0.3 s in all.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

CLI = [sys.executable, "-m", "opaque_knapsack.cli"]


def times(command: list[str], repeat: int) -> tuple[list[float], float]:
    """Wall seconds of each run, and the least CPU seconds a run took."""
    walls, cpu = [], float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = min(cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per row (default: 7)")
    args = parser.parse_args()

    from opaque_knapsack.cli import build_parser

    [commands] = [action.choices for action in build_parser()._actions if action.dest == "command"]
    rows = [("python -c pass (baseline)", [sys.executable, "-c", "pass"]), ("opaque-knapsack --help", [*CLI, "--help"])]
    rows += [(f"opaque-knapsack {name} --help", [*CLI, name, "--help"]) for name in commands]

    print(f"python {sys.version.split()[0]}, {args.repeat} runs per row, seconds; load average {os.getloadavg()[0]:.1f}")
    print(f"{'command':<40} {'wall best':>9} {'median':>7} {'+ pass':>7} {'CPU':>6} {'+ pass':>7}")
    base_wall = base_cpu = None
    slowest = (0.0, "")
    for label, command in rows:
        walls, cpu = times(command, args.repeat)
        best = min(walls)
        if base_wall is None or base_cpu is None:
            base_wall, base_cpu = best, cpu
        else:
            slowest = max(slowest, (best, label))
        print(
            f"{label:<40} {best:>9.3f} {statistics.median(walls):>7.3f} {best - base_wall:>+7.3f}"
            f" {cpu:>6.3f} {cpu - base_cpu:>+7.3f}"
        )
    print(f"slowest: {slowest[1]}, {slowest[0]:.3f} s wall (target: under 0.3 s)")


if __name__ == "__main__":
    main()
