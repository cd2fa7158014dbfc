"""``opaque-knapsack quickstart``: the whole 2x2 offline, in about a minute, for any task family.

A top-level module because it spans the areas: it generates a family's tasks
and runs its task (found through the registry, ``families.py``) and writes the
reports (reports), none of which should import another for it.
"""

from __future__ import annotations

import argparse
from itertools import product
from pathlib import Path
from typing import Any

from opaque_knapsack._cli import add_command, require_at_least
from opaque_knapsack.families import DEFAULT_FAMILY, FAMILIES
from opaque_knapsack.records import RUNTIMES, SCRIPTED_PROVIDER, ScoreKey, runtime_of

CONDITIONS = tuple(product(RUNTIMES, RUNTIMES))
"""(train, runtime) of the 2x2: scripted/<train> in the <runtime> runtime."""

SUMMARY_COLUMNS = (
    (ScoreKey.OPTIMALITY, "optimality", "{:.3f}"),
    (ScoreKey.SOLVED, "solved", "{:.0%}"),
    (ScoreKey.NAME_ERROR_EPISODE, "NameError", "{:.0%}"),
    (ScoreKey.STEPS, "steps", "{:.1f}"),
    (ScoreKey.TOOL_CALLS, "tool calls", "{:.1f}"),
    (ScoreKey.OUTPUT_TOKENS, "out tokens", "{:,.0f}"),
    (ScoreKey.TOTAL_TOKENS, "tokens", "{:,.0f}"),
)


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "quickstart",
        run_quickstart,
        help="run the offline 2x2 (scripted policies x runtimes) end to end",
        description=(
            "Generate a small task set of a task family (knapsack unless --family), evaluate both "
            "scripted policies (scripted/persistent, scripted/stateless) in both runtimes through "
            "Inspect, print a per-condition summary and write the reports. Needs "
            "no API key, GPU or network."
        ),
    )
    parser.add_argument(
        "--family", default=DEFAULT_FAMILY, help=f"Task family: {', '.join(FAMILIES)} (default: %(default)s)."
    )
    parser.add_argument("--out", default="runs/quickstart", help="Output folder for tasks, logs and reports (default: %(default)s).")
    parser.add_argument("--num", type=int, default=20, help="Instances to generate and evaluate per condition (default: %(default)s).")
    parser.add_argument("--difficulty", default=None, help="Preset to generate (default: the family's first, knapsack's easy).")
    parser.add_argument("--seed-start", type=int, default=123456789, help="Seed of the first instance (default: %(default)s, the paper's).")
    parser.add_argument("--max-samples", type=int, default=32, help="Samples run concurrently per eval (default: %(default)s).")
    parser.add_argument(
        "--display",
        default="auto",
        choices=("auto", "full", "rich", "plain", "log", "none"),
        help="Inspect's progress display; auto: rich progress when stdout is a terminal, else none "
        "(default: %(default)s).",
    )
    parser.add_argument("--no-reports", action="store_true", help="Skip the stats/compare/figures reports.")


def run_quickstart(args: argparse.Namespace) -> int:
    from rich.console import Console

    from opaque_knapsack.errors import CommandError
    from opaque_knapsack.families import UnknownFamily, task_family

    try:
        family = task_family(args.family)
    except UnknownFamily as error:
        raise CommandError(str(error)) from None
    presets = family.task_generator().presets
    if args.difficulty is not None and args.difficulty not in presets:
        raise CommandError(
            f"--difficulty {args.difficulty!r} is not a preset of the {family.name} family (choices: {', '.join(presets)})"
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 120))
    require_at_least(args, 1, "num")
    out = Path(args.out)
    logs = quickstart(
        out,
        family=family.name,
        num=args.num,
        difficulty=args.difficulty,
        seed_start=args.seed_start,
        max_samples=args.max_samples,
        display=progress_display(args.display, console.is_terminal),
        console=console,
    )
    if len(logs) < len(CONDITIONS) or any(log.status == "cancelled" for log in logs):
        # Inspect's eval_set turns Ctrl-C into cancelled (or missing) logs and
        # returns; a table of nothing and reports of half a run would mislead.
        raise KeyboardInterrupt
    failed = [log for log in logs if log.status != "success"]
    console.print(summary_table(logs, family.name))
    if failed:
        raise CommandError(
            f"{len(failed)} evaluation(s) did not succeed: "
            + ", ".join(f"{log.location} ({log.status}: {log.error.message if log.error else ''})" for log in failed)
        )
    if not args.no_reports:
        _write_reports(out, console)
    console.print(f"\nLogs: {out / 'logs'}\nOpen them with:  [bold]inspect view --log-dir {out / 'logs'}[/bold]")
    return 0


