"""Reports on opaque-knapsack eval logs: stats, paired comparisons, LaTeX table, figures.

Everything reads Inspect logs (files or directories) through
``inspect_ai.analysis``; a directory of several evals is split into one run per
condition (model, training semantics, runtime, difficulty, agent). Attributes
load lazily so that importing the CLI stays instant.
"""

from __future__ import annotations

from opaque_knapsack._lazy import exports_of, lazy_attributes

_EXPORTS = exports_of(__name__, {
    "errors": ("ReportError", "ReportWarning"),
    "runs": ("Condition", "Run", "load_runs"),
    "all_reports": ("summarize", "write_reports"),
    "episodes": ("episodes_df",),
    "columns": ("EpisodeScores", "ConditionColumns", "EpisodeStatus", "EpisodeColumns"),
    "stats": ("summarize_runs", "render_stats"),
    "compare": ("PairedComparison", "compare_runs", "compare_values", "rank_biserial", "render_comparison"),
    "bootstrap": ("bootstrap_mean_ci",),
    "results_table": ("TableSpec", "TableCell", "load_spec", "build_rows", "render_latex", "render_markdown", "table_from_logs"),
    "table_layout": ("TableLayout",),
    "figures": ("write_figures",),
})

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)
def __dir__() -> list[str]:
    return __all__
