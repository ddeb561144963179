"""Statistics of a sweep's tables: what the seeds of each configuration reached, and capacity.

Pure functions, DataFrame in and DataFrame out. Per configuration: the spread of final losses
(median, IQM, quantiles), the success rate with its Wilson interval, the expected running time
(ERT), what the end points are (certified by `nnlab landscape`, or an uncertified estimate of the
distinct final optima), and a capacity label; per depth, the smallest widths
that solve the task; per trained network, the hidden units it does not need.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from nnlab.network import ACTIVATIONS, Network, backprop, init_network, loss_of, network_from_flat
from nnlab.schema import AXIS_COLUMNS, KINDS

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
LEVEL = 0.95  # every interval's coverage
ALPHA = 0.05  # a difference is significant below this p-value
# Over-capacity: the Wilson 95% lower bound of the success rate is at least this (we are 95% sure
# that 90% or more of the seeds succeed).
RELIABLE = 0.9
BOOTSTRAP_REPS = 2000  # resamples of the bootstrap intervals
BOOTSTRAP_SEED = 20261203  # with each configuration's key, the seed of its bootstrap Generator
TUNING = ("lr", "init", "init_scale")
# Pruning keeps a unit's removal while the loss stays within loss_0 (1 + PRUNE_RTOL) + PRUNE_ATOL
# * threshold of the trained network's own loss loss_0.
PRUNE_RTOL = 0.1
# A run is still descending when its mean loss over the last twentieth of the epochs is this much
# (relative) below the mean over the twentieth before.
DESCENT = 0.01
PRUNE_ATOL = 0.01  # the axes best_settings may choose per architecture
OVER, CRITICAL, UNDECIDED = "over-capacity", "critical", "undecided"
UNDER, UNSOLVED, STUCK, DIVERGED = "under-capacity", "unsolved within budget", "stuck", "diverged"
WORSE = "worse than at start"
LABELS = (OVER, UNDECIDED, CRITICAL, UNSOLVED, STUCK, UNDER, WORSE, DIVERGED)
# Defaults of `optima_estimate`. With a constant learning rate SGD never settles: at a minimum the
# full-data gradient stays at the noise level (about 1e-2 in the canonical studies, while the
# loss is flat for hundreds of epochs), and the final loss wanders by some 10% around the minimum.
GTOL = 0.05
RTOL = 0.1


def wilson(successes, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (95% by default).

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


def stopped_runs(
    runs: pd.DataFrame, curves: pd.DataFrame | None = None, *, gtol: float = GTOL, rtol: float = RTOL
) -> np.ndarray:
    """Which runs have stopped moving: a finite final loss, a final full-data gradient norm of at
    most ``gtol`` and, when the curves are given, a loss that changed by at most ``rtol`` (relative)
    over the last tenth of the epochs (a run still descending slowly has a small gradient too).

    Returns
    -------
    ndarray of bool, one per row of ``runs``.
    """
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    ok = np.isfinite(loss) & (runs["final_grad_norm"].to_numpy(dtype=np.float64) <= gtol)
    if curves is not None and len(runs):
        epochs = runs["epochs"].to_numpy()
        earlier = epochs - np.maximum(1, np.rint(0.1 * epochs).astype(int))
        wanted = pd.MultiIndex.from_arrays([runs["run_id"].to_numpy(), earlier])
        before = curves.set_index(["run_id", "epoch"])["loss"].reindex(wanted).to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            ok &= np.abs(loss - before) <= rtol * np.abs(loss)
    return ok


def optima_estimate(final_loss, stopped, threshold: float, *, rtol: float = RTOL) -> int:
    """An uncertified estimate of how many distinct optima the runs ended in, from final losses
    alone (the certified count comes from `nnlab landscape`: see `endpoint_counts`).

    Solved runs (loss below ``threshold``) count as one optimum, zero loss, which SGD approaches
    without reaching, whatever their gradient. Of the others only the runs that have stopped moving
    count (``stopped``, see `stopped_runs`); they are sorted by loss and a new optimum starts
    wherever the next loss is more than ``rtol`` (relative) above the previous one.
    """
    loss = np.asarray(final_loss, dtype=np.float64)
    stopped = np.asarray(stopped, dtype=bool)
    solved = loss < threshold
    rest = np.sort(loss[~solved & np.isfinite(loss) & stopped])
    groups = int(solved.any())
    if len(rest):
        groups += 1 + int(np.count_nonzero(rest[1:] > rest[:-1] * (1 + rtol)))
    return groups


def config_axes(runs: pd.DataFrame) -> list[str]:
    """The configuration columns of a runs table (every grid axis it has)."""
    return [a for a in AXIS_COLUMNS if a in runs.columns]


def varying_axes(table: pd.DataFrame) -> list[str]:
    """The configuration columns that take more than one value in ``table``."""
    return [a for a in config_axes(table) if table[a].nunique() > 1]


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
    values = np.sort(np.asarray(stat(x[rng.integers(0, len(x), size=(reps, len(x)))]), dtype=np.float64))
    k = (1 - level) / 2 * reps
    return float(values[int(np.floor(k))]), float(values[min(reps - 1, int(np.ceil(reps - k)) - 1)])


def _rows_median(x: np.ndarray) -> np.ndarray:
    """The median of each row, a +inf (diverged) included, without inf - inf arithmetic."""
    x = np.sort(x, axis=1)
    n = x.shape[1]
    lo, hi = x[:, (n - 1) // 2], x[:, n // 2]
    with np.errstate(invalid="ignore"):
        return np.where(lo == hi, lo, 0.5 * (lo + hi))


def _rows_spread(x: np.ndarray) -> np.ndarray:
    """q90 - q10 of each row (order statistics nearest below and above), inf with a diverged run."""
    x = np.sort(x, axis=1)
    n = x.shape[1]
    with np.errstate(invalid="ignore"):
        d = x[:, min(n - 1, int(np.ceil(0.9 * (n - 1))))] - x[:, int(np.floor(0.1 * (n - 1)))]
    return np.where(np.isnan(d), np.inf, d)


def _rows_ert(x: np.ndarray) -> np.ndarray:
    """ERT of each resample of (epoch first below the threshold or NaN, budget) pairs."""
    e, budget = x[..., 0], x[..., 1]
    hit = ~np.isnan(e)
    total = np.where(hit, np.minimum(np.nan_to_num(e), budget), budget).sum(axis=1)
    k = hit.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k > 0, total / np.maximum(k, 1), np.inf)


def _rng_of(key) -> np.random.Generator:
    """The bootstrap's Generator of one configuration: seeded by the configuration alone, so that its
    intervals do not depend on the other configurations of the table."""
    return np.random.default_rng(np.random.SeedSequence([BOOTSTRAP_SEED, zlib.crc32(repr(key).encode())]))


def hit_epochs(runs: pd.DataFrame, curves: pd.DataFrame | None, threshold: float) -> np.ndarray:
    """Per run, the first epoch its full-data loss is below ``threshold`` (NaN if never): from the
    curves when given (so that a threshold other than the one the runs were stored with holds),
    otherwise the runs' stored ``epochs_to_threshold``."""
    if curves is not None:
        below = curves[curves["loss"] < threshold].groupby("run_id")["epoch"].min()
        return runs["run_id"].map(below).to_numpy(dtype=np.float64)
    return pd.to_numeric(runs["epochs_to_threshold"], errors="coerce").to_numpy(dtype=np.float64)


