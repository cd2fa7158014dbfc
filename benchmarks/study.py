"""The study's matrix on one worker and on several, and the harness's CPU per turn against Inspect alone.

Runs, in this process and in this order, with the same Inspect options:

- one worker: the offline matrix of a study (the scripted policies as its
  two students x both runtimes x easy and medium, NUM tasks each: 800
  episodes at the default 100) through `study run`, its matrix one eval set
  in this process;
- N workers: the same study in another folder with `study run --workers N`,
  the matrix's tasks shared among N worker processes through Inspect's
  eval-set worker protocol;
- baseline: Inspect alone, ``mockllm/model`` replaying exactly the
  conversations of the one-worker run (the same replies and observations,
  turn by turn) through ``eval_set`` with the same options, no sandbox, no
  tools, no scoring.

Reported: the matrix stage's wall time at 1 and N workers and their ratio
(goal <= 0.65 at 2 workers on 2 cores), whether every per-episode figure is
the same in both runs (goal: all identical), and harness CPU per turn (this
process's CPU over the one-worker matrix, kernels excluded) against the
baseline's. The CPU of every process of each run and the machine's load
average say whether the cores were the limit: on a machine other work keeps
busy, more worker processes cannot go faster. The stages before the matrix (one teacher task, nothing to train)
are not timed.

    python benchmarks/study.py [--num 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("INSPECT_LOG_LEVEL", "error")
os.environ["INSPECT_DISPLAY"] = "none"

import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from opaque_knapsack.records import RUNTIMES, SCORE_KEYS  # noqa: E402

INSPECT_OPTIONS = {"display": "none", "score_display": False}
"""What both the matrix (in-process) and the baseline run with, besides max_samples and max_tasks."""


def spec(num: int) -> dict[str, Any]:
    """An offline study: the scripted policies are the matrix's students; no training, no server."""
    return {
        "profile": "cpu-tiny",
        "tasks": {
            "teacher": {"preset": "easy", "num": 1, "seed_start": 0},
            "eval": [{"preset": preset, "num": num, "seed_start": 123456789} for preset in ("easy", "medium")],
        },
        "teacher": {"model": {runtime: f"scripted/{runtime}" for runtime in RUNTIMES}},
        "export": {"exclude_errors": False, "val_fraction": 0.0},
        "matrix": {"students": list(RUNTIMES), "models": {runtime: f"scripted/{runtime}" for runtime in RUNTIMES}},
    }


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _all_cpu() -> float:
    """This process's CPU and that of its finished children (worker processes, kernels, their zygote)."""
    return _cpu() + _cpu(resource.RUSAGE_CHILDREN)


def run_study(folder: Path, num: int, workers: int) -> dict[str, Any]:
    """`study run` of the offline study in FOLDER; the matrix stage's wall time and this process's CPU over it."""
    from opaque_knapsack.study import RunOptions, Study
    from opaque_knapsack.study import run_study as run

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({"folder": "study", **spec(num)}))
    study = Study.load(path)
    run(study, RunOptions(until="train", echo=lambda line: None))
    cpu, total, load = _cpu(), _all_cpu(), os.getloadavg()[0]
    [result] = [r for r in run(study, RunOptions(workers=workers, until="matrix", echo=lambda line: None)) if r.ran]
    return {"study": study, "wall": result.seconds, "cpu": _cpu() - cpu, "all_cpu": _all_cpu() - total,
            "load": (load + os.getloadavg()[0]) / 2}


def figures(study: Any) -> Any:
    from opaque_knapsack.reports import episodes_df

    frame = episodes_df([study.folder.matrix_logs])
    keys = ["train", "runtime", "difficulty", "task_id"]
    return frame.sort_values(keys).set_index(keys)[[key for key in SCORE_KEYS if key in frame.columns]]


def run_baseline(study: Any, log_dir: str) -> dict[str, Any]:
    """mockllm replaying the one-worker matrix's conversations, one task per condition, the same options."""
    from eval_throughput import conversations_of, replay
    from inspect_ai import Task, eval_set
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.log import read_eval_log
    from inspect_ai.scorer import match

    tasks, turns = [], 0
    for number, path in enumerate(sorted(study.folder.matrix_logs.glob("*.eval"))):
        episodes = conversations_of([read_eval_log(str(path))])
        turns += sum(len(conversation) for _, conversation, _ in episodes)
        conversations = {sample_id: conversation for sample_id, conversation, _ in episodes}
        dataset = MemoryDataset([Sample(id=sample_id, input=text, target="x") for sample_id, _, text in episodes])
        tasks.append(Task(name=f"replay_{number}", dataset=dataset, solver=replay(conversations), scorer=match()))
    matrix = study.spec.matrix
    cpu, started = _cpu(), time.perf_counter()
    success, _ = eval_set(tasks, model="mockllm/model", log_dir=log_dir, max_tasks=len(tasks),
                          max_connections=matrix.max_connections, **INSPECT_OPTIONS)
    assert success
    return {"wall": time.perf_counter() - started, "cpu": _cpu() - cpu, "turns": turns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=100, help="tasks per difficulty (default 100: 800 episodes)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the second run (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="study-benchmark-") as scratch:
        root = Path(scratch)
        one = run_study(root / "one", args.num, 1)
        many = run_study(root / "many", args.num, args.workers)
        a, b = figures(one["study"]), figures(many["study"])
        base = run_baseline(one["study"], str(root / "baseline"))
        turns = int(a["steps"].sum())
    print_table(args, one, many, base, turns, len(a), a.equals(b))


def print_table(args: argparse.Namespace, one: dict, many: dict, base: dict, turns: int, episodes: int, same: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    ratio = many["wall"] / one["wall"]
    table = Table(title=(
        f"The study's offline matrix: {episodes} episodes (2 scripted students x 2 runtimes x easy, medium x "
        f"{args.num}), {os.cpu_count()} cores; Inspect options of all runs: "
        f"{', '.join(f'{k}={v!r}' for k, v in INSPECT_OPTIONS.items())}, max_connections 64"
    ))
    for column in ("", "1 worker", f"{args.workers} workers", "baseline (Inspect alone: mockllm replay)", "goal"):
        table.add_column(column, justify="right")
    table.add_row("matrix wall time", f"{one['wall']:.1f} s", f"{many['wall']:.1f} s", f"{base['wall']:.1f} s", "")
    table.add_row(f"wall time, {args.workers} workers / 1", "", f"{ratio:.2f}", "", "<= 0.65")
    table.add_row("per-episode figures", "", "identical" if same else "DIFFERENT", "", "identical")
    table.add_row("CPU: this process + its finished child processes", f"{one['all_cpu']:.0f} s", f"{many['all_cpu']:.0f} s", "", "")
    table.add_row("machine load average (1 min, start and end)", f"{one['load']:.1f}", f"{many['load']:.1f}", "", "")
    table.add_row("turns", str(turns), "", str(base["turns"]), "")
    table.add_row("harness CPU per turn (this process)", f"{1000 * one['cpu'] / max(turns, 1):.2f} ms", "",
                  f"{1000 * base['cpu'] / max(base['turns'], 1):.2f} ms", "")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
