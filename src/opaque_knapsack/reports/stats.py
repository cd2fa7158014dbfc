"""The side-by-side stats table: one column per run, one line per metric."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from opaque_knapsack.records import ScoreKey
from opaque_knapsack.reports.metrics import STAT_ROWS
from opaque_knapsack.reports.runs import Run

if TYPE_CHECKING:
    import pandas as pd

StatsFormat = Literal["text", "markdown", "csv", "json"]
CONDITION_COLUMNS = ("label", "model", "train", "runtime", "difficulty", "agent", "episodes", "scored", "errored")


def summarize_runs(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: its condition, episode counts and the mean of each stat."""
    import pandas as pd

    records = []
    for run in runs:
        c = run.condition
        scored = int(run.episodes[ScoreKey.OPTIMALITY].notna().sum()) if run.n_episodes else 0
        record: dict[str, object] = {
            "label": run.label,
            "model": c.model,
            "train": c.train,
            "runtime": c.runtime,
            "difficulty": c.difficulty,
            "agent": c.agent,
            "episodes": run.n_episodes,
            "scored": scored,
            "errored": run.errored,
        }
        for row in STAT_ROWS:
            values = run.episodes[row.metric].dropna()
            record[row.key] = float(values.mean()) * row.scale if len(values) else math.nan
        records.append(record)
    columns = [*CONDITION_COLUMNS, *(row.key for row in STAT_ROWS)]
    return pd.DataFrame.from_records(records, columns=columns)


def _cell(value: object, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _grid(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and body of the transposed table (metrics down, runs across)."""
    header = ["Metric", *summary["label"].astype(str)]
    body: list[list[str]] = []
    for name, label in (("model", "Model"), ("difficulty", "Difficulty"), ("episodes", "Episodes"), ("scored", "Scored episodes"), ("errored", "Errored samples (not averaged)")):
        body.append([label, *(_cell(v, 0) for v in summary[name].tolist())])
    for row in STAT_ROWS:
        body.append([row.label, *(_cell(float(v), row.digits) for v in summary[row.key].tolist())])
    return header, body


def render_stats(summary: pd.DataFrame, fmt: StatsFormat = "text") -> str:
    """The summary frame as aligned text, a markdown table, CSV (one row per run) or JSON."""
    if fmt == "json":
        records = json.loads(summary.to_json(orient="records"))
        return json.dumps({"runs": records}, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        summary.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        return buffer.getvalue()
    header, body = _grid(summary)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", *["---:"] * (len(header) - 1)]) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines) + "\n"
    if fmt == "text":
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
            return "  ".join([first, *rest]).rstrip()
        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(header), rule, *(line(r) for r in body)]) + "\n"
    raise ValueError(f"unknown format {fmt!r}")
