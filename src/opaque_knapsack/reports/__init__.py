"""Reports on opaque-knapsack eval logs: stats, paired comparisons, LaTeX table, figures.

Everything reads Inspect logs (files or directories) through
``inspect_ai.analysis``; a directory of several evals is split into one run per
condition (model, training semantics, runtime, difficulty, agent). Attributes
load lazily so that importing the CLI stays instant.
"""

from __future__ import annotations

from opaque_knapsack._lazy import lazy_attributes

_EXPORTS = {
    "ReportError": "opaque_knapsack.reports.errors",
    "ReportWarning": "opaque_knapsack.reports.errors",
    "Condition": "opaque_knapsack.reports.runs",
    "Run": "opaque_knapsack.reports.runs",
    "load_runs": "opaque_knapsack.reports.runs",
    "summarize": "opaque_knapsack.reports.all_reports",
    "write_reports": "opaque_knapsack.reports.all_reports",
    "episodes_df": "opaque_knapsack.reports.episodes",
    "EpisodeScores": "opaque_knapsack.reports.columns",
    "ConditionColumns": "opaque_knapsack.reports.columns",
    "EpisodeStatus": "opaque_knapsack.reports.columns",
    "EpisodeColumns": "opaque_knapsack.reports.columns",
    "summarize_runs": "opaque_knapsack.reports.stats",
    "render_stats": "opaque_knapsack.reports.stats",
    "PairedComparison": "opaque_knapsack.reports.compare",
    "compare_runs": "opaque_knapsack.reports.compare",
    "compare_values": "opaque_knapsack.reports.compare",
    "rank_biserial": "opaque_knapsack.reports.compare",
    "render_comparison": "opaque_knapsack.reports.compare",
    "bootstrap_mean_ci": "opaque_knapsack.reports.bootstrap",
    "TableSpec": "opaque_knapsack.reports.results_table",
    "TableCell": "opaque_knapsack.reports.results_table",
    "load_spec": "opaque_knapsack.reports.results_table",
    "build_rows": "opaque_knapsack.reports.results_table",
    "render_latex": "opaque_knapsack.reports.results_table",
    "render_markdown": "opaque_knapsack.reports.results_table",
    "table_from_logs": "opaque_knapsack.reports.results_table",
    "TableLayout": "opaque_knapsack.reports.table_layout",
    "write_figures": "opaque_knapsack.reports.figures",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
def __dir__() -> list[str]:
    return __all__