def descending_runs(runs: pd.DataFrame, curves: pd.DataFrame | None, *, drop: float = DESCENT) -> np.ndarray:
    """Which runs were still descending at the end: the mean loss over the last twentieth of the
    epochs is more than ``drop`` (relative) below the mean over the twentieth before it (means, so
    that the epoch-to-epoch noise of SGD does not count as descent). False without curves, and for
    a run whose loss is not finite there."""
    if curves is None or not len(runs):
        return np.zeros(len(runs), dtype=bool)
    epochs = runs["epochs"].to_numpy()
    window = np.maximum(1, np.rint(0.05 * epochs).astype(int))
    table = curves.set_index(["run_id", "epoch"])["loss"]
    out = np.zeros(len(runs), dtype=bool)
    for w, E in {(int(a), int(b)) for a, b in zip(window, epochs, strict=True)}:
        rows = np.flatnonzero((window == w) & (epochs == E))
        ids = runs["run_id"].to_numpy()[rows]
        steps = np.arange(E - 2 * w + 1, E + 1)
        wanted = pd.MultiIndex.from_product([ids, steps])
        loss = table.reindex(wanted).to_numpy(dtype=np.float64).reshape(len(ids), 2 * w)
        with np.errstate(invalid="ignore"):
            before, last = loss[:, :w].mean(axis=1), loss[:, w:].mean(axis=1)
            out[rows] = np.isfinite(last) & (before - last > drop * np.abs(last))
    return out


