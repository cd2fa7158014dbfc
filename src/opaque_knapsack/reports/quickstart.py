"""Everything the quickstart writes at its end, from one log directory."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from opaque_knapsack.reports.compare import compare_runs, render_comparison
from opaque_knapsack.reports.figures import write_figures
from opaque_knapsack.reports.runs import Run, load_runs
from opaque_knapsack.reports.stats import render_stats, summarize_runs

if TYPE_CHECKING:
    import pandas as pd

QUICKSTART_METRICS = ("optimality", "total_tokens")


def summarize(log_paths: str | Path | Sequence[str | Path]) -> "pd.DataFrame":
    """One row per condition with the stats columns, for logs or log directories."""
    paths = [log_paths] if isinstance(log_paths, str | Path) else list(log_paths)
    return summarize_runs(load_runs(paths))


def aligned_pairs(runs: Sequence[Run]) -> list[tuple[Run, Run]]:
    """(persistent->persistent, stateless->stateless) per difficulty and agent where both exist."""
    pairs = []
    for run in runs:
        c = run.condition
        if c.train == c.runtime == "persistent":
            partner = [
                r for r in runs
                if r.condition.train == r.condition.runtime == "stateless"
                and (r.condition.difficulty, r.condition.agent) == (c.difficulty, c.agent)
            ]
            if partner:
                pairs.append((run, partner[0]))
    return pairs


def write_quickstart_reports(log_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Stats (text, markdown), the aligned-condition comparisons and both figures.

    Returns the written files by name: stats_text, stats_markdown,
    compare_text, compare_json, cost_performance_png/pdf, behaviour_png/pdf.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs([log_dir])
    summary = summarize_runs(runs)
    written: dict[str, Path] = {}
    for key, name, fmt in (("stats_text", "stats.txt", "text"), ("stats_markdown", "stats.md", "markdown")):
        path = out / name
        path.write_text(render_stats(summary, fmt), encoding="utf-8")  # type: ignore[arg-type]
        written[key] = path
    texts: list[str] = []
    records: list[dict[str, object]] = []
    for run_a, run_b in aligned_pairs(runs):
        for metric in QUICKSTART_METRICS:
            comparison = compare_runs(run_a, run_b, metric)
            texts.append(render_comparison(comparison))
            records.append(comparison.to_dict())
    if not texts:
        found = ", ".join(r.label for r in runs) or "none"
        texts.append(
            "No comparison: the logs lack a persistent->persistent and stateless->stateless pair "
            f"of the same difficulty (conditions found: {found}).\n"
        )
    written["compare_text"] = out / "compare.txt"
    written["compare_text"].write_text("\n".join(texts), encoding="utf-8")
    written["compare_json"] = out / "compare.json"
    written["compare_json"].write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.update(write_figures(runs, out))
    return written
