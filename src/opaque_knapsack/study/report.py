"""The report stage: every report of the matrix, and `report/README.md`, which puts them on one page.

The reports themselves are the `report` command's (``write_reports``): per-
condition statistics, the paired comparisons of the aligned conditions, the
results table and the figures. The page links each of them, and each
condition's log, which `inspect view` opens.
"""

from __future__ import annotations

import os
from pathlib import Path

from opaque_knapsack.study import adapters
from opaque_knapsack.study.context import Study

__all__ = ["write_report_page"]

FIGURES = ("cost_performance", "behaviour")


def write_report_page(study: Study) -> Path:
    """Write the reports under report/ and the page that gathers them; returns the page."""
    out = study.folder.report
    written = adapters.write_reports(study.folder.matrix_logs, out)
    page = out / "README.md"
    page.write_text(_page(study, written, out), encoding="utf-8")
    return page


def _page(study: Study, written: dict[str, Path], out: Path) -> str:
    from opaque_knapsack import __version__

    logs = sorted(study.folder.matrix_logs.glob("*.eval"))
    parts = [
        f"# {study.spec.reports.title}\n",
        f"From `{study.spec_path.name}` ({study.spec.profile} profile), opaque-knapsack {__version__}: "
        f"{len(logs)} conditions of the matrix (students x runtimes x difficulties).\n",
        "## Results\n",
        _read(written.get("table_markdown")) or "_No results table: the conditions do not make one (see the statistics)._\n",
        "## Figures\n",
    ]
    for name in FIGURES:
        if f"{name}_png" in written:
            parts.append(f"![{name}]({_link(written[f'{name}_png'], out)})\n")
            parts.append(f"{_read(written.get(f'{name}_caption')).strip()} ([PDF]({_link(written.get(f'{name}_pdf'), out)}))\n")
    parts += [
        "## Per-condition statistics\n",
        _read(written.get("stats_markdown")),
        "## Paired comparisons (aligned conditions, by task)\n",
        "```text\n" + _read(written.get("compare_text")).strip() + "\n```\n",
        "## Logs\n",
        f"Open every condition in Inspect's viewer: `inspect view --log-dir {_link(study.folder.matrix_logs, out)}` "
        f"(the teachers': `inspect view --log-dir {_link(study.folder.teacher_logs, out)}`).\n",
    ]
    parts += [f"- [{log.name}]({_link(log, out)})" for log in logs]
    return "\n".join(parts) + "\n"


def _read(path: Path | None) -> str:
    return path.read_text(encoding="utf-8") if path is not None and path.is_file() else ""


def _link(path: Path | None, out: Path) -> str:
    return os.path.relpath(path, out) if path is not None else ""