def worsened_runs(runs: pd.DataFrame, curves: pd.DataFrame | None, *, rtol: float = RTOL) -> np.ndarray:
    """Which runs ended above their loss at initialization, by more than ``rtol`` (relative): a
    learning rate so large that SGD threw the network somewhere worse (tanh units driven into
    saturation, where the loss is flat and the gradient zero). False without curves."""
    if curves is None or not len(runs):
        return np.zeros(len(runs), dtype=bool)
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    wanted = pd.MultiIndex.from_arrays([runs["run_id"].to_numpy(), np.zeros(len(runs), dtype=int)])
    start = curves.set_index(["run_id", "epoch"])["loss"].reindex(wanted).to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(loss) & (loss > start * (1 + rtol))


def summarize(
    runs: pd.DataFrame,
    threshold: float,
    *,
    curves: pd.DataFrame | None = None,
    gtol: float = GTOL,
    rtol: float = RTOL,
    redundant: pd.DataFrame | None = None,
    endpoints: pd.DataFrame | None = None,
    reps: int = BOOTSTRAP_REPS,
) -> pd.DataFrame:
    """The per-configuration statistics table.

    A run succeeds at the first epoch its full-data loss is below ``threshold`` (hitting-based, as
    COCO/BBOB count the ERT): success rate, ERT and median epochs all use that definition; the share
    whose *final* loss is below the threshold is ``success_final``.

    Parameters
    ----------
    runs : DataFrame
        runs.parquet: one row per run.
    threshold : float
        The experiment's threshold.
    curves : DataFrame, optional
        curves.parquet; with it the epochs to ``threshold`` are read from the curves (otherwise
        from runs' ``epochs_to_threshold``), a run must also have a flat loss to count as stopped,
        and the runs still descending at the end are counted.
    gtol, rtol : float
        See `stopped_runs`, `descending_runs` and `optima_estimate`.
    redundant : DataFrame, optional
        `redundancy`'s table (run_id, redundant_units): adds ``redundant_units``, the median over
        a configuration's solved runs.
    endpoints : DataFrame, optional
        endpoints.parquet (`nnlab landscape`): the optima are then counted from the certified
        minima (see `endpoint_counts`), and the uncertified estimate is left out.
    reps : int
        Bootstrap resamples of the intervals (`bootstrap_ci`, a Generator per configuration).

    Returns
    -------
    DataFrame
        One row per configuration (its axes first, in grid order), then ``runs``, ``diverged``,
        ``n_params``, the final loss's ``median`` with its bootstrap 95% interval ``median_lo``,
        ``median_hi``, ``iqm``, ``q10``, ``q25``, ``q75``, ``q90`` and ``spread`` = q90 - q10 with
        ``spread_lo``, ``spread_hi`` (a diverged run's loss counts as +inf); ``successes`` and
        ``success`` (hitting-based rate) with its Wilson 95% interval ``success_lo``,
        ``success_hi``; ``success_final`` (final loss below the threshold); ``ert`` (epochs; inf
        when no run succeeded) with ``ert_lo``, ``ert_hi``; ``median_epochs`` (to threshold, among
        the successes); ``stopped`` (`stopped_runs`), ``descending`` (`descending_runs`) and
        ``worse`` (`worsened_runs`), the last two among the runs that never succeeded; ``verdict``
        (see `verdict`); and either, with
        ``endpoints``, ``certified`` and ``end_<kind>`` (end points certified, and of each kind)
        and ``optima`` (distinct certified minima), or ``optima_estimate``; with a held-out split
        also ``median_test_loss``;
        for a classification loss (runs with ``train_accuracy``) ``median_accuracy``, and with a
        held-out split ``median_test_accuracy``: the median over the seeds of the share of samples
        classified right.
    """
    axes = config_axes(runs)
    runs = runs.reset_index(drop=True)
    still = pd.Series(stopped_runs(runs, curves, gtol=gtol, rtol=rtol), index=runs.index)
    falling = pd.Series(descending_runs(runs, curves), index=runs.index)
    worse = pd.Series(worsened_runs(runs, curves, rtol=rtol), index=runs.index)
    runs = runs.assign(epochs_to_threshold=hit_epochs(runs, curves, threshold))
    if redundant is not None:
        per_run = redundant.set_index("run_id")["redundant_units"]
    rows = []
    for key, g in runs.groupby(axes, sort=True):
        rng = _rng_of(key)
        loss = g["final_loss"].to_numpy(dtype=np.float64)
        loss = np.where(np.isnan(loss), np.inf, loss)
        e = pd.to_numeric(g["epochs_to_threshold"], errors="coerce").to_numpy(dtype=np.float64)
        budget = g["epochs"].to_numpy(dtype=np.float64)
        hit = ~np.isnan(e)
        q = quantiles(loss, [0.1, 0.25, 0.5, 0.75, 0.9])
        row = dict(zip(axes, key, strict=True))
        median_lo, median_hi = bootstrap_ci(
            loss[:, None], lambda x: _rows_median(x[..., 0]), rng=rng, reps=reps
        )
        spread_lo, spread_hi = bootstrap_ci(
            loss[:, None], lambda x: _rows_spread(x[..., 0]), rng=rng, reps=reps
        )
        ert_lo, ert_hi = bootstrap_ci(np.stack([e, budget], axis=1), _rows_ert, rng=rng, reps=reps)
        row.update(
            runs=len(g),
            diverged=int(g["diverged"].sum()),
            n_params=int(g["n_params"].iloc[0]),
            median=q[2],
            median_lo=median_lo,
            median_hi=median_hi,
            iqm=iqm(loss),
            q10=q[0],
            q25=q[1],
            q75=q[3],
            q90=q[4],
            spread=float(_rows_spread(loss[None])[0]),
            spread_lo=spread_lo,
            spread_hi=spread_hi,
            successes=int(hit.sum()),
            success=hit.mean(),
            success_final=float(np.mean(loss < threshold)),
            ert=ert(e, budget),
            ert_lo=ert_lo,
            ert_hi=ert_hi,
            median_epochs=float(np.median(e[hit])) if hit.any() else np.nan,
            stopped=int(np.count_nonzero(still[g.index])),
            descending=int(np.count_nonzero(falling[g.index] & ~hit)),
            worse=int(np.count_nonzero(worse[g.index] & ~hit)),
        )
        if endpoints is None:
            row["optima_estimate"] = optima_estimate(loss, still[g.index], threshold, rtol=rtol)
        else:
            row.update(endpoint_counts(endpoints[endpoints["run_id"].isin(g["run_id"])]))
        if "test_loss" in g.columns:
            test = g["test_loss"].to_numpy(dtype=np.float64)
            row["median_test_loss"] = float(np.median(np.where(np.isnan(test), np.inf, test)))
        for column, name in (
            ("train_accuracy", "median_accuracy"),
            ("test_accuracy", "median_test_accuracy"),
        ):
            if column in g.columns:
                share = g[column].to_numpy(dtype=np.float64)  # NaN: a run without it (another loss)
                row[name] = float(np.median(share)) if np.isfinite(share).all() else np.nan
        if redundant is not None:
            units = per_run.reindex(g["run_id"]).dropna()
            row["redundant_units"] = float(units.median()) if len(units) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table["success_lo"], table["success_hi"] = wilson(table["successes"], table["runs"])
        table["verdict"] = [verdict(row) for row in table.to_dict("records")]
        first = [*axes, "runs", "diverged", "n_params", "median", "median_lo", "median_hi", "iqm"]
        first += ["q10", "q25", "q75", "q90", "spread", "spread_lo", "spread_hi"]
        first += ["successes", "success", "success_lo", "success_hi", "success_final"]
        first += ["ert", "ert_lo", "ert_hi"]
        table = table[first + [c for c in table.columns if c not in first]]
    return table


