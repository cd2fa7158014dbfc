"""The paired statistics against hand computations and scipy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import wilcoxon

from opaque_knapsack.reports.bootstrap import bootstrap_mean_ci
from opaque_knapsack.reports.compare import compare_values, rank_biserial, render_comparison
from opaque_knapsack.reports.metrics import resolve_metric


def _ids(values: list[float]) -> dict[str, float]:
    return {f"knapsack-{i:010d}": v for i, v in enumerate(values)}


def test_rank_biserial_hand_computation_with_ties_and_a_zero() -> None:
    # d = [1, -2, 2, 3, 0, -1]; the zero is dropped; |d| = 1, 2, 2, 3, 1
    # ranks: the two 1s share (1+2)/2 = 1.5, the two 2s share (3+4)/2 = 3.5, 3 gets 5
    # W+ = 1.5 + 3.5 + 5 = 10, W- = 3.5 + 1.5 = 5, r = (10 - 5) / 15 = 1/3
    r, w_plus, w_minus = rank_biserial([1, -2, 2, 3, 0, -1])
    assert w_plus == 10.0
    assert w_minus == 5.0
    assert r == pytest.approx(1 / 3)


def test_rank_biserial_extremes_and_no_differences() -> None:
    assert rank_biserial([0.5, 0.1, 2.0])[0] == 1.0
    assert rank_biserial([-0.5, -0.1])[0] == -1.0
    r, w_plus, w_minus = rank_biserial([0.0, 0.0])
    assert math.isnan(r) and w_plus == w_minus == 0.0


def test_compare_values_matches_scipy_and_numpy() -> None:
    a = [0.9, 0.8, 1.0, 0.5, 0.7, 0.6, 1.0, 0.4, 0.95, 0.3]
    b = [0.7, 0.8, 0.6, 0.5, 0.9, 0.2, 0.8, 0.1, 0.55, 0.3]
    c = compare_values(_ids(a), _ids(b), metric="optimality")
    d = np.array(a) - np.array(b)
    # exact differences as on paper: 0.2 (x2), -0.2, 0.4 (x3), 0.3 and three zeros
    expected = wilcoxon(np.round(d, 10), zero_method="wilcox", alternative="two-sided")
    assert c.p_value == pytest.approx(float(expected.pvalue))
    assert c.wilcoxon_statistic == pytest.approx(float(expected.statistic))
    assert c.n_pairs == 10 and c.n_zero == 3 and c.n_nonzero == 7
    assert c.a.mean == pytest.approx(np.mean(a))
    assert c.b.std == pytest.approx(np.std(b, ddof=1))
    assert c.difference.median == pytest.approx(np.median(d))
    assert c.difference.min == pytest.approx(d.min()) and c.difference.max == pytest.approx(d.max())
    # by hand: |d| sorted 0.2 0.2 0.2 0.3 0.4 0.4 0.4 -> ranks 2 2 2 4 6 6 6;
    # W- = 2 (the one -0.2), W+ = 2 + 2 + 4 + 6 * 3 = 26
    w_plus, w_minus = 26.0, 2.0
    assert c.w_plus == pytest.approx(w_plus) and c.w_minus == pytest.approx(w_minus)
    assert c.rank_biserial == pytest.approx((w_plus - w_minus) / (w_plus + w_minus))
    assert min(c.w_plus, c.w_minus) == pytest.approx(c.wilcoxon_statistic)
    assert c.ci_low <= c.difference.mean <= c.ci_high


def test_pairs_by_task_id_and_counts_the_unpaired() -> None:
    a = {"t1": 1.0, "t2": 0.5, "t3": 0.2}
    b = {"t2": 0.4, "t3": 0.2, "t4": 0.9, "t5": 0.1}
    c = compare_values(a, b, metric="optimality")
    assert (c.n_pairs, c.only_a, c.only_b, c.n_a, c.n_b) == (2, 1, 2, 3, 4)
    assert c.difference.mean == pytest.approx(0.05)


def test_clear_significant_difference_gives_a_directional_verdict() -> None:
    rng = np.random.default_rng(1)
    b = rng.uniform(0, 0.5, size=30)
    a = b + rng.uniform(0.1, 0.3, size=30)
    c = compare_values(_ids(list(a)), _ids(list(b)), metric="optimality", label_a="P", label_b="S")
    assert c.significant is True
    assert c.rank_biserial == 1.0
    assert "significantly higher" in c.verdict and "alpha = 0.05" in c.verdict
    assert c.ci_low > 0


def test_all_zero_differences_say_so_instead_of_testing() -> None:
    values = _ids([0.5, 0.7, 1.0])
    c = compare_values(values, dict(values), metric="optimality")
    assert c.n_nonzero == 0 and math.isnan(c.p_value) and c.significant is None
    assert "all 3 paired differences are zero" in c.verdict
    assert c.to_dict()["p_value"] is None
    assert (c.ci_low, c.ci_high) == (0.0, 0.0)
    assert "not computed" in render_comparison(c)


def test_tiny_samples_do_not_crash() -> None:
    one = compare_values({"t": 1.0}, {"t": 0.0}, metric="optimality")
    assert one.n_pairs == 1 and math.isnan(one.a.std)
    assert any("only one pair" in n for n in one.notes)
    assert any("smallest attainable two-sided p is 1" in n for n in one.notes)
    none = compare_values({"t": 1.0}, {"u": 0.0}, metric="optimality")
    assert none.n_pairs == 0 and "no task ids in common" in none.verdict
    assert math.isnan(none.ci_low)
    five = compare_values(_ids([1, 2, 3, 4, 5]), _ids([0, 0, 0, 0, 0]), metric="steps")
    assert five.p_value == pytest.approx(0.0625) and five.significant is False
    assert any("0.0625" in n for n in five.notes)
    for comparison in (one, none, five):
        render_comparison(comparison)
        render_comparison(comparison, "json")


def test_bootstrap_known_answer_for_two_points() -> None:
    # resampled means of [0, 1] are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    assert bootstrap_mean_ci([0.0, 1.0], resamples=10_000) == (0.0, 1.0)
    assert bootstrap_mean_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert bootstrap_mean_ci([2.5]) == (2.5, 2.5)
    assert all(math.isnan(x) for x in bootstrap_mean_ci([]))


def test_bootstrap_agrees_with_the_normal_approximation() -> None:
    data = np.random.default_rng(7).normal(10.0, 2.0, size=400)
    low, high = bootstrap_mean_ci(data, resamples=10_000, seed=3)
    se = data.std(ddof=1) / math.sqrt(data.size)
    assert low == pytest.approx(data.mean() - 1.96 * se, abs=0.3 * se)
    assert high == pytest.approx(data.mean() + 1.96 * se, abs=0.3 * se)
    assert bootstrap_mean_ci(data, seed=3) == (low, high)  # fixed seed, same answer


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("optimality", "optimality"),
        ("Score", "optimality"),
        ("total_tokens", "total_tokens"),
        ("tokens", "total_tokens"),
        ("output-tokens", "output_tokens"),
        ("score_knapsack_scorer_input_tokens", "input_tokens"),
        ("reimport", "reimport_rate"),
        ("time", "total_time"),
    ],
)
def test_metric_names(name: str, key: str) -> None:
    assert resolve_metric(name) == key


def test_unknown_metric_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown metric 'flops'.*optimality"):
        resolve_metric("flops")


def test_the_papers_formula_by_hand_with_ties_and_a_zero() -> None:
    # A - B = [1, -2, 2, 3, 0, -1]. scipy's wilcoxon drops zero differences by default
    # (zero_method="wilcox"), so W = min(W+, W-) over the five non-zero ones: ranks of
    # |d| = 1, 2, 2, 3, 1 are 1.5, 3.5, 3.5, 5, 1.5; W+ = 10, W- = 5, W = 5. The paper's
    # n is the number of pairs, the zero included: 1 - 2 * 5 / (6 * 7) = 16/21.
    a, b = [3.0, 0.0, 4.0, 5.0, 2.0, 1.0], [2.0] * 6
    assert float(wilcoxon(a, b).statistic) == 5.0
    c = compare_values(_ids(a), _ids(b), metric="steps")
    assert c.paper_formula_r == pytest.approx(16 / 21)
    assert c.rank_biserial == pytest.approx(1 / 3)
    # without the zero pair (n = 5) it is (1 + |r|) / 2: 1 - 10 / 30 = 2/3
    no_zero = compare_values(_ids(a[:4] + a[5:]), _ids(b[:5]), metric="steps")
    assert no_zero.paper_formula_r == pytest.approx(2 / 3) == pytest.approx((1 + abs(no_zero.rank_biserial)) / 2)
    # unsigned: swapping A and B flips r, not the paper's figure
    swapped = compare_values(_ids(b), _ids(a), metric="steps")
    assert swapped.rank_biserial == pytest.approx(-1 / 3) and swapped.paper_formula_r == c.paper_formula_r
    # no non-zero difference: scipy has no statistic, and neither figure exists
    assert math.isnan(compare_values(_ids(a), _ids(a), metric="steps").paper_formula_r)


def test_every_output_shows_the_papers_formula_labelled_and_the_stds_ddof() -> None:
    c = compare_values(_ids([3.0, 0.0, 4.0, 5.0, 2.0, 1.0]), _ids([2.0] * 6), metric="steps")
    text = render_comparison(c)
    assert "Paper's formula 1 - 2W/(n(n+1)) (W = min(W+, W-) = 5, n = 6 pairs): 0.762" in text
    assert "r = +0.333" in text and "std(ddof=1)" in text and "sample standard deviation (ddof = 1)" in text
    assert "r = +0.33 [paper's formula: 0.76]" in c.verdict
    data = json.loads(render_comparison(c, "json"))
    assert data["paper_formula_r"] == pytest.approx(16 / 21) and data["rank_biserial"] == pytest.approx(1 / 3)
    assert data["paper_formula"] == "1 - 2W/(n(n+1)), W = min(W+, W-), n = pairs" and data["std_ddof"] == 1
    assert data["a"]["std"] == pytest.approx(np.std([3.0, 0.0, 4.0, 5.0, 2.0, 1.0], ddof=1))
