"""Paired comparison of two runs on one per-episode metric.

Episodes are paired by task id (the Inspect sample id); a task run over
several epochs counts once, with its epochs averaged. The figures: descriptive
statistics of A, B and A-B (the standard deviation is the sample one,
``ddof=1``: ``STD_DDOF``); the two-sided Wilcoxon signed-rank test; the
matched-pairs rank-biserial correlation r = (W+ - W-) / (W+ + W-) over the
non-zero differences (average ranks of |d| for ties), positive when A tends to
be higher; a percentile bootstrap CI of the mean difference. Differences are
rounded to 10 decimals first, so float noise neither breaks ties nor hides a
zero difference.

Beside the signed r, the figure the paper's compare script prints is kept
under its own name, ``paper_formula_r`` = 1 - 2W / (n(n+1)) with W = min(W+,
W-) (the statistic ``scipy.stats.wilcoxon`` returns; its default
``zero_method="wilcox"`` drops zero differences before ranking) and n the
number of pairs, zeros included (the length of the paired arrays the script
hands to scipy). It is not a signed effect size: without zero differences it
equals (1 + |r|) / 2, so it lies between 0.5 (no effect) and 1 and never says
which run is higher; zero differences, dropped from W but counted in n, push it
further toward 1. Set this output beside the paper's on that figure only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from opaque_knapsack.records import ScoreKey
from opaque_knapsack.reports.bootstrap import DEFAULT_SEED, bootstrap_mean_ci
from opaque_knapsack.reports.metrics import resolve_metric
from opaque_knapsack.reports.runs import Run

# Below this many non-zero differences the exact two-sided p-value cannot go
# under 2 / 2**5 = 0.0625, so no result can be significant at 0.05.
MIN_NONZERO_FOR_SIGNIFICANCE = 6
DIFFERENCE_DECIMALS = 10
STD_DDOF = 1  # every standard deviation printed is the sample one (n - 1 in the denominator)
PAPER_FORMULA = "1 - 2W/(n(n+1)), W = min(W+, W-), n = pairs"


@dataclass
class Describe:
    """Descriptive statistics of one sample (NaN where undefined)."""

    n: int
    mean: float
    std: float  # sample standard deviation (ddof=STD_DDOF)
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: np.ndarray) -> Describe:
        n = int(values.size)
        if n == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        std = float(np.std(values, ddof=STD_DDOF)) if n > 1 else math.nan
        return cls(n, float(np.mean(values)), std, float(np.median(values)), float(np.min(values)), float(np.max(values)))


@dataclass
class PairedComparison:
    """Every figure of a paired comparison; ``to_dict`` is its JSON form."""

    metric: str
    label_a: str
    label_b: str
    alpha: float
    n_a: int  # tasks in A (with a value)
    n_b: int
    n_pairs: int
    only_a: int  # tasks only in A
    only_b: int
    a: Describe
    b: Describe
    difference: Describe  # of A - B
    n_nonzero: int
    n_zero: int
    w_plus: float
    w_minus: float
    wilcoxon_statistic: float  # min(W+, W-), as scipy reports it
    p_value: float
    rank_biserial: float
    paper_formula_r: float  # 1 - 2W/(n(n+1)) as the paper's script computes it; see the module docstring
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    seed: int
    significant: bool | None
    verdict: str
    notes: list[str] = field(default_factory=list)
    std_ddof: int = STD_DDOF
    paper_formula: str = PAPER_FORMULA

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def rank_biserial(differences: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """(r, W+, W-) for paired differences: zeros dropped, average ranks of |d| for ties."""
    from scipy.stats import rankdata

    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return (math.nan, 0.0, 0.0)
    ranks = rankdata(np.abs(d), method="average")
    w_plus = float(ranks[d > 0].sum())
    w_minus = float(ranks[d < 0].sum())
    return ((w_plus - w_minus) / (w_plus + w_minus), w_plus, w_minus)


def paper_formula_r(w_plus: float, w_minus: float, n_pairs: int) -> float:
    """The paper's effect-size figure 1 - 2W/(n(n+1)), W = min(W+, W-), n = pairs (zeros included).

    Kept so a researcher can set this output beside the paper's; the signed
    rank-biserial (``rank_biserial``) is the figure to interpret. NaN when no
    difference is non-zero (scipy then has no statistic) or there are no pairs.
    """
    if n_pairs == 0 or w_plus + w_minus == 0:
        return math.nan
    return 1.0 - 2.0 * min(w_plus, w_minus) / (n_pairs * (n_pairs + 1))


def _per_task(run: Run, metric: str) -> dict[str, float]:
    frame = run.episodes[["task_id", metric]].dropna()
    means = frame.groupby("task_id", sort=True)[metric].mean()
    return {str(k): float(v) for k, v in means.items()}


def compare_runs(
    run_a: Run,
    run_b: Run,
    metric: str = ScoreKey.OPTIMALITY,
    *,
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = DEFAULT_SEED,
) -> PairedComparison:
    """Compare two runs on a metric (any name ``resolve_metric`` accepts)."""
    key = resolve_metric(metric)
    return compare_values(
        _per_task(run_a, key),
        _per_task(run_b, key),
        metric=key,
        label_a=run_a.label,
        label_b=run_b.label,
        alpha=alpha,
        resamples=resamples,
        seed=seed,
    )


def compare_values(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    metric: str,
    label_a: str = "A",
    label_b: str = "B",
    alpha: float = 0.05,
    resamples: int = 10_000,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> PairedComparison:
    """Compare per-task values of A and B (task id -> value)."""
    from scipy.stats import wilcoxon

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    common = sorted(set(a) & set(b))
    va = np.array([a[k] for k in common], dtype=float)
    vb = np.array([b[k] for k in common], dtype=float)
    # Rounding drops float noise (0.9 - 0.7 vs 0.8 - 0.6), so equal differences tie
    # and equal values give an exact zero, as they would on paper.
    d = np.round(va - vb, DIFFERENCE_DECIMALS)
    n_nonzero = int(np.count_nonzero(d))
    r, w_plus, w_minus = rank_biserial(d)
    notes: list[str] = []
    statistic = p_value = math.nan
    if n_nonzero >= 1:
        result = wilcoxon(d, zero_method="wilcox", alternative="two-sided")
        statistic, p_value = float(result.statistic), float(result.pvalue)
    low, high = bootstrap_mean_ci(d, resamples=resamples, confidence=confidence, seed=seed)
    if 0 < len(common) < 2:
        notes.append("only one pair: no spread, and the bootstrap interval has zero width")
    if 0 < n_nonzero < MIN_NONZERO_FOR_SIGNIFICANCE:
        floor = 2.0 ** (1 - n_nonzero)
        notes.append(
            f"only {n_nonzero} non-zero difference(s): the smallest attainable two-sided p is "
            f"{floor:.4g}, so the test has little or no power here"
        )
    if n_nonzero and n_nonzero < len(common):
        notes.append(f"{len(common) - n_nonzero} zero difference(s) dropped from the signed-rank test")
    significant = None if math.isnan(p_value) else bool(p_value < alpha)
    comparison = PairedComparison(
        metric=metric,
        label_a=label_a,
        label_b=label_b,
        alpha=alpha,
        n_a=len(a),
        n_b=len(b),
        n_pairs=len(common),
        only_a=len(set(a) - set(b)),
        only_b=len(set(b) - set(a)),
        a=Describe.of(va),
        b=Describe.of(vb),
        difference=Describe.of(d),
        n_nonzero=n_nonzero,
        n_zero=len(common) - n_nonzero,
        w_plus=w_plus,
        w_minus=w_minus,
        wilcoxon_statistic=statistic,
        p_value=p_value,
        rank_biserial=r,
        paper_formula_r=paper_formula_r(w_plus, w_minus, len(common)),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        significant=significant,
        verdict="",
        notes=notes,
    )
    comparison.verdict = _verdict(comparison)
    return comparison


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def _verdict(c: PairedComparison) -> str:
    what = f"{c.label_a} vs {c.label_b} on {c.metric}"
    if c.n_pairs == 0:
        return f"{what}: no task ids in common, nothing to compare"
    if c.n_nonzero == 0:
        return f"{what}: all {c.n_pairs} paired differences are zero, no difference (no test possible)"
    stats = (
        f"Wilcoxon p = {c.p_value:.3g}, r = {c.rank_biserial:+.2f} "
        f"[paper's formula: {c.paper_formula_r:.2f}], n = {c.n_pairs} pairs"
    )
    if c.significant:
        direction = "higher" if c.w_plus > c.w_minus else "lower"
        return (
            f"{what}: A is significantly {direction} than B at alpha = {c.alpha:g} "
            f"({stats}) {_stars(c.p_value)}".rstrip()
        )
    return f"{what}: no significant difference at alpha = {c.alpha:g} ({stats})"


def _fmt(value: float, digits: int = 4) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.{digits}g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.3e}"


def render_comparison(c: PairedComparison, fmt: Literal["text", "json"] = "text") -> str:
    """The comparison as a readable report or one JSON object."""
    if fmt == "json":
        return json.dumps(c.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r}")
    lines = [
        f"Paired comparison on {c.metric}: A = {c.label_a}, B = {c.label_b}",
        f"Pairs (same task id): {c.n_pairs}; only in A: {c.only_a}; only in B: {c.only_b}",
        "",
        f"{'':8}{'n':>6}{'mean':>12}{f'std(ddof={c.std_ddof})':>12}{'median':>12}{'min':>12}{'max':>12}",
    ]
    for name, d in (("A", c.a), ("B", c.b), ("A - B", c.difference)):
        cells = "".join(f"{_fmt(v):>12}" for v in (d.mean, d.std, d.median, d.min, d.max))
        lines.append(f"{name:8}{d.n:>6}{cells}")
    lines.append(f"std: sample standard deviation (ddof = {c.std_ddof})")
    lines.append("")
    if c.n_nonzero:
        lines.append(
            f"Wilcoxon signed-rank (two-sided): W = {_fmt(c.wilcoxon_statistic)}, p = {_fmt(c.p_value)} "
            f"({c.n_nonzero} non-zero differences)"
        )
        lines.append(
            f"Rank-biserial correlation (matched pairs): r = {c.rank_biserial:+.3f} "
            f"(W+ = {_fmt(c.w_plus)}, W- = {_fmt(c.w_minus)})"
        )
        lines.append(
            f"Paper's formula 1 - 2W/(n(n+1)) (W = min(W+, W-) = {_fmt(min(c.w_plus, c.w_minus))}, "
            f"n = {c.n_pairs} pairs): {c.paper_formula_r:.3f} (unsigned, 0.5 = no effect; not the rank-biserial)"
        )
    else:
        lines.append("Wilcoxon signed-rank: not computed (no non-zero differences)")
    if c.n_pairs:
        lines.append(
            f"Mean difference A - B: {_fmt(c.difference.mean)}, {c.confidence:.0%} bootstrap CI "
            f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}] ({c.resamples:,} resamples, seed {c.seed})"
        )
    lines += [f"Note: {note}" for note in c.notes]
    lines.append(f"Verdict: {c.verdict}")
    return "\n".join(lines) + "\n"
