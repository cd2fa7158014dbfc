"""Subcommands `stats`, `compare`, `table` and `figures` of `opaque-knapsack`."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from opaque_knapsack._cli import add_command
from opaque_knapsack.errors import CommandError
from opaque_knapsack.records import ScoreKey
from opaque_knapsack.reports.table_layout import DEFAULT_LAYOUT, LAYOUTS

SELECT_FIELDS = ("model", "train", "runtime", "difficulty", "agent")


def register(subparsers: Any) -> None:
    """Add the report commands to the `opaque-knapsack` parser."""
    logs_help = "Inspect log files (.eval/.json) or directories of logs; a directory is split by condition"

    stats = add_command(
        subparsers,
        "stats",
        _handle_stats,
        help="side-by-side trace statistics, one column per run/condition",
        description="Per-run means of the episode metrics (success, optimality, tokens, NameErrors, behaviour).",
    )
    stats.add_argument("logs", nargs="+", metavar="LOG", help=logs_help)
    stats.add_argument("--format", choices=("text", "markdown", "csv", "json"), default="text", help="output format (default: text)")

    compare = add_command(
        subparsers,
        "compare",
        _handle_compare,
        help="paired comparison of two runs (Wilcoxon, rank-biserial, bootstrap CI)",
        description="Pairs episodes of A and B by task id and tests the per-episode metric A - B.",
    )
    compare.add_argument("a", metavar="A", help="log file or directory of run A (must hold one condition, or use --select-a)")
    compare.add_argument("b", metavar="B", help="log file or directory of run B (must hold one condition, or use --select-b)")
    compare.add_argument("--metric", default=ScoreKey.OPTIMALITY.value, help="per-episode metric, e.g. optimality, solved, steps, total_tokens (default: optimality)")
    compare.add_argument("--select-a", default="", metavar="K=V,...", help=f"pick A's condition from a directory by {', '.join(SELECT_FIELDS)}, e.g. train=persistent,runtime=persistent")
    compare.add_argument("--select-b", default="", metavar="K=V,...", help="pick B's condition the same way")
    compare.add_argument("--alpha", type=float, default=0.05, help="significance level of the verdict (default: 0.05)")
    compare.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples for the CI of the mean difference (default: 10000)")
    compare.add_argument("--seed", type=int, default=None, help="bootstrap seed (default: a fixed seed)")
    compare.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")

    table = add_command(
        subparsers,
        "table",
        _handle_table,
        help="the main results table as LaTeX (booktabs) from a JSON spec or a log directory",
        description="Writes the table to stdout: opaque-knapsack table SPEC.json > table.tex",
    )
    table.add_argument("spec", nargs="?", metavar="SPEC.json", help="table spec (caption, label, score_scale, solved_format, cells)")
    table.add_argument("--from-logs", metavar="DIR", help="build the spec from a log directory holding the 2x2 (or 3x2 with base) conditions")
    table.add_argument("--emit-spec", metavar="PATH", help="with --from-logs: also write the spec it built, to edit and reuse")
    table.add_argument("--format", choices=("latex", "markdown"), default="latex", help="output format (default: latex)")
    table.add_argument(
        "--layout", choices=tuple(LAYOUTS), default=DEFAULT_LAYOUT.name,
        help=f"how the table looks (default: {DEFAULT_LAYOUT.name}, the paper's main_table.py layout; "
        "compact: this package's one-column layout, Solved as 13/20, rows in spec order)",
    )
    table.add_argument("--strict", action="store_true", help="a spec cell whose file is missing is an error (default: its row prints ? and a warning names the file)")

    figures = add_command(
        subparsers,
        "figures",
        _handle_figures,
        help="cost-performance and behavioural-signature figures (PNG and PDF)",
        description="Writes cost_performance.{png,pdf} and behaviour.{png,pdf} into --out.",
    )
    figures.add_argument("logs", nargs="+", metavar="LOG", help=logs_help)
    figures.add_argument("--out", required=True, metavar="DIR", help="directory to write the figures into (created if missing)")
    figures.add_argument("--formats", default="png,pdf", help="comma-separated file formats (default: png,pdf)")

    report = add_command(
        subparsers,
        "report",
        _handle_report,
        help="all reports for one log directory in one go (stats, aligned comparisons, table, figures)",
        description="Writes stats.txt/.md, compare.txt/.json, table.tex/.md and the figures into --out.",
    )
    report.add_argument("log_dir", metavar="LOG_DIR", help="directory holding the 2x2 (or 3x2 with base) logs")
    report.add_argument("--out", required=True, metavar="DIR", help="directory to write the reports into (created if missing)")


@contextlib.contextmanager
def _reporting() -> Iterator[None]:
    """Turn ReportError into CommandError and print ReportWarnings as one line each."""
    from opaque_knapsack.reports.errors import ReportError, ReportWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ReportWarning)
        try:
            yield
        except ReportError as error:
            raise CommandError(str(error)) from error
        finally:
            for warning in caught:
                if issubclass(warning.category, ReportWarning):
                    print(f"warning: {warning.message}", file=sys.stderr)


def _handle_stats(args: argparse.Namespace) -> int:
    from opaque_knapsack.reports.runs import load_runs
    from opaque_knapsack.reports.stats import render_stats, summarize_runs

    with _reporting():
        runs = load_runs(args.logs)
        sys.stdout.write(render_stats(summarize_runs(runs), args.format))
    return 0


def _parse_selection(text: str, option: str) -> dict[str, str]:
    selection: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in SELECT_FIELDS:
            raise CommandError(f"{option}: expected KEY=VALUE with KEY one of {', '.join(SELECT_FIELDS)}, got {part!r}")
        selection[key.strip()] = value.strip()
    return selection


def _one_run(path: str, selection: dict[str, str], option: str) -> Any:
    from opaque_knapsack.reports.runs import load_runs

    runs = load_runs([path])
    chosen = [r for r in runs if all(getattr(r.condition, k) == v for k, v in selection.items())]
    if len(chosen) == 1:
        return chosen[0]
    found = "; ".join(
        ",".join(f"{k}={getattr(r.condition, k)}" for k in SELECT_FIELDS if getattr(r.condition, k)) for r in runs
    )
    problem = "no condition matches" if not chosen else f"{len(chosen)} conditions match"
    raise CommandError(f"{path}: {problem}; pick one with {option} (conditions: {found})")


def _handle_compare(args: argparse.Namespace) -> int:
    from opaque_knapsack.reports.bootstrap import DEFAULT_SEED
    from opaque_knapsack.reports.compare import compare_runs, render_comparison
    from opaque_knapsack.reports.metrics import resolve_metric
    from opaque_knapsack.reports.runs import label_runs

    try:
        metric = resolve_metric(args.metric)
    except ValueError as error:
        raise CommandError(f"--metric: {error}") from error
    if not 0 < args.alpha < 1:
        raise CommandError(f"--alpha must be between 0 and 1, got {args.alpha}")
    if args.resamples < 1:
        raise CommandError(f"--resamples must be at least 1, got {args.resamples}")
    with _reporting():
        run_a = _one_run(args.a, _parse_selection(args.select_a, "--select-a"), "--select-a")
        run_b = _one_run(args.b, _parse_selection(args.select_b, "--select-b"), "--select-b")
        label_runs([run_a, run_b])
        if run_a.condition.difficulty != run_b.condition.difficulty:
            print(
                f"warning: A is {run_a.condition.difficulty} and B is {run_b.condition.difficulty}: "
                "the same task id may name different instances",
                file=sys.stderr,
            )
        seed = DEFAULT_SEED if args.seed is None else args.seed
        comparison = compare_runs(run_a, run_b, metric, alpha=args.alpha, resamples=args.resamples, seed=seed)
        sys.stdout.write(render_comparison(comparison, args.format))
    return 0


def _handle_table(args: argparse.Namespace) -> int:
    from opaque_knapsack.reports.results_table import (
        build_rows,
        load_spec,
        render_latex,
        render_markdown,
        table_from_logs,
    )

    if bool(args.spec) == bool(args.from_logs):
        raise CommandError("give either SPEC.json or --from-logs DIR (exactly one)")
    if args.emit_spec and not args.from_logs:
        raise CommandError("--emit-spec only goes with --from-logs")
    render: Callable[..., str] = render_latex if args.format == "latex" else render_markdown
    layout = LAYOUTS[args.layout]
    with _reporting():
        if args.from_logs:
            spec, rows = table_from_logs(args.from_logs)
            if args.emit_spec:
                data = json.loads(spec.model_dump_json())
                Path(args.emit_spec).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        else:
            spec = load_spec(args.spec)
            rows = build_rows(spec, strict=args.strict)
        sys.stdout.write(render(spec, rows, layout))
    return 0


def _handle_figures(args: argparse.Namespace) -> int:
    from opaque_knapsack.reports.figures import write_figures
    from opaque_knapsack.reports.runs import load_runs

    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    unsupported = [f for f in formats if f not in ("png", "pdf", "svg")]
    if not formats or unsupported:
        raise CommandError(f"--formats: choose from png, pdf, svg (got {args.formats!r})")
    with _reporting():
        runs = load_runs(args.logs)
        for path in write_figures(runs, args.out, formats).values():
            print(path)
    return 0


def _handle_report(args: argparse.Namespace) -> int:
    from opaque_knapsack.reports.all_reports import write_reports

    with _reporting():
        for path in write_reports(args.log_dir, args.out).values():
            print(path)
    return 0
