"""Benchmark: time of the report commands on 4 synthetic logs x 100 episodes.

Run: python benchmarks/reports.py [--episodes 100] [--repeat 3]

The logs are written with inspect_ai.log (EvalLog, write_eval_log) and look
like the task's: knapsack_scorer dict scores, model usage, a 14-message CodeAct
conversation per episode. Each command runs as the user runs it (a fresh
`opaque-knapsack` process, imports included) and again in-process (warm
imports). The baseline, measured in the same run, is the irreducible cost of
reading the same logs with inspect_ai.log.read_eval_log alone (fresh process
and in-process). Goal: the four commands under 10 s in total on a 2-core box.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from timing import best_of

CONDITIONS = (("persistent", "persistent"), ("persistent", "stateless"), ("stateless", "persistent"), ("stateless", "stateless"))


def write_logs(log_dir: Path, episodes: int, seed: int = 0) -> list[Path]:
    """Four synthetic 2x2 logs with realistic per-episode scores and conversations."""
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalResults, EvalSample, EvalSpec, write_eval_log
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, ModelUsage
    from inspect_ai.scorer import Score

    rng = np.random.default_rng(seed)
    observation = "Observation:\n" + '{"class": "A", "value": 10, "weight": 5}\n' * 8
    code = "```python\nitems = json.loads(list_items())\nfor i in items[:5]:\n    print(inspect(i))\n```\n" * 3
    paths = []
    for train, runtime in CONDITIONS:
        samples = []
        for i in range(episodes):
            opt = float(min(1.0, rng.beta(5, 2) + 0.1))
            out_tok = int(rng.integers(200, 4000))
            in_tok = out_tok * 8
            value = {
                "optimality": opt, "solved": float(opt >= 1.0), "capacity_utilization": float(rng.uniform(0.5, 1)),
                "items_inspected": float(rng.integers(5, 40)), "steps": float(rng.integers(3, 15)),
                "tool_calls": float(rng.integers(5, 60)), "input_tokens": float(in_tok),
                "output_tokens": float(out_tok), "total_tokens": float(in_tok + out_tok),
                "name_error_episode": float(rng.random() < 0.3), "name_error_count": float(rng.integers(0, 3)),
                "state_utilization": float(rng.poisson(1.0)), "reimport_rate": float(rng.uniform(0, 1)),
                "symbol_lifespan": float(rng.uniform(0, 6)),
            }
            messages = [ChatMessageSystem(content="You are a CodeAct agent."), ChatMessageUser(content="Pack the knapsack.")]
            for turn in range(6):
                messages.append(ChatMessageAssistant(content=f"Step {turn}.\n{code}"))
                messages.append(ChatMessageUser(content=observation))
            task_id = f"knapsack-{i:010d}"
            model = f"scripted/{train}"
            samples.append(EvalSample(
                id=task_id, epoch=1, input="Pack the knapsack.", target="", messages=messages,
                metadata={"task_id": task_id, "difficulty": "easy"}, scores={"knapsack_scorer": Score(value=value)},
                model_usage={model: ModelUsage(input_tokens=in_tok, output_tokens=out_tok, total_tokens=in_tok + out_tok)},
                total_time=float(rng.uniform(1, 30)), working_time=float(rng.uniform(1, 30)),
            ))
        spec = EvalSpec(
            created=datetime(2026, 1, 1, tzinfo=UTC).isoformat(), task="opaque_knapsack/knapsack",
            task_args={"runtime": runtime, "difficulty": "easy", "agent": "codeact"},
            dataset=EvalDataset(name="knapsack", samples=episodes), model=f"scripted/{train}",
            config=EvalConfig(epochs=1), metadata={"train": train},
        )
        log = EvalLog(status="success", eval=spec, samples=samples,
                      results=EvalResults(total_samples=episodes, completed_samples=episodes))
        # Inspect's own naming (timestamp_task_id), so listing needs no header reads
        path = log_dir / f"2026-01-01T00-00-0{len(paths)}+00-00_knapsack_{train}-{runtime}.eval"
        write_eval_log(log, str(path))
        paths.append(path)
    return paths


def _subprocess(argv: list[str], cpu: list[float]) -> Callable[[], object]:
    """Run argv in a fresh process; appends the child's CPU seconds (user + sys) to cpu."""
    import resource

    def run() -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="episodes per log (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; the best time is kept (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        logs = write_logs(root / "logs", args.episodes)
        log_dir = str(root / "logs")
        pp, ss = str(logs[0]), str(logs[3])
        cli = [sys.executable, "-m", "opaque_knapsack.cli"]
        read_all = (
            "import sys\nfrom inspect_ai.log import read_eval_log\n"
            "for p in sys.argv[1:]: read_eval_log(p)\n"
        )
        commands = {
            "baseline: read_eval_log x4": [sys.executable, "-c", read_all, *map(str, logs)],
            "stats": [*cli, "stats", log_dir],
            "compare": [*cli, "compare", pp, ss],
            "table --from-logs": [*cli, "table", "--from-logs", log_dir],
            "figures (png+pdf)": [*cli, "figures", log_dir, "--out", str(root / "figs")],
            "report (all in one process)": [*cli, "report", log_dir, "--out", str(root / "all")],
        }
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        cold = {name: best_of(args.repeat, _subprocess(argv, cpu[name])) for name, argv in commands.items()}

        # in-process, imports already paid
        from inspect_ai.log import read_eval_log

        from opaque_knapsack.reports import (
            compare_runs,
            load_runs,
            render_latex,
            render_stats,
            summarize_runs,
            table_from_logs,
            write_figures,
            write_reports,
        )

        def compare() -> None:
            compare_runs(load_runs([pp])[0], load_runs([ss])[0], "optimality")

        def report(out: Path) -> None:
            write_reports(log_dir, out)
            render_latex(*table_from_logs(log_dir))

        def table() -> None:
            render_latex(*table_from_logs(log_dir))

        warm = {
            "baseline: read_eval_log x4": best_of(args.repeat, lambda: [read_eval_log(str(p)) for p in logs]),
            "stats": best_of(args.repeat, lambda: render_stats(summarize_runs(load_runs([log_dir])))),
            "compare": best_of(args.repeat, compare),
            "table --from-logs": best_of(args.repeat, table),
            "figures (png+pdf)": best_of(args.repeat, lambda: write_figures(load_runs([log_dir]), root / "figs2")),
            "report (all in one process)": best_of(args.repeat, lambda: report(root / "all2")),
        }
        size = sum(p.stat().st_size for p in logs) / 1e6

    print(f"4 logs x {args.episodes} episodes ({size:.1f} MB), best of {args.repeat}, {_cpus()} CPUs\n")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end: {load:.2f} (wall times grow with load; CPU times much less)\n")
    print(f"{'step':30}{'CLI wall (s)':>14}{'CLI CPU (s)':>14}{'in-process (s)':>16}")
    print("-" * 74)
    for name in commands:
        print(f"{name:30}{cold[name]:>14.2f}{min(cpu[name]):>14.2f}{warm[name]:>16.2f}")
    four = [k for k in commands if not k.startswith(("baseline", "report"))]
    total_cold = sum(cold[k] for k in four)
    total_cpu = sum(min(cpu[k]) for k in four)
    total_warm = sum(warm[k] for k in four)
    print("-" * 74)
    print(f"{'total of the four commands':30}{total_cold:>14.2f}{total_cpu:>14.2f}{total_warm:>16.2f}")
    verdict = "meets" if total_cold < 10 else "MISSES"
    print(f"\n{verdict} the goal: four commands under 10 s (separate CLI processes, imports included)")
    ratio = statistics.mean(cold[k] / cold["baseline: read_eval_log x4"] for k in four)
    print(f"per command, CLI wall over the read_eval_log baseline: {ratio:.1f}x")
    print(f"everything in one process (report): {cold['report (all in one process)']:.2f} s wall")
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
