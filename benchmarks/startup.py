"""Start-up time of each `opaque-knapsack` command, against `python -c pass`.

Run: python benchmarks/startup.py [--repeat 5]

Each row is a fresh interpreter running one command line to its end, best of
--repeat runs (wall clock), in a scratch folder. Commands that must answer at
once (``--help``, argument errors, ``generate``) should stay near the
interpreter's own start-up; the rows that read logs or run an eval pay for
importing Inspect, which the ``import inspect_ai`` row shows on its own.
Baselines, measured in the same run: ``python -c pass`` (the interpreter) and
``python -c "import inspect_ai"`` (what a command that needs Inspect pays).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CLI = [sys.executable, "-m", "opaque_knapsack.cli"]

ROWS: list[tuple[str, list[str]]] = [
    ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
    ("python -c 'import inspect_ai' (baseline)", [sys.executable, "-c", "import inspect_ai"]),
    ("opaque-knapsack --help", [*CLI, "--help"]),
    ("opaque-knapsack generate --help", [*CLI, "generate", "--help"]),
    ("opaque-knapsack export --help", [*CLI, "export", "--help"]),
    ("opaque-knapsack generate (missing --out: argument error)", [*CLI, "generate"]),
    ("opaque-knapsack matrix --difficulty extreme (refused)",
     [*CLI, "matrix", "--student", "a=scripted/persistent", "--log-dir", "m", "--difficulty", "extreme"]),
    ("opaque-knapsack generate --num 1", [*CLI, "generate", "--num", "1", "--out", "tasks", "--quiet"]),
    ("opaque-knapsack stats missing.eval (reads logs: imports Inspect)", [*CLI, "stats", "missing.eval"]),
]


def best_time(command: list[str], repeat: int, cwd: str) -> tuple[float, int]:
    best = float("inf")
    code = 0
    for _ in range(repeat):
        started = time.perf_counter()
        code = subprocess.run(command, cwd=cwd, capture_output=True, check=False).returncode
        best = min(best, time.perf_counter() - started)
    return best, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per row; the best counts (default: 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="startup-") as scratch:
        env_note = os.environ.get("PYTHONPATH", "")
        print(f"python {sys.version.split()[0]}, best of {args.repeat}{', PYTHONPATH=' + env_note if env_note else ''}")
        baseline = None
        print(f"{'command':<66} {'seconds':>8} {'vs pass':>8} {'exit':>5}")
        for label, command in ROWS:
            seconds, code = best_time(command, args.repeat, scratch)
            baseline = baseline if baseline is not None else seconds
            print(f"{label:<66} {seconds:8.3f} {seconds / baseline:7.1f}x {code:5d}")


if __name__ == "__main__":
    main()
