"""Intervals: Wilson, bootstrap, quantiles and the expected running time (ERT)."""

from __future__ import annotations

import zlib
from statistics import NormalDist

import numpy as np
import pandas as pd

from nnlab.schema import LEVEL

# The standard normal's quantile at 1/2 + LEVEL/2: 1.96 for 95% intervals.
Z = NormalDist().inv_cdf(0.5 + LEVEL / 2)
BOOTSTRAP_REPS = 2000  # resamples of the bootstrap intervals
BOOTSTRAP_SEED = 20261203  # with each configuration's key, the seed of its bootstrap Generator


def wilson(successes, n, z: float = Z) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (at `nnlab.schema.LEVEL` by default).

    Parameters
    ----------
    successes, n : array_like of int
        Successes out of n trials (n = 0 gives NaN).

    Returns
    -------
    lo, hi : ndarray
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exact at the ends (the closed form leaves rounding residues of 1e-17 there).
    lo = np.where((k == 0) & (n > 0), 0.0, np.clip(centre - half, 0, 1))
    hi = np.where((k == n) & (n > 0), 1.0, np.clip(centre + half, 0, 1))
    return lo, hi


def iqm(x) -> float:
    """Interquartile mean: the mean of what is left after cutting int(n / 4) values at each end
    (as scipy.stats.trim_mean(x, 0.25)); NaN for an empty input."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    cut = int(0.25 * len(x))
    kept = x[cut : len(x) - cut]
    return float(kept.mean()) if len(kept) else float("nan")


def quantiles(x, ps) -> np.ndarray:
    """Quantiles with numpy's default (linear) interpolation, where +inf values (diverged runs)
    are allowed: a quantile that falls at or beyond an infinite value is inf (numpy's
    interpolation would give NaN there). NaN for an empty input."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    ps = np.asarray(ps, dtype=np.float64)
    if not len(x):
        return np.full(ps.shape, np.nan)
    h = (len(x) - 1) * ps
    lo = np.floor(h).astype(int)
    hi = np.minimum(lo + 1, len(x) - 1)
    t = h - lo
    with np.errstate(invalid="ignore"):
        inner = np.where(t > 0, x[lo] + t * (x[hi] - x[lo]), x[lo])
    return np.where(np.isinf(x[hi]) & (t > 0), np.inf, inner)


def ert(epochs_to_threshold, budget) -> float:
    """Expected running time in epochs: the sum over runs of min(epochs to threshold, budget),
    a failed run counting its whole budget, divided by the number of successes (inf when none).

    Parameters
    ----------
    epochs_to_threshold : array_like
        Per run; NaN (or a missing value) when the run never got below the threshold.
    budget : array_like or float
        Per run (or shared): the epochs a run was given.
    """
    e = pd.to_numeric(pd.Series(epochs_to_threshold), errors="coerce").to_numpy(dtype=np.float64)
    budget = np.broadcast_to(np.asarray(budget, dtype=np.float64), e.shape)
    solved = np.isfinite(e)
    if not solved.any():
        return float("inf")
    return float(np.where(solved, np.minimum(e, budget), budget).sum() / solved.sum())


def bootstrap_ci(
    x, stat, *, rng: np.random.Generator, reps: int = BOOTSTRAP_REPS, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over the rows of ``x``.

    Parameters
    ----------
    x : array_like (n, ...)
        One row per run (the rows are resampled with replacement).
    stat : callable
        Maps resampled data (reps, n, ...) to (reps,); it may give inf (an ERT with no success).
    rng : Generator
        The randomness, explicitly.
    reps : int
        Resamples.
    level : float
        Coverage of the interval.

    Returns
    -------
    lo, hi : float
        Order statistics of the resampled values at (1 - level) / 2 and (1 + level) / 2, no
        interpolation, so that infinite values stay meaningful; NaN for no rows.
    """
    x = np.asarray(x, dtype=np.float64)
    if not len(x):
        return float("nan"), float("nan")
    # (np.take along the first axis: the same rows as x[idx], gathered 3-4x faster.)
    resampled = np.take(x, rng.integers(0, len(x), size=(reps, len(x))), axis=0)
    values = np.sort(np.asarray(stat(resampled), dtype=np.float64))
    k = (1 - level) / 2 * reps
    return float(values[int(np.floor(k))]), float(values[min(reps - 1, int(np.ceil(reps - k)) - 1)])


def rows_median(x: np.ndarray) -> np.ndarray:
    """The median of each row, a +inf (diverged) included, without inf - inf arithmetic."""
    x = np.sort(x, axis=1)
    n = x.shape[1]
    lo, hi = x[:, (n - 1) // 2], x[:, n // 2]
    with np.errstate(invalid="ignore"):
        return np.where(lo == hi, lo, 0.5 * (lo + hi))


def rows_spread(x: np.ndarray) -> np.ndarray:
    """q90 - q10 of each row (order statistics nearest below and above), inf with a diverged run."""
    x = np.sort(x, axis=1)
    n = x.shape[1]
    with np.errstate(invalid="ignore"):
        d = x[:, min(n - 1, int(np.ceil(0.9 * (n - 1))))] - x[:, int(np.floor(0.1 * (n - 1)))]
    return np.where(np.isnan(d), np.inf, d)


def rows_ert(x: np.ndarray) -> np.ndarray:
    """ERT of each resample of (epoch first below the threshold or NaN, budget) pairs."""
    e, budget = x[..., 0], x[..., 1]
    hit = ~np.isnan(e)
    total = np.where(hit, np.minimum(np.nan_to_num(e), budget), budget).sum(axis=1)
    k = hit.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k > 0, total / np.maximum(k, 1), np.inf)


def ranks_of(x) -> tuple[np.ndarray, np.ndarray]:
    """(sorted x, the rank of each value of x in it): what `rows_order_statistics` resamples."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    rank = np.empty(len(x), dtype=np.int64)
    rank[order] = np.arange(len(x))
    return x[order], rank


def rows_order_statistics(ranks: np.ndarray, ks) -> list[np.ndarray]:
    """The positions (in the sorted values) of the ``ks``-th smallest of each row of ``ranks`` (reps, n),
    the ranks of a resample (`ranks_of`): sorting small integers (a radix sort below 2**15 runs)
    instead of floats, the same values as `rows_median` and `rows_spread` sort."""
    dtype = np.int16 if ranks.shape[1] < 2**15 else np.int64
    ordered = np.sort(ranks.astype(dtype), axis=1, kind="stable")
    return [ordered[:, k] for k in ks]


def rng_of(key) -> np.random.Generator:
    """The bootstrap's Generator of one configuration: seeded by the configuration alone, so that its
    intervals do not depend on the other configurations of the table."""
    return np.random.default_rng(np.random.SeedSequence([BOOTSTRAP_SEED, zlib.crc32(repr(key).encode())]))