def endpoint_counts(endpoints: pd.DataFrame) -> dict:
    """What the certified end points of one configuration are: ``certified`` (how many),
    ``end_<kind>`` for each kind of `KINDS`, and ``optima``, the distinct optima among the minima
    (the ``optimum`` ids of endpoints.parquet; solved end points are counted apart, in
    ``end_solved``)."""
    kinds = endpoints["kind"].value_counts()
    out = {"certified": len(endpoints)}
    out.update({f"end_{k}": int(kinds.get(k, 0)) for k in KINDS})
    out["optima"] = int(endpoints["optimum"].dropna().nunique())
    return out


def verdict(row: dict) -> str:
    """The verdict of one configuration's summary row: what its runs did, judged on intervals.

    - solved at least once: ``over-capacity`` when the Wilson lower bound of the success rate is at
      least `RELIABLE` (we are 95% sure that 90% or more of the seeds succeed), ``critical`` when its
      upper bound is below it, ``undecided`` when the interval straddles it (more seeds decide);
    - never solved: ``diverged`` when at least half the runs diverged (the learning rate failed, not
      the width); ``worse than at start`` when at least half the runs ended above their initial
      loss (the learning rate failed too: tanh at lr 1e6 saturates its units at a flat loss, which
      is neither a budget nor a capacity matter); ``under-capacity`` only with certificates (`nnlab
      landscape`) that every end point is a non-solving minimum, degenerate point or valley:
      polishing solves none, so the failures are not a matter of budget; otherwise ``unsolved within
      budget`` when most runs were still descending at the end, and ``stuck`` when their loss had
      gone flat.

    Every verdict holds for the configuration's learning rate, initialization and epoch budget only.
    """
    runs = row["runs"]
    if row["successes"] > 0:
        if row["success_lo"] >= RELIABLE:
            return OVER
        return CRITICAL if row["success_hi"] < RELIABLE else UNDECIDED
    if row["diverged"] >= 0.5 * runs:
        return DIVERGED
    if row.get("worse", 0) >= 0.5 * runs:
        return WORSE  # before under-capacity: a saturated network certifies as a degenerate point
    if row.get("certified", 0) == runs and row.get("end_solved", 1) == 0:
        if row["end_minimum"] + row["end_degenerate"] + row["end_valley"] == runs:
            return UNDER
    return UNSOLVED if row.get("descending", 0) > 0.5 * (runs - row["diverged"]) else STUCK


