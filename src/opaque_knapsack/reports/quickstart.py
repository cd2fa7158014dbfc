"""Former home of the quickstart's reports; kept so existing imports work.

Everything lives in :mod:`opaque_knapsack.reports.all_reports` now.
"""

from __future__ import annotations

from opaque_knapsack.reports.all_reports import ALIGNED_METRICS as QUICKSTART_METRICS
from opaque_knapsack.reports.all_reports import aligned_pairs, summarize
from opaque_knapsack.reports.all_reports import write_reports as write_quickstart_reports

__all__ = ["QUICKSTART_METRICS", "aligned_pairs", "summarize", "write_quickstart_reports"]
