"""The main results table (LaTeX, booktabs) from a JSON spec.

Spec (JSON object; unknown fields are an error):

    {"caption": "...", "label": "tab:main_results",
     "score_scale": "auto" | "fraction" | "percent",
     "solved_format": "count" | "percent",
     "cells": [{"difficulty": "easy", "train": "persistent", "runtime": "stateless",
                "path": "logs/easy", "metrics_path": "episodes/", "score_override": 0.62}]}

``path`` is an Inspect log, a directory of logs (the cell then picks the run
whose difficulty/train/runtime match it), a summary JSON with
``metrics.score.mean``, ``num_tasks_solved``, ``num_tasks_executed``,
``average_steps``, ``average_total_tokens``, ``average_runtime``, or one of
the paper's per-episode result directories (``*.trace.json`` / ``*.json``
pairs; ``episode_results`` says which keys are read). Relative paths are
relative to the spec file.

Per-episode scores feed a 95% percentile bootstrap CI (5,000 resamples), shown
as ± half its width. They come from ``metrics_path`` when given, else from
``path`` when that holds episodes (a log or a per-episode directory).
``metrics_path`` may be an Inspect log (optimality per episode), a per-episode
result directory, a JSON list of numbers or of objects with a ``score`` (or
``optimality``) key, a JSON object holding such a list under ``scores``, or
JSONL with one number or such object per line. ``score_scale`` says whether
scores are fractions (0-1) or percentages; ``auto`` treats values <= 1.5 as
fractions. ``caption`` is LaTeX and is not escaped.

How the table looks is a ``TableLayout`` (``table_layout.py``): the paper's
``main_table.py`` layout by default, this package's earlier one as
``layout=COMPACT``.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opaque_knapsack.records import ScoreKey
from opaque_knapsack.reports.bootstrap import bootstrap_mean_ci
from opaque_knapsack.reports.episode_results import episode_figures, is_episode_dir, read_episode_dir
from opaque_knapsack.reports.errors import ReportError, ReportWarning, validation_message
from opaque_knapsack.reports.runs import Condition, Run, load_runs
from opaque_knapsack.reports.table_layout import DEFAULT_LAYOUT, TableLayout

TABLE_RESAMPLES = 5_000
AUTO_FRACTION_LIMIT = 1.5
DEFAULT_CAPTION = (
    "Main results on Opaque Knapsack by training semantics and runtime semantics. "
    r"Score is mean optimality (\%) $\pm$ half the 95\% bootstrap CI; "
    "best value per difficulty in bold; ? marks a missing value."
)


class TableCell(BaseModel):
    """One row of the table: a condition and where its numbers come from."""

    model_config = ConfigDict(extra="forbid")

    difficulty: str
    train: str
    runtime: str
    path: Path
    metrics_path: Path | None = None
    score_override: float | None = None


class TableSpec(BaseModel):
    """The table: caption, label, number conventions and its cells in row order."""

    model_config = ConfigDict(extra="forbid")

    caption: str = DEFAULT_CAPTION
    label: str = "tab:main_results"
    score_scale: Literal["auto", "fraction", "percent"] = "auto"
    solved_format: Literal["count", "percent"] = "count"
    cells: list[TableCell] = Field(min_length=1)


class _SummaryScore(BaseModel):
    model_config = ConfigDict(extra="allow")
    mean: float | None = None


class _SummaryMetrics(BaseModel):
    model_config = ConfigDict(extra="allow")
    score: _SummaryScore | None = None


class SummaryFile(BaseModel):
    """A run's summary JSON as other tools write it (extra fields kept)."""

    model_config = ConfigDict(extra="allow")

    metrics: _SummaryMetrics | None = None
    num_tasks_solved: float | None = None
    num_tasks_executed: float | None = None
    average_steps: float | None = None
    average_total_tokens: float | None = None
    average_runtime: float | None = None


@dataclass
class CellValues:
    """The numbers of one row (None where unknown); score in percent."""

    score: float | None = None
    score_ci: float | None = None  # half-width of the 95% CI, percent
    solved: float | None = None
    executed: float | None = None
    steps: float | None = None
    tokens: float | None = None
    time_s: float | None = None

    @property
    def solved_rate(self) -> float | None:
        if self.solved is None or not self.executed:
            return None
        return 100.0 * self.solved / self.executed

    @property
    def score_per_1k(self) -> float | None:
        if self.score is None or not self.tokens:
            return None
        return self.score / (self.tokens / 1000.0)