def capacity(summary: pd.DataFrame) -> pd.DataFrame:
    """Per depth (and every other swept axis but width): the smallest width that ever solves the
    task (``min_width_solves``), the smallest width judged over-capacity (``min_width_reliable``:
    the Wilson lower bound of its success rate at least `RELIABLE`), NaN where no width does, and
    ``monotone``: False when a wider network succeeds significantly less often than a narrower one
    (Fisher's exact test, p < `ALPHA`, see `neighbour_tests`)."""
    axes = [a for a in config_axes(summary) if a != "width"]
    rows = []
    for key, g in summary.groupby(axes, sort=True):
        g = g.sort_values("width")
        solves = g.loc[g["successes"] > 0, "width"]
        reliable = g.loc[g["success_lo"] >= RELIABLE, "width"]
        row = dict(zip(axes, key, strict=True))
        row.update(
            widths=", ".join(str(w) for w in g["width"]),
            min_width_solves=solves.min() if len(solves) else np.nan,
            min_width_reliable=reliable.min() if len(reliable) else np.nan,
            monotone=not _drops(g),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _drops(g: pd.DataFrame) -> bool:
    """Does some wider network of ``g`` (one group, by width) succeed significantly less often than
    a narrower one?"""
    from scipy.stats import fisher_exact

    k, n = g["successes"].to_numpy(), g["runs"].to_numpy()
    for i in range(len(g)):
        for j in range(i + 1, len(g)):
            if k[j] / n[j] < k[i] / n[i]:
                p = fisher_exact([[k[i], n[i] - k[i]], [k[j], n[j] - k[j]]]).pvalue
                if p < ALPHA:
                    return True
    return False


def compare(a: pd.DataFrame, b: pd.DataFrame, threshold: float | None = None) -> dict:
    """Two configurations' runs compared: Fisher's exact test on success (hitting-based) and the
    Mann-Whitney rank test on the epochs to threshold, a run that never got there ranked last.

    Parameters
    ----------
    a, b : DataFrame
        runs.parquet rows of each configuration (with ``epochs_to_threshold``, recomputed for
        ``threshold`` by the caller when it differs from the stored one).

    Returns
    -------
    dict
        ``successes_a``, ``runs_a``, ``successes_b``, ``runs_b``, ``median_epochs_a``,
        ``median_epochs_b`` (to threshold, of the successes), ``p_success`` (two-sided),
        ``p_epochs`` (two-sided; NaN when neither succeeded), and ``significant_success``,
        ``significant_epochs`` (p < `ALPHA`).
    """
    from scipy.stats import fisher_exact, mannwhitneyu

    def epochs(t):
        e = pd.to_numeric(t["epochs_to_threshold"], errors="coerce").to_numpy(dtype=np.float64)
        return np.where(np.isnan(e), np.inf, e)

    ea, eb = epochs(a), epochs(b)
    ka, kb = int(np.isfinite(ea).sum()), int(np.isfinite(eb).sum())
    p_success = fisher_exact([[ka, len(ea) - ka], [kb, len(eb) - kb]]).pvalue
    p_epochs = mannwhitneyu(ea, eb).pvalue if ka + kb else float("nan")
    return {
        "successes_a": ka,
        "runs_a": len(ea),
        "successes_b": kb,
        "runs_b": len(eb),
        "median_epochs_a": float(np.median(ea[np.isfinite(ea)])) if ka else float("nan"),
        "median_epochs_b": float(np.median(eb[np.isfinite(eb)])) if kb else float("nan"),
        "p_success": float(p_success),
        "p_epochs": float(p_epochs),
        "significant_success": bool(p_success < ALPHA),
        "significant_epochs": bool(p_epochs < ALPHA),
    }


def neighbour_tests(runs: pd.DataFrame, threshold: float, curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """`compare` for every pair of neighbouring widths with the other axes equal.

    Returns
    -------
    DataFrame
        The group's axes, ``width_a`` < ``width_b``, then `compare`'s columns. The p-values are
        not adjusted for the number of pairs.
    """
    runs = runs.assign(epochs_to_threshold=hit_epochs(runs, curves, threshold))
    axes = [a for a in config_axes(runs) if a != "width"]
    rows = []
    for key, g in runs.groupby(axes, sort=True):
        widths = sorted(g["width"].unique())
        for wa, wb in zip(widths[:-1], widths[1:], strict=True):
            row = dict(zip(axes, key, strict=True))
            row.update(width_a=wa, width_b=wb)
            row.update(compare(g[g["width"] == wa], g[g["width"] == wb]))
            rows.append(row)
    return pd.DataFrame(rows)


def best_settings(summary: pd.DataFrame, tuning: tuple[str, ...] = TUNING) -> pd.DataFrame:
    """Each architecture at its own best setting of the swept tuning axes (learning rate,
    initialization, ...): the configuration with the lowest ERT, ties broken by the higher success
    rate, then the lower median final loss (as careful optimizer benchmarks compare methods at
    their best tuned settings). Empty when no tuning axis varies.

    Returns
    -------
    DataFrame
        The chosen summary rows, with ``chosen_from`` (how many settings were tried).
    """
    varying = [a for a in tuning if a in summary.columns and summary[a].nunique() > 1]
    if not varying or not len(summary):
        return summary.iloc[0:0].assign(chosen_from=pd.Series(dtype=int))
    architecture = [a for a in config_axes(summary) if a not in varying]
    ranked = summary.assign(_neg=-summary["success"]).sort_values(["ert", "_neg", "median"], kind="stable")
    best = ranked.groupby(architecture, sort=True).head(1).drop(columns="_neg")
    counts = summary.groupby(architecture).size().rename("chosen_from").reset_index()
    return best.merge(counts, on=architecture).sort_values(architecture).reset_index(drop=True)


def _refit_without(
    W: list[np.ndarray], b: list[np.ndarray] | None, f: tuple, i: int, j: int
) -> tuple[list, list | None]:
    """Remove unit j of hidden layer i (0-based: between W[i] and W[i + 1]) and refit the next
    layer's weights (and bias) by least squares over all the remaining units of layer i, so that
    the next layer's pre-activations z_{i+1} = f_i W_{i+1} + b_{i+1} on the data are reproduced as
    well as they can be without unit j: min |[F, 1] A - z_{i+1}|^2 over A, F the other units'
    activations (no column of ones without biases). Exact when the unit is a combination of the
    others (a duplicate, a sign-flipped copy, a constant unit) on the data."""
    W, b = list(W), None if b is None else list(b)
    F = np.delete(f[i + 1], j, axis=1)  # (n, h - 1)
    z = f[i + 1] @ W[i + 1] + (b[i + 1] if b is not None else 0.0)  # (n, n_{i+2})
    A = np.concatenate([F, np.ones((len(F), 1))], axis=1) if b is not None else F
    coef = np.linalg.lstsq(A, z, rcond=None)[0]
    W[i] = np.delete(W[i], j, axis=1)
    W[i + 1] = coef[: F.shape[1]]
    if b is not None:
        b[i] = np.delete(b[i], j)
        b[i + 1] = coef[F.shape[1]]
    return W, b


def redundant_units(
    net: Network, X: np.ndarray, Y: np.ndarray, threshold: float, *, loss: str = "half_squared"
) -> np.ndarray:
    """Hidden units each solved replica can lose, one at a time and greedily, with its training loss
    staying close to its own.

    Each step tries removing every hidden unit (the next layer refitted by least squares over all
    the remaining units, see `_refit_without`) and keeps the removal with the lowest loss, as long
    as that loss stays within ``loss_0 (1 + PRUNE_RTOL) + PRUNE_ATOL * threshold`` of the trained
    network's own loss ``loss_0``: a network at 1e-12 may not be degraded to the threshold. Every
    hidden layer keeps at least one unit. The count is a greedy one (a lower bound of what an exact
    search would remove). On n samples a layer's activations (with a column of ones) have rank at
    most n, so at most n units (n - 1 with biases) are ever needed to pass on what it computes.

    Returns
    -------
    ndarray (R,)
        Units removed; NaN for a replica whose loss is not below the threshold to begin with.
    """
    out = np.full(net.n_replicas, np.nan)
    start = loss_of(net, X, Y, loss=loss)
    for r in np.flatnonzero(start < threshold):
        allowed = start[r] * (1 + PRUNE_RTOL) + PRUNE_ATOL * threshold
        W = [w[r] for w in net.weights]
        b = None if net.biases is None else [v[r] for v in net.biases]
        removed = 0
        while True:
            f = _forward_one(W, b, X, net)
            best = None
            for i in range(len(W) - 1):
                if W[i].shape[1] < 2:
                    continue
                candidates = [_refit_without(W, b, f, i, j) for j in range(W[i].shape[1])]
                # All candidates of one layer share a shape: one batched forward pass as replicas.
                stacked = Network(
                    tuple(np.stack([c[0][m] for c in candidates]) for m in range(len(W))),
                    None
                    if b is None
                    else tuple(np.stack([c[1][m] for c in candidates]) for m in range(len(W))),
                    hidden=net.hidden,
                    output=net.output,
                )
                losses = loss_of(stacked, X, Y, loss=loss)
                if not np.isfinite(losses).any():
                    continue
                j = int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan)))
                if best is None or losses[j] < best[0]:
                    best = (losses[j], candidates[j])
            if best is None or not best[0] <= allowed:
                break
            W, b = best[1]
            removed += 1
        out[r] = removed
    return out


