"""The two report figures: cost-performance trade-off and behavioural signatures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from opaque_knapsack.reports.bootstrap import bootstrap_mean_ci
from opaque_knapsack.reports.errors import ReportError
from opaque_knapsack.reports.runs import Run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_RESAMPLES = 5_000
TRAIN_COLOURS = {"persistent": "#1f77b4", "stateless": "#ff7f0e", "base": "#7f7f7f"}
OTHER_COLOURS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
STATELESS_HATCH = "//"
BEHAVIOUR_PANELS = (
    ("state_utilization", "State utilization", "carried references served / episode"),
    ("reimport_rate", "Re-import rate", "share of later steps re-importing"),
    ("symbol_lifespan", "Context symbol lifespan", "turns back to the binding"),
)


def _pyplot():  # noqa: ANN202 - matplotlib's module type
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _colour(train: str, seen: dict[str, str]) -> str:
    if train in TRAIN_COLOURS:
        return TRAIN_COLOURS[train]
    if train not in seen:
        seen[train] = OTHER_COLOURS[len(seen) % len(OTHER_COLOURS)]
    return seen[train]


def _mean_ci(run: Run, metric: str, scale: float = 1.0) -> tuple[float, float, float]:
    values = run.episodes[metric].dropna().to_numpy(dtype=float) * scale
    if values.size == 0:
        return (math.nan, math.nan, math.nan)
    low, high = bootstrap_mean_ci(values, resamples=FIGURE_RESAMPLES)
    return (float(values.mean()), low, high)


def _train_legend(ax, runs: Sequence[Run], others: dict[str, str], *, hatch: bool) -> None:  # noqa: ANN001
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    for train in dict.fromkeys(r.condition.train for r in runs):
        colour = _colour(train, others)
        handles.append(Patch(facecolor=colour, edgecolor="black", label=f"trained {train}"))
    runtimes = dict.fromkeys(r.condition.runtime for r in runs)
    for runtime in runtimes:
        stateless = runtime == "stateless"
        if hatch:
            handles.append(
                Patch(facecolor="white", edgecolor="black", hatch=STATELESS_HATCH if stateless else "",
                      label=f"{runtime} runtime")
            )
        else:
            handles.append(
                Line2D([], [], marker="s" if stateless else "o", linestyle="", markerfacecolor="white" if stateless else "black",
                       markeredgecolor="black", label=f"{runtime} runtime")
            )
    ax.legend(handles=handles, fontsize=8, frameon=False, loc="best")


def cost_performance_figure(runs: Sequence[Run]) -> "Figure":
    """Mean optimality (%) against output tokens per episode (log x), 95% bootstrap CIs."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    others: dict[str, str] = {}
    plotted = 0
    placed: list[tuple[float, float]] = []  # (log10 x, y) of labelled points
    for run in runs:
        y, y_low, y_high = _mean_ci(run, "optimality", 100.0)
        x, x_low, x_high = _mean_ci(run, "output_tokens")
        if math.isnan(y) or math.isnan(x) or x <= 0:
            continue
        stateless = run.condition.runtime == "stateless"
        colour = _colour(run.condition.train, others)
        ax.errorbar(
            x, y,
            xerr=[[x - x_low], [x_high - x]], yerr=[[y - y_low], [y_high - y]],
            fmt="s" if stateless else "o", markersize=8, capsize=3, color=colour,
            markerfacecolor="white" if stateless else colour, markeredgewidth=1.6,
        )
        # stack the labels of points that (nearly) coincide instead of overprinting them
        near = sum(1 for px, py in placed if abs(px - math.log10(x)) < 0.08 and abs(py - y) < 1.5)
        placed.append((math.log10(x), y))
        ax.annotate(run.label, (x, y), xytext=(6, 6 - 11 * near), textcoords="offset points", fontsize=8)
        plotted += 1
    ax.set_xscale("log")
    ax.margins(x=0.25, y=0.1)  # room for the point labels
    ax.set_xlabel("output tokens per episode (mean, log scale)")
    ax.set_ylabel("mean optimality (%)")
    ax.set_title("Cost-performance trade-off (95% bootstrap CIs)")
    ax.grid(True, which="both", alpha=0.3)
    if plotted:
        _train_legend(ax, runs, others, hatch=False)
    else:
        ax.text(0.5, 0.5, "no episodes with output tokens", ha="center", va="center", transform=ax.transAxes)
    return fig


def behaviour_figure(runs: Sequence[Run]) -> "Figure":
    """State utilization, re-import rate and symbol lifespan per condition (bars, 95% CIs)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), layout="constrained")
    others: dict[str, str] = {}
    positions = list(range(len(runs)))
    for ax, (metric, title, unit) in zip(axes, BEHAVIOUR_PANELS, strict=True):
        for position, run in zip(positions, runs, strict=True):
            mean, low, high = _mean_ci(run, metric)
            if math.isnan(mean):
                continue
            ax.bar(
                position, mean, width=0.7, color=_colour(run.condition.train, others), edgecolor="black",
                hatch=STATELESS_HATCH if run.condition.runtime == "stateless" else "",
                yerr=[[mean - low], [high - mean]], capsize=3,
            )
        ax.set_xticks(positions, [r.label for r in runs], rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Behavioural signatures by train → runtime condition (95% bootstrap CIs)")
    _train_legend(axes[0], runs, others, hatch=True)
    return fig


def write_figures(runs: Sequence[Run], out_dir: str | Path, formats: Sequence[str] = ("png", "pdf")) -> dict[str, Path]:
    """Write both figures in each format; returns {"cost_performance_png": path, ...}."""
    if not runs:
        raise ReportError("no runs to plot")
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
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
    return written
