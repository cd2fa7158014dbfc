"""Percentile bootstrap confidence interval of a mean, vectorised with numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_SEED = 20260301
# Resample indices are drawn in chunks of at most this many cells, so memory
# stays flat (~16 MB) however many episodes or resamples are asked for.
_CHUNK_CELLS = 2_000_000


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray,
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """(low, high) percentile bootstrap interval of the mean; NaN values are dropped.

    One value gives a zero-width interval at that value; none gives (nan, nan).
    """
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    n = data.size
    if n == 0:
        return (float("nan"), float("nan"))
    if n == 1:
        return (float(data[0]), float(data[0]))
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, resamples, step):
        stop = min(start + step, resamples)
        index = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = data[index].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return (float(low), float(high))
