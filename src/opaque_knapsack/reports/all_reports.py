"""Every report for one log directory, written in one go.

The single home of "write all the reports": ``opaque-knapsack report`` and the
quickstart both call :func:`write_reports`, so they always write the same set.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from opaque_knapsack.records import ScoreKey, semantics_of
from opaque_knapsack.reports.compare import compare_runs, render_comparison
from opaque_knapsack.reports.errors import ReportError, ReportWarning
from opaque_knapsack.reports.figures import write_figures
from opaque_knapsack.reports.runs import Condition, Run, load_runs
from opaque_knapsack.reports.stats import render_stats, summarize_runs

if TYPE_CHECKING:
    import pandas as pd

ALIGNED_METRICS = (ScoreKey.OPTIMALITY, ScoreKey.TOTAL_TOKENS)


def summarize(log_paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """One row per condition with the stats columns, for logs or log directories."""
    paths = [log_paths] if isinstance(log_paths, str | Path) else list(log_paths)
    return summarize_runs(load_runs(paths))


def aligned_pairs(runs: Sequence[Run]) -> list[tuple[Run, Run]]:
    """(persistent->persistent, stateless->stateless) per difficulty and agent where both exist."""
    pairs = []
    for run in runs:
        c = run.condition
        if _aligned(c, persists_state=True):
            partner = [
                r for r in runs
                if _aligned(r.condition, persists_state=False)
                and (r.condition.difficulty, r.condition.agent) == (c.difficulty, c.agent)
            ]
            if partner:
                pairs.append((run, partner[0]))
    return pairs


def _aligned(condition: Condition, *, persists_state: bool) -> bool:
    """Trained in the runtime it runs in, one that does (or does not) keep state between steps."""
    semantics = semantics_of(condition.runtime)
    return condition.aligned and semantics is not None and semantics.persists_state == persists_state


def write_reports(log_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Stats, the aligned-condition comparisons, the results table and both figures.

    Returns the written files by name: stats_text, stats_markdown,
    compare_text, compare_json, table_latex, table_markdown (when the
    conditions make a table), cost_performance_png/pdf, behaviour_png/pdf and
    the figures' captions. A table that cannot be built (two runs of the same
    condition) is a ReportWarning, not a failure: the other reports still hold.
    """
    from opaque_knapsack.reports.results_table import build_rows, render_latex, render_markdown, spec_from_runs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs([log_dir])
    summary = summarize_runs(runs)
    written: dict[str, Path] = {}
    for key, name, fmt in (("stats_text", "stats.txt", "text"), ("stats_markdown", "stats.md", "markdown")):
        written[key] = _write(out / name, render_stats(summary, fmt))  # type: ignore[arg-type]
    texts, records = _aligned_comparisons(runs)
    written["compare_text"] = _write(out / "compare.txt", "\n".join(texts))
    written["compare_json"] = _write(out / "compare.json", json.dumps(records, indent=2, ensure_ascii=False) + "\n")
    try:
        spec = spec_from_runs(runs, Path(log_dir))
        rows = build_rows(spec, preloaded={str(Path(log_dir)): runs})
    except ReportError as error:
        warnings.warn(f"no results table: {error}", ReportWarning, stacklevel=2)
    else:
        written["table_latex"] = _write(out / "table.tex", render_latex(spec, rows))
        written["table_markdown"] = _write(out / "table.md", render_markdown(spec, rows))
    written.update(write_figures(runs, out))
    return written


def _aligned_comparisons(runs: Sequence[Run]) -> tuple[list[str], list[dict[str, object]]]:
    texts: list[str] = []
    records: list[dict[str, object]] = []
    for run_a, run_b in aligned_pairs(runs):
        for metric in ALIGNED_METRICS:
            comparison = compare_runs(run_a, run_b, metric)
            texts.append(render_comparison(comparison))
            records.append(comparison.to_dict())
    if not texts:
        found = ", ".join(r.label for r in runs) or "none"
        texts.append(
            "No comparison: the logs lack a persistent->persistent and stateless->stateless pair "
            f"of the same difficulty (conditions found: {found}).\n"
        )
    return texts, records


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