def _forward_one(W, b, X, net: Network) -> tuple[np.ndarray, ...]:
    """f_0, ..., f_L (each (n, h_i)) of one replica given as per-layer 2-D arrays."""
    f, fs = X, [X]
    for i, w in enumerate(W):
        z = f @ w + (b[i] if b is not None else 0.0)
        f = ACTIVATIONS[net.output if i == len(W) - 1 else net.hidden](z)
        fs.append(f)
    return tuple(fs)


def redundancy(
    runs: pd.DataFrame, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray, threshold: float
) -> pd.DataFrame:
    """`redundant_units` of every run with saved parameters.

    Parameters
    ----------
    runs : DataFrame
        runs.parquet rows.
    params : dict
        run id -> final parameters (n_params,), as `nnlab.sweep.read_networks` returns.
    X, Y : ndarray
        The training data.

    Returns
    -------
    DataFrame
        ``run_id``, ``redundant_units`` (NaN for an unsolved run), ``kept_units``.
    """
    rows = []
    have = runs[runs["run_id"].isin(params.keys())]
    for (depth, width, bias, hidden, output, loss), g in have.groupby(
        ["depth", "width", "bias", "hidden", "output", "loss_fn"], sort=True
    ):
        sizes = [X.shape[1], *[int(width)] * int(depth), Y.shape[1]]
        flat = np.stack([params[i] for i in g["run_id"]])
        net = network_from_flat(flat, sizes, bias=bool(bias), hidden=hidden, output=output)
        with np.errstate(all="ignore"):
            removed = redundant_units(net, X, Y, threshold, loss=loss)
        for run_id, n in zip(g["run_id"], removed, strict=True):
            rows.append({"run_id": run_id, "redundant_units": n, "kept_units": depth * width - n})
    return pd.DataFrame(rows, columns=["run_id", "redundant_units", "kept_units"])


def chain_gradients(
    lengths: Sequence[int], seeds: Sequence[int], X: np.ndarray, Y: np.ndarray, *, loss: str = "half_squared"
) -> pd.DataFrame:
    """|dLoss/dw_1| at initialization of the single-unit tanh chain f_L = tanh(... tanh(x w_1) ... w_L),
    computed with `backprop`, for every chain length L and seed.

    The gradient carries the product of the (1 - f_i^2) w_{i+1} factors, so it shrinks (or grows)
    geometrically with L.

    Returns
    -------
    DataFrame
        ``L``, ``seed``, ``grad_w1`` (absolute value), ``loss`` (at initialization).
    """
    frames = []
    for L in lengths:
        net = init_network([1] * (L + 1), seeds=list(seeds), bias=False)
        g = backprop(net, X, Y, loss=loss)
        frames.append(
            pd.DataFrame(
                {"L": L, "seed": list(seeds), "grad_w1": np.abs(g.weights[0][:, 0, 0]), "loss": g.loss}
            )
        )
    return pd.concat(frames, ignore_index=True)