Row = tuple[TableCell, CellValues]


@dataclass(frozen=True)
class Column:
    """A table column: header, how to read and format it, which way is best."""

    key: str
    latex: str
    markdown: str
    better: Literal["higher", "lower", "none"]


COLUMNS: tuple[Column, ...] = (
    Column("score", r"Score (\%)", "Score (%)", "higher"),
    Column("solved", "Solved", "Solved", "higher"),
    Column("steps", "Steps", "Steps", "lower"),
    Column("tokens", "Tokens", "Tokens", "lower"),
    Column("time_s", "Time (s)", "Time (s)", "lower"),
    Column("score_per_1k", "Score / 1k tok.", "Score / 1k tok.", "higher"),
)


# --- spec loading -----------------------------------------------------------


def load_spec(path: str | Path) -> TableSpec:
    """Read and validate a spec file; relative cell paths become relative to it."""
    spec_path = Path(path)
    try:
        raw = json.loads(spec_path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ReportError(f"{path}: table spec not found") from error
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: table spec is not valid JSON ({error})") from error
    return parse_spec(raw, source=str(path), base=spec_path.parent)


def parse_spec(raw: Any, *, source: str = "spec", base: Path | None = None) -> TableSpec:
    """Validate a spec object; relative paths are resolved against ``base``."""
    try:
        spec = TableSpec.model_validate(raw)
    except ValidationError as error:
        raise ReportError(validation_message(source, error, "table spec")) from error
    if base is not None:
        for cell in spec.cells:
            cell.path = cell.path if cell.path.is_absolute() else base / cell.path
            if cell.metrics_path is not None and not cell.metrics_path.is_absolute():
                cell.metrics_path = base / cell.metrics_path
    return spec


# --- cell values --------------------------------------------------------------


class _RunCache:
    """Loads each log path once per table."""

    def __init__(self, preloaded: dict[str, list[Run]] | None = None) -> None:
        self._runs: dict[str, list[Run]] = dict(preloaded or {})

    def runs(self, path: Path) -> list[Run]:
        key = str(path)
        if key not in self._runs:
            self._runs[key] = load_runs([path])
        return self._runs[key]


def _is_inspect_log(path: Path) -> tuple[bool, Any]:
    """(is a log, parsed JSON or None) for an existing file."""
    if path.is_dir() or path.suffix == ".eval":
        return True, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        if path.suffix == ".jsonl":
            return False, None
        raise ReportError(f"{path}: neither an Inspect log nor a JSON file") from None
    if isinstance(data, dict) and "eval" in data and "version" in data:
        return True, None
    return False, data


def _cell_run(cell: TableCell, path: Path, cache: _RunCache) -> Run:
    runs = cache.runs(path)
    if len(runs) == 1:
        return runs[0]
    wanted = {"difficulty": cell.difficulty, "train": cell.train, "runtime": cell.runtime}
    matches = [r for r in runs if all(getattr(r.condition, k) == v for k, v in wanted.items())]
    if len(matches) != 1:
        found = "; ".join(_describe(r.condition) for r in runs)
        how = "no" if not matches else "more than one"
        raise ReportError(
            f"{path}: {how} run matches cell {cell.difficulty}/{cell.train}/{cell.runtime} (runs found: {found})"
        )
    return matches[0]


def _describe(c: Condition) -> str:
    return f"{c.difficulty}/{c.train}/{c.runtime} [{c.model}]"


def _to_percent(value: float | None, scale: str, reference: float | None = None) -> float | None:
    if value is None or math.isnan(value):
        return None
    probe = value if reference is None else reference
    fraction = scale == "fraction" or (scale == "auto" and probe <= AUTO_FRACTION_LIMIT)
    return value * 100.0 if fraction else value


def _mean_or_none(values: Any) -> float | None:
    values = values.dropna()
    return float(values.mean()) if len(values) else None


def _values_from_run(run: Run) -> tuple[CellValues, list[float]]:
    episodes = run.episodes
    scores = episodes[ScoreKey.OPTIMALITY].dropna()
    values = CellValues(
        score=float(scores.mean()) * 100.0 if len(scores) else None,
        solved=float(episodes[ScoreKey.SOLVED].dropna().sum()) if len(scores) else None,
        executed=float(len(scores)) if len(scores) else None,
        steps=_mean_or_none(episodes[ScoreKey.STEPS]),
        tokens=_mean_or_none(episodes[ScoreKey.TOTAL_TOKENS]),
        time_s=_mean_or_none(episodes["total_time"]),
    )
    return values, [float(s) for s in scores]


def _values_from_summary(path: Path, data: Any, scale: str) -> CellValues:
    try:
        summary = SummaryFile.model_validate(data)
    except ValidationError as error:
        raise ReportError(validation_message(str(path), error, "summary JSON")) from error
    mean = summary.metrics.score.mean if summary.metrics and summary.metrics.score else None
    return CellValues(
        score=_to_percent(mean, scale),
        solved=summary.num_tasks_solved,
        executed=summary.num_tasks_executed,
        steps=summary.average_steps,
        tokens=summary.average_total_tokens,
        time_s=summary.average_runtime,
    )


def _episode_scores_from_json(path: Path, data: Any) -> list[float]:
    """Per-episode scores from a JSON/JSONL scores file (see module docstring)."""
    if data is None:  # JSONL
        items = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ReportError(f"{path}:{number}: not valid JSON ({error.msg})") from error
    elif isinstance(data, dict) and isinstance(data.get("scores"), list):
        items = data["scores"]
    elif isinstance(data, list):
        items = data
    else:
        raise ReportError(f"{path}: expected a list of per-episode scores (or {{\"scores\": [...]}})")
    scores = []
    for index, item in enumerate(items):
        value = item
        if isinstance(item, dict):
            value = item.get("score", item.get(ScoreKey.OPTIMALITY))
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ReportError(f"{path}: episode {index} has no numeric 'score' or 'optimality'")
        scores.append(float(value))
    return scores


def _missing(path: Path, what: str, cell: TableCell, strict: bool) -> None:
    """A spec file that is not there: an error with ``strict``, else a warning naming it."""
    message = f"{path}: {what} not found (cell {cell.difficulty}/{cell.train}/{cell.runtime})"
    if strict:
        raise ReportError(message + "; without --strict the row prints ?")
    warnings.warn(message + "; its row prints ?", ReportWarning, stacklevel=3)


def cell_values(
    cell: TableCell, spec: TableSpec, cache: _RunCache | None = None, *, strict: bool = False
) -> CellValues:
    """The numbers for one cell, with its score CI where per-episode scores exist.

    A cell whose file is missing prints ``?`` in every figure of its row, as
    the paper's table script does, with a warning that names the file;
    ``strict`` makes it an error.
    """
    cache = cache or _RunCache()
    if not cell.path.exists():
        _missing(cell.path, "cell file", cell, strict)
        return CellValues()
    if cell.metrics_path is not None and not cell.metrics_path.exists():
        _missing(cell.metrics_path, "metrics file", cell, strict)
        return CellValues()
    values, episode_scores = _path_values(cell, spec, cache)
    if cell.metrics_path is not None:
        episode_scores = _metrics_scores(cell, spec, cache)
    if cell.score_override is not None:
        values.score = _to_percent(cell.score_override, spec.score_scale)
    if len(episode_scores) >= 2:
        low, high = bootstrap_mean_ci(episode_scores, resamples=TABLE_RESAMPLES)
        reference = max(abs(s) for s in episode_scores)
        low_pct = _to_percent(low, spec.score_scale, reference)
        high_pct = _to_percent(high, spec.score_scale, reference)
        if low_pct is not None and high_pct is not None:
            values.score_ci = (high_pct - low_pct) / 2.0
    return values


def _path_values(cell: TableCell, spec: TableSpec, cache: _RunCache) -> tuple[CellValues, list[float]]:
    """A cell's figures from its ``path``, with the per-episode scores it holds (none for a summary)."""
    if is_episode_dir(cell.path):
        return _values_from_episodes(cell.path, spec.score_scale)
    is_log, data = _is_inspect_log(cell.path)
    if is_log:
        values, scores = _values_from_run(_cell_run(cell, cell.path, cache))
        return values, _on_scale(scores, spec)
    return _values_from_summary(cell.path, data, spec.score_scale), []


def _on_scale(log_scores: list[float], spec: TableSpec) -> list[float]:
    """A log's per-episode optimality (fractions) on the spec's score scale."""
    return [s * 100.0 for s in log_scores] if spec.score_scale == "percent" else log_scores


def _values_from_episodes(path: Path, scale: str) -> tuple[CellValues, list[float]]:
    """A per-episode result directory's figures; the score scale is judged on all its scores."""
    figures = episode_figures(path)
    scores = figures.scores
    reference = max(abs(score) for score in scores)
    values = CellValues(
        score=_to_percent(math.fsum(scores) / len(scores), scale, reference),
        solved=figures.solved,
        executed=float(len(scores)),
        steps=figures.steps,
        tokens=figures.tokens,
    )
    return values, scores


def _metrics_scores(cell: TableCell, spec: TableSpec, cache: _RunCache) -> list[float]:
    path = cell.metrics_path
    assert path is not None
    if not path.exists():
        raise ReportError(f"{path}: metrics file not found (cell {cell.difficulty}/{cell.train}/{cell.runtime})")
    if is_episode_dir(path):
        return [result.score for result in read_episode_dir(path)]
    is_log, data = _is_inspect_log(path)
    if is_log:
        _, scores = _values_from_run(_cell_run(cell, path, cache))
        return _on_scale(scores, spec)
    return _episode_scores_from_json(path, data)


# --- rendering ----------------------------------------------------------------


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    replacements = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(replacements.get(ch, ch) for ch in text)


def _decimals(key: str, layout: TableLayout) -> int:
    """How many decimals a figure prints with in this layout."""
    return {
        "score": layout.score_decimals,
        "steps": layout.steps_decimals,
        "tokens": 0,
        "time_s": layout.time_decimals,
        "score_per_1k": layout.per_1k_decimals,
    }[key]


def _comparable(values: CellValues, key: str, by_rate: bool, layout: TableLayout) -> float | None:
    """The value the bold decision compares: unrounded, or as printed, as the layout says."""
    if key == "solved":
        return values.solved_rate if by_rate else values.solved
    value = getattr(values, key)
    if value is None or math.isnan(value):
        return None
    return value if layout.bold_on == "unrounded" else round(value, _decimals(key, layout))


def _best_flags(rows: Sequence[Row], layout: TableLayout) -> list[dict[str, bool]]:
    """Per row, per column: is this the best value of its difficulty group?"""
    flags: list[dict[str, bool]] = [dict() for _ in rows]
    groups: dict[str, list[int]] = {}
    for index, (cell, _) in enumerate(rows):
        groups.setdefault(cell.difficulty, []).append(index)
    columns = [c for c in COLUMNS if c.better != "none" and (c.key != "solved" or layout.bold_solved)]
    for members in groups.values():
        # solved compares rates when every row knows its episode count, else counts
        by_rate = all(rows[i][1].solved_rate is not None for i in members if rows[i][1].solved is not None)
        for column in columns:
            present = [(i, _comparable(rows[i][1], column.key, by_rate, layout)) for i in members]
            present = [(i, v) for i, v in present if v is not None]
            if len(present) < 2:
                continue
            pick: Callable[..., float] = max if column.better == "higher" else min
            best = pick(v for _, v in present)
            for i, v in present:
                flags[i][column.key] = math.isclose(v, best, rel_tol=1e-9, abs_tol=1e-12)
    return flags


def _format(values: CellValues, key: str, spec: TableSpec, layout: TableLayout, latex: bool) -> str:
    pct = r"\%" if latex else "%"
    if key == "solved":
        if values.solved is None:
            return "?"
        if spec.solved_format == "percent":
            rate = values.solved_rate
            return "?" if rate is None else f"{rate:.1f}{pct}"
        show_of = layout.solved_count == "of_executed" and values.executed
        return f"{values.solved:.0f}" + (f"/{values.executed:.0f}" if show_of else "")
    value = getattr(values, key)
    if value is None or math.isnan(value):
        return "?"
    return f"{value:,.{_decimals(key, layout)}f}"


def _score_ci(values: CellValues, layout: TableLayout, latex: bool) -> str:
    if values.score_ci is None or values.score is None:
        return ""
    return (r" $\pm$ " if latex else " ± ") + f"{values.score_ci:.{layout.score_decimals}f}"


def _figure_cells(values: CellValues, best: dict[str, bool], spec: TableSpec, layout: TableLayout, latex: bool) -> list[str]:
    cells = []
    for column in COLUMNS:
        text = _format(values, column.key, spec, layout, latex)
        if best.get(column.key):
            text = rf"\textbf{{{text}}}" if latex else f"**{text}**"
        if column.key == "score":
            text += _score_ci(values, layout, latex)
        cells.append(text)
    return cells


def order_rows(rows: Sequence[Row], layout: TableLayout) -> list[Row]:
    """Rows in the layout's order: spec order, or grouped by difficulty (first appearance), stable."""
    if layout.row_order == "spec":
        return list(rows)
    groups = list(dict.fromkeys(cell.difficulty for cell, _ in rows))
    return sorted(rows, key=lambda row: groups.index(row[0].difficulty))


def _runs_of_difficulty(rows: Sequence[Row]) -> list[list[int]]:
    """Indices of consecutive rows sharing a difficulty."""
    runs: list[list[int]] = []
    for index, (cell, _) in enumerate(rows):
        if runs and rows[runs[-1][0]][0].difficulty == cell.difficulty:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def _difficulty_cell(difficulty: str, position: int, span: int, layout: TableLayout) -> str:
    """The difficulty column of a group's row: the label on its first row only."""
    if position:
        return ""
    text = latex_escape(difficulty)
    if layout.difficulty_label == "rotated_multirow":
        return rf"\multirow{{{span}}}{{*}}{{\rotatebox[origin=c]{{90}}{{{text}}}}}"
    return text


def _header_row(layout: TableLayout) -> str:
    names = ["Difficulty", "Train", "Runtime", *(c.latex for c in COLUMNS)]
    return " & ".join(rf"\textbf{{{n}}}" if layout.bold_headers else n for n in names) + r" \\"


def render_latex(spec: TableSpec, rows: Sequence[Row], layout: TableLayout = DEFAULT_LAYOUT) -> str:
    """The table as LaTeX in the given layout (the paper's by default); best per difficulty in bold."""
    rows = order_rows(rows, layout)
    flags = _best_flags(rows, layout)
    lines = [rf"\begin{{{layout.float_env}}}[{layout.placement}]", r"\centering"]
    lines += [layout.font_size] if layout.font_size else []
    lines += [
        rf"\caption{{{spec.caption}}}",
        rf"\label{{{spec.label}}}",
        rf"\begin{{tabular}}{{{layout.column_spec(len(COLUMNS))}}}",
        r"\toprule",
        _header_row(layout),
        r"\midrule",
    ]
    for group_index, members in enumerate(_runs_of_difficulty(rows)):
        if group_index:
            lines.append(r"\midrule")
        for position, index in enumerate(members):
            cell, values = rows[index]
            cells = [
                _difficulty_cell(cell.difficulty, position, len(members), layout),
                latex_escape(cell.train),
                latex_escape(cell.runtime),
                *_figure_cells(values, flags[index], spec, layout, latex=True),
            ]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\end{{{layout.float_env}}}"]
    return "\n".join(lines) + "\n"


def render_markdown(spec: TableSpec, rows: Sequence[Row], layout: TableLayout = DEFAULT_LAYOUT) -> str:
    """The same table as GitHub markdown, for a quick look (the layout's order, numbers and bold)."""
    rows = order_rows(rows, layout)
    flags = _best_flags(rows, layout)
    header = ["Difficulty", "Train", "Runtime", *(c.markdown for c in COLUMNS)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * len(COLUMNS)) + "|",
    ]
    for (cell, values), best in zip(rows, flags, strict=True):
        cells = [cell.difficulty, cell.train, cell.runtime, *_figure_cells(values, best, spec, layout, latex=False)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def build_rows(spec: TableSpec, preloaded: dict[str, list[Run]] | None = None, *, strict: bool = False) -> list[Row]:
    """Each cell with its numbers, in spec order (``strict``: a missing file is an error)."""
    cache = _RunCache(preloaded)
    return [(cell, cell_values(cell, spec, cache, strict=strict)) for cell in spec.cells]


def spec_from_runs(runs: Sequence[Run], path: Path) -> TableSpec:
    """A spec with one cell per condition of a log directory, in table order."""
    if not runs:
        raise ReportError(f"{path}: no runs found")
    keys: dict[tuple[str, str, str], Condition] = {}
    for run in sorted(runs, key=lambda r: r.condition.sort_key()):
        c = run.condition
        key = (c.difficulty, c.train, c.runtime)
        if key in keys:
            raise ReportError(
                f"{path}: two runs share difficulty/train/runtime {'/'.join(key)} "
                f"({_describe(keys[key])} and {_describe(c)}); write a spec that names each log"
            )
        keys[key] = c
    cells = [TableCell(difficulty=d, train=t, runtime=r, path=path) for d, t, r in keys]
    return TableSpec(cells=cells)


def table_from_logs(log_dir: str | Path) -> tuple[TableSpec, list[Row]]:
    """Spec and rows for every condition in a log directory (the 2x2, or 3x2 with base)."""
    path = Path(log_dir)
    runs = load_runs([path])
    spec = spec_from_runs(runs, path)
    return spec, build_rows(spec, preloaded={str(path): runs})
