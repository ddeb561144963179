"""The summary: one row per configuration, every statistic with its interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnlab.analysis.intervals import (
    BOOTSTRAP_REPS,
    bootstrap_ci,
    ert,
    iqm,
    quantiles,
    ranks_of,
    rng_of,
    rows_order_statistics,
    rows_spread,
    wilson,
)
from nnlab.analysis.runs import (
    GTOL,
    RTOL,
    config_axes,
    descending_runs,
    hit_epochs,
    optima_estimate,
    stopped_runs,
    worsened_runs,
)
from nnlab.analysis.verdicts import UNDECIDED, decide_seeds, verdict
from nnlab.schema import KINDS


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
        (see `verdict`) and ``decide_seeds`` (for an ``undecided`` one, the seeds at which its
        success rate would decide: `decide_seeds`; NaN for the others, inf where none would); and
        either, with
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
        rng = rng_of(key)
        # The bootstrap's draws index the rows: in seed order, its intervals depend on the runs stored,
        # not on the order a sweep (chunked, resumed, parallel) happened to store them in.
        g = g.sort_values(["seed", "run_id"] if "seed" in g else ["run_id"], kind="stable")
        loss = g["final_loss"].to_numpy(dtype=np.float64)
        loss = np.where(np.isnan(loss), np.inf, loss)
        e = pd.to_numeric(g["epochs_to_threshold"], errors="coerce").to_numpy(dtype=np.float64)
        budget = g["epochs"].to_numpy(dtype=np.float64)
        hit = ~np.isnan(e)
        q = quantiles(loss, [0.1, 0.25, 0.5, 0.75, 0.9])
        row = dict(zip(axes, key, strict=True))
        # The bootstrap resamples the ranks of the losses and counts (rows_order_statistics) where
        # sorting every resample would take 10x as long; the values are those of rows_median and
        # rows_spread on the resampled losses, the random draws the same.
        ordered, rank = ranks_of(loss)
        median_lo, median_hi = bootstrap_ci(
            rank[:, None], lambda r, o=ordered: _median(o, r[..., 0]), rng=rng, reps=reps
        )
        spread_lo, spread_hi = bootstrap_ci(
            rank[:, None], lambda r, o=ordered: _spread(o, r[..., 0]), rng=rng, reps=reps
        )
        # (Each run's share of the ERT's sum and whether it counts, as rows_ert sums them.)
        hit_budget = np.stack([np.where(hit, np.minimum(np.nan_to_num(e), budget), budget), hit], axis=1)
        ert_lo, ert_hi = bootstrap_ci(hit_budget, _ert, rng=rng, reps=reps)
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
            spread=float(rows_spread(loss[None])[0]),
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
        table["decide_seeds"] = [
            decide_seeds(k, n) if v == UNDECIDED else np.nan
            for k, n, v in zip(table["successes"], table["runs"], table["verdict"], strict=True)
        ]
        first = [*axes, "runs", "diverged", "n_params", "median", "median_lo", "median_hi", "iqm"]
        first += ["q10", "q25", "q75", "q90", "spread", "spread_lo", "spread_hi"]
        first += ["successes", "success", "success_lo", "success_hi", "success_final"]
        first += ["ert", "ert_lo", "ert_hi"]
        table = table[first + [c for c in table.columns if c not in first]]
    return table


def _median(ordered: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """`rows_median` of the resamples whose ranks (in ``ordered``) are the rows of ``ranks``."""
    n = ranks.shape[1]
    lo, hi = (ordered[k] for k in rows_order_statistics(ranks, [(n - 1) // 2, n // 2]))
    with np.errstate(invalid="ignore"):
        return np.where(lo == hi, lo, 0.5 * (lo + hi))


def _spread(ordered: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """`rows_spread` of the resamples whose ranks (in ``ordered``) are the rows of ``ranks``."""
    n = ranks.shape[1]
    ks = [int(np.floor(0.1 * (n - 1))), min(n - 1, int(np.ceil(0.9 * (n - 1))))]
    q10, q90 = (ordered[k] for k in rows_order_statistics(ranks, ks))
    with np.errstate(invalid="ignore"):
        d = q90 - q10
    return np.where(np.isnan(d), np.inf, d)


def _ert(x: np.ndarray) -> np.ndarray:
    """`rows_ert` of resampled (share of the sum, counts) pairs."""
    total = np.ascontiguousarray(x[..., 0]).sum(axis=1)
    k = x[..., 1].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k > 0, total / np.maximum(k, 1), np.inf)


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
