"""The two report figures: cost-performance trade-off and behavioural signatures.

Both must read in print: in greyscale and for colour-blind readers. Colour
(the Okabe-Ito palette, made for colour-vision deficiencies) carries the
training semantics, and never alone: the runtime is also fill (filled =
persistent, open or hatched = stateless), and the difficulty is the marker
shape (cost-performance) or the row of panels (behaviour). Conditions are
told apart by these encodings and one legend outside the axes, so no label
is printed over a point or a bar however many conditions there are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from opaque_knapsack.records import BASE_TRAIN, DIFFICULTIES, PERSISTENT, RUNTIMES, STATELESS, ScoreKey, semantics_of
from opaque_knapsack.reports.bootstrap import bootstrap_mean_ci
from opaque_knapsack.reports.errors import ReportError
from opaque_knapsack.reports.runs import Run

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGURE_RESAMPLES = 5_000
# Okabe & Ito (2008): distinguishable with every common colour-vision
# deficiency; blue and orange also differ in lightness, so they part in grey.
TRAIN_COLOURS = {PERSISTENT: "#0072B2", STATELESS: "#E69F00", BASE_TRAIN: "#7F7F7F"}
OTHER_COLOURS = ("#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000")
STATELESS_HATCH = "///"
# error bars' line style per training semantics: parts them in grey when colours do not
TRAIN_LINESTYLES = {PERSISTENT: "-", STATELESS: "--", BASE_TRAIN: ":"}
OTHER_LINESTYLES = ("-.", (0, (5, 1, 1, 1)), (0, (1, 3)))
DIFFICULTY_MARKERS = dict(zip(DIFFICULTIES, ("o", "^", "s"), strict=True))
OTHER_MARKERS = ("D", "v", "P", "X")
BEHAVIOUR_PANELS = (
    (ScoreKey.STATE_UTILIZATION, "State utilization", "state reuses per episode"),
    (ScoreKey.REIMPORT_RATE, "Re-import rate", "share of steps re-importing"),
    (ScoreKey.SYMBOL_LIFESPAN, "Context symbol lifespan", "turns"),
)
COST_PERFORMANCE_CAPTION = (
    "Cost-performance trade-off. Each point is one condition: mean optimality (agent value / optimal "
    "value, %) against mean output tokens per episode (log scale), with 95% percentile bootstrap "
    "confidence intervals over episodes on both axes. Colour: the student's training semantics (a run "
    "without them, such as a teacher, is named by its model); "
    "filled marker: persistent runtime, open marker: stateless runtime; marker shape: difficulty."
)
BEHAVIOUR_CAPTION = (
    "Behavioural signatures per condition: means per episode with 95% percentile bootstrap confidence "
    "intervals over episodes. State utilization: references per episode to a name an earlier turn "
    "bound, which the interpreter still held when the step ran (a stateless runtime serves none). "
    "Re-import rate: share of the steps after the first whose code imports a module an earlier step "
    "already imported. Context symbol lifespan: mean distance, in turns, from a reference to a name "
    "an earlier turn bound back to the turn that last bound it (0 when there are none). Colour: the "
    "student's training semantics (a run without them, such as a teacher, is named by its model); "
    "hatched bars: stateless runtime; one row of panels per "
    "difficulty. '0' marks a mean of exactly zero; 'n/a' a condition without values."
)


def _pyplot():  # noqa: ANN202 - matplotlib's module type
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _pick(key: str, fixed: dict[str, str], spare: Sequence[str], seen: dict[str, str]) -> str:
    """A fixed style for known names, the next spare one for others (stable per figure)."""
    if key in fixed:
        return fixed[key]
    if key not in seen:
        seen[key] = spare[len(seen) % len(spare)]
    return seen[key]


class _Styles:
    """Colour per training semantics and marker per difficulty, consistent within a figure."""

    def __init__(self) -> None:
        self._colours: dict[str, str] = {}
        self._markers: dict[str, str] = {}
        self._linestyles: dict[str, object] = {}

    def colour(self, train: str) -> str:
        return _pick(train, TRAIN_COLOURS, OTHER_COLOURS, self._colours)

    def linestyle(self, train: str) -> object:
        return _pick(train, TRAIN_LINESTYLES, OTHER_LINESTYLES, self._linestyles)  # type: ignore[arg-type]

    def marker(self, difficulty: str) -> str:
        return _pick(difficulty, DIFFICULTY_MARKERS, OTHER_MARKERS, self._markers)


def _mean_ci(run: Run, metric: str, scale: float = 1.0) -> tuple[float, float, float]:
    values = run.episodes[metric].dropna().to_numpy(dtype=float) * scale
    if values.size == 0:
        return (math.nan, math.nan, math.nan)
    low, high = bootstrap_mean_ci(values, resamples=FIGURE_RESAMPLES)
    return (float(values.mean()), low, high)


def _train_name(train: str) -> str:
    """Legend text: a student by its training semantics; a run without them (a teacher) by its model."""
    if train == BASE_TRAIN:
        return "base model"
    return f"{train}-trained" if train in RUNTIMES else train


def _ordered(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _fresh_each_step(runtime: str) -> bool:
    """Drawn open or hatched: a runtime whose state does not persist (an unknown one is drawn filled)."""
    semantics = semantics_of(runtime)
    return semantics is not None and not semantics.persists_state


def _legend_handles(runs: Sequence[Run], styles: _Styles, *, bars: bool) -> list:  # noqa: ANN401
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list = []
    for train in _ordered([r.condition.train for r in runs]):
        if bars:
            handles.append(Patch(facecolor=styles.colour(train), edgecolor="black", label=_train_name(train)))
        else:
            handles.append(Line2D([], [], color=styles.colour(train), linestyle=styles.linestyle(train),
                                  linewidth=2, label=_train_name(train)))
    for runtime in _ordered([r.condition.runtime for r in runs]):
        stateless = _fresh_each_step(runtime)
        if bars:
            handles.append(Patch(facecolor="white", edgecolor="black", hatch=STATELESS_HATCH if stateless else "",
                                 label=f"{runtime} runtime"))
        else:
            handles.append(Line2D([], [], marker="o", linestyle="", markersize=8, markeredgewidth=1.6,
                                  markerfacecolor="white" if stateless else "black", markeredgecolor="black",
                                  label=f"{runtime} runtime ({'open' if stateless else 'filled'})"))
    if not bars:
        for difficulty in _ordered([r.condition.difficulty for r in runs]):
            handles.append(Line2D([], [], marker=styles.marker(difficulty), linestyle="", markersize=8,
                                  markerfacecolor="grey", markeredgecolor="black", label=difficulty))
    return handles


def cost_performance_figure(runs: Sequence[Run]) -> Figure:
    """Mean optimality (%) against output tokens per episode (log x), 95% bootstrap CIs."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 4.6), layout="constrained")
    styles = _Styles()
    plotted = sum(_plot_condition(ax, run, styles) for run in runs)
    ax.set_xscale("log")
    ax.margins(x=0.12, y=0.08)
    ax.set_xlabel("output tokens per episode (mean, log scale)")
    ax.set_ylabel("mean optimality (%)")
    ax.set_title("Cost-performance trade-off (95% bootstrap CIs)")
    ax.grid(True, which="both", alpha=0.3)
    if plotted:
        fig.legend(handles=_legend_handles(runs, styles, bars=False), loc="outside right center",
                   fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, "no episodes with output tokens", ha="center", va="center", transform=ax.transAxes)
    return fig