def progress_display(choice: str, is_terminal: bool) -> str:
    """Inspect's display for the run: its live progress for a person at a terminal.

    The 2x2 takes half a minute; silence for that long reads as a hang. When
    stdout is a file or a pipe, progress bars would only clutter it.
    """
    if choice != "auto":
        return choice
    return "rich" if is_terminal else "none"


def quickstart(
    out: Path,
    *,
    family: str = DEFAULT_FAMILY,
    num: int = 20,
    difficulty: str | None = None,
    seed_start: int = 123456789,
    max_samples: int = 32,
    display: str = "none",
    console: Any = None,
) -> list[Any]:
    """Generate a family's tasks and run the 2x2; returns the four EvalLogs.

    Runs through ``eval_set``, so re-running into the same folder resumes: the
    conditions already logged are kept, not run again.
    """
    from inspect_ai import eval_set

    from opaque_knapsack.families import TaskRequest, task_family

    declaration = task_family(family)
    generator = declaration.task_generator()
    written = generator.write(out, TaskRequest(num, seed_start, difficulty, run_name="quickstart"))
    if console is not None:
        console.print(f"Tasks: {written.folder} ({dict(written.counts)})")
        console.print("Running the 2x2: scripted/persistent and scripted/stateless x persistent and stateless runtimes ...")
    task = declaration.load(declaration.task)
    tasks = [task(tasks=str(out), difficulty=written.label, runtime=runtime) for runtime in RUNTIMES]
    _, logs = eval_set(
        tasks,
        model=[f"{SCRIPTED_PROVIDER}/{runtime}" for runtime in RUNTIMES],
        log_dir=str(out / "logs"),
        display=display,  # type: ignore[arg-type]
        max_samples=max_samples,
        max_sandboxes=max_samples,
        max_tasks=4,
        retry_attempts=1,
        # running metrics only feed a progress display; computing them re-copies
        # every finished sample's scores each time
        score_display=display != "none",
    )
    order = {condition: index for index, condition in enumerate(CONDITIONS)}
    return sorted(logs, key=lambda log: order.get(_condition(log), len(order)))


def _condition(log: Any) -> tuple[str, str]:
    train = log.eval.model.split("/")[-1]
    return train, runtime_of(log.samples[0] if log.samples else None, log) or "?"


def condition_means(log: Any) -> dict[str, float]:
    """Mean of each score key from a log's results."""
    means: dict[str, float] = {}
    for score in log.results.scores if log.results else []:
        metric = score.metrics.get("mean")
        if metric is not None:
            means[score.name] = metric.value
    return means


def summary_table(logs: list[Any], family: str = DEFAULT_FAMILY) -> Any:
    from rich.table import Table

    title = "Opaque Knapsack" if family == DEFAULT_FAMILY else family
    table = Table(title=f"{title} 2x2: means per episode (NameError: share of episodes with one)")
    table.add_column("train -> runtime", no_wrap=True)
    for _, header, _ in SUMMARY_COLUMNS:
        table.add_column(header, justify="right")
    for log in logs:
        train, runtime = _condition(log)
        means = condition_means(log)
        table.add_row(
            f"{train} -> {runtime}",
            *(fmt.format(means[key]) if key in means else "?" for key, _, fmt in SUMMARY_COLUMNS),
        )
    return table


def _write_reports(out: Path, console: Any) -> None:
    from opaque_knapsack.reports.all_reports import write_reports

    written = write_reports(out / "logs", out / "reports")
    console.print("Reports: " + ", ".join(str(path) for path in written.values()))