def _plot_condition(ax: Axes, run: Run, styles: _Styles) -> bool:
    y, y_low, y_high = _mean_ci(run, ScoreKey.OPTIMALITY, 100.0)
    x, x_low, x_high = _mean_ci(run, ScoreKey.OUTPUT_TOKENS)
    if math.isnan(y) or math.isnan(x) or x <= 0:
        return False
    colour = styles.colour(run.condition.train)
    stateless = _fresh_each_step(run.condition.runtime)
    container = ax.errorbar(
        x, y,
        xerr=[[x - x_low], [x_high - x]], yerr=[[y - y_low], [y_high - y]],
        fmt=styles.marker(run.condition.difficulty), markersize=9, capsize=3, color=colour,
        markerfacecolor="white" if stateless else colour, markeredgewidth=1.8, elinewidth=1.2,
        alpha=0.95, label=run.label,
    )
    for line in container.lines[2]:
        line.set_linestyle(styles.linestyle(run.condition.train))
    return True


def behaviour_figure(runs: Sequence[Run]) -> Figure:
    """State utilization, re-import rate and symbol lifespan per condition (bars, 95% CIs).

    One row of panels per difficulty; within a panel, one group per training
    semantics with a bar per runtime, so the tick labels are short and flat.
    """
    plt = _pyplot()
    difficulties = _ordered([r.condition.difficulty for r in runs])
    trains = _ordered([r.condition.train for r in runs])
    fig, axes = plt.subplots(
        len(difficulties), 3, figsize=(11, 0.4 + 3.1 * len(difficulties)), layout="constrained",
        squeeze=False, sharex=True,
    )
    styles = _Styles()
    for row, difficulty in enumerate(difficulties):
        subset = [r for r in runs if r.condition.difficulty == difficulty]
        for column, (metric, title, unit) in enumerate(BEHAVIOUR_PANELS):
            ax = axes[row][column]
            _behaviour_panel(ax, subset, trains, metric, styles)
            ax.set_title(f"{title} ({difficulty})" if len(difficulties) > 1 else title, fontsize=10)
            ax.set_ylabel(unit)
    fig.suptitle("Behavioural signatures by training and runtime semantics (95% bootstrap CIs)")
    fig.legend(handles=_legend_handles(runs, styles, bars=True), loc="outside lower center",
               ncol=len(trains) + 2, fontsize=9, frameon=False)
    return fig


def _behaviour_panel(ax: Axes, runs: Sequence[Run], trains: list[str], metric: str, styles: _Styles) -> None:
    runtimes = _ordered([r.condition.runtime for r in runs]) or [PERSISTENT]
    width = 0.8 / len(runtimes)
    top = 0.0
    marks: list[tuple[float, str]] = []
    for group, train in enumerate(trains):
        for slot, runtime in enumerate(runtimes):
            position = group - 0.4 + width * (slot + 0.5)
            match = [r for r in runs if (r.condition.train, r.condition.runtime) == (train, runtime)]
            mean, low, high = _mean_ci(match[0], metric) if match else (math.nan,) * 3
            if math.isnan(mean):
                marks.append((position, "n/a" if match else ""))
                continue
            ax.bar(position, mean, width=width * 0.92, color=styles.colour(train), edgecolor="black",
                   hatch=STATELESS_HATCH if _fresh_each_step(runtime) else "",
                   yerr=[[mean - low], [high - mean]], capsize=3, error_kw={"elinewidth": 1.2})
            top = max(top, high)
            if mean == 0:
                marks.append((position, "0"))
    for position, text in marks:
        if text:
            ax.text(position, 0, text, ha="center", va="bottom", fontsize=8, color="black")
    ax.set_ylim(0, max(top * 1.12, 0.1))
    ax.set_xticks(range(len(trains)), [_train_name(t).replace(" ", "\n", 1).replace("-", "-\n", 1) for t in trains],
                  fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)


def write_figures(runs: Sequence[Run], out_dir: str | Path, formats: Sequence[str] = ("png", "pdf")) -> dict[str, Path]:
    """Write both figures in each format and each one's caption as text next to it.

    Returns {"cost_performance_png": path, ..., "behaviour_caption": path}.
    """
    if not runs:
        raise ReportError("no runs to plot")
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    captions = {"cost_performance": COST_PERFORMANCE_CAPTION, "behaviour": BEHAVIOUR_CAPTION}
    for name, build in (("cost_performance", cost_performance_figure), ("behaviour", behaviour_figure)):
        fig = build(runs)
        # lay out once and freeze it, so each format does not redo the layout
        engine = fig.get_layout_engine()
        if engine is not None:
            engine.execute(fig)
            fig.set_layout_engine("none")
        try:
            for fmt in formats:
                path = out / f"{name}.{fmt}"
                fig.savefig(path, dpi=150)
                written[f"{name}_{fmt}"] = path
        finally:
            plt.close(fig)
        written[f"{name}_caption"] = out / f"{name}.caption.txt"
        written[f"{name}_caption"].write_text(captions[name] + "\n", encoding="utf-8")
    return written
