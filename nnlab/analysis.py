"""Statistics of a sweep's tables: what the seeds of each configuration reached, and capacity.

Pure functions, DataFrame in and DataFrame out. Per configuration: the spread of final losses
(median, IQM, quantiles), the success rate with its Wilson interval, the expected running time
(ERT), the number of distinct final optima, and a capacity label; per depth, the smallest widths
that solve the task; per trained network, the hidden units it does not need.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from nnlab.experiment import AXES
from nnlab.network import ACTIVATIONS, Network, backprop, init_network, loss_of, network_from_flat

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
RELIABLE = 0.95  # a configuration is over-capacity when at least this share of its seeds solves
UNDER, CRITICAL, OVER, DIVERGED = "under-capacity", "critical", "over-capacity", "diverged"
LABELS = (UNDER, CRITICAL, OVER, DIVERGED)
# Defaults of `distinct_optima`. With a constant learning rate SGD never settles: at a minimum the
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


def distinct_optima(final_loss, stopped, threshold: float, *, rtol: float = RTOL) -> int:
    """How many distinct optima the runs ended in.

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
    return [a for a in AXES if a in runs.columns]


def varying_axes(table: pd.DataFrame) -> list[str]:
    """The configuration columns that take more than one value in ``table``."""
    return [a for a in config_axes(table) if table[a].nunique() > 1]


def summarize(
    runs: pd.DataFrame,
    threshold: float,
    *,
    curves: pd.DataFrame | None = None,
    gtol: float = GTOL,
    rtol: float = RTOL,
    redundant: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The per-configuration statistics table.

    Parameters
    ----------
    runs : DataFrame
        runs.parquet: one row per run.
    threshold : float
        The experiment's threshold: a run succeeded when its final loss is below it.
    curves : DataFrame, optional
        curves.parquet; with it a run must also have a flat loss to count as stopped, and the
        epochs to ``threshold`` are read from the curves (otherwise from ``epochs_to_threshold``).
    gtol, rtol : float
        See `stopped_runs` and `distinct_optima`.
    redundant : DataFrame, optional
        `redundancy`'s table (run_id, redundant_units): adds ``redundant_units``, the median over
        a configuration's solved runs.

    Returns
    -------
    DataFrame
        One row per configuration (its axes first, in grid order), then ``runs``, ``diverged``,
        ``n_params``, the final loss's ``median``, ``iqm``, ``q10``, ``q25``, ``q75``, ``q90``
        (a diverged run's loss counts as +inf), ``successes``, ``success`` (rate) with its Wilson
        95% interval ``success_lo``, ``success_hi``, ``ert`` (epochs; inf when no run succeeded),
        ``median_epochs`` (to threshold, among the successes), ``stopped`` (runs that stopped
        moving, `stopped_runs`), ``optima`` (`distinct_optima`) and ``capacity`` (see
        `capacity_label`); with a held-out split also ``median_test_loss``; for a classification
        loss (runs with ``train_accuracy``) ``median_accuracy``, and with a held-out split
        ``median_test_accuracy``: the median over the seeds of the share of samples classified right.
    """
    axes = config_axes(runs)
    runs = runs.reset_index(drop=True)
    still = pd.Series(stopped_runs(runs, curves, gtol=gtol, rtol=rtol), index=runs.index)
    if curves is not None:
        # From the curves, so that a threshold other than the one the runs were stored with holds.
        below = curves[curves["loss"] < threshold].groupby("run_id")["epoch"].min()
        runs = runs.assign(epochs_to_threshold=runs["run_id"].map(below))
    if redundant is not None:
        per_run = redundant.set_index("run_id")["redundant_units"]
    rows = []
    for key, g in runs.groupby(axes, sort=True):
        loss = g["final_loss"].to_numpy(dtype=np.float64)
        loss = np.where(np.isnan(loss), np.inf, loss)
        e = pd.to_numeric(g["epochs_to_threshold"], errors="coerce").to_numpy(dtype=np.float64)
        success = loss < threshold
        q = quantiles(loss, [0.1, 0.25, 0.5, 0.75, 0.9])
        row = dict(zip(axes, key, strict=True))
        row.update(
            runs=len(g),
            diverged=int(g["diverged"].sum()),
            n_params=int(g["n_params"].iloc[0]),
            median=q[2],
            iqm=iqm(loss),
            q10=q[0],
            q25=q[1],
            q75=q[3],
            q90=q[4],
            successes=int(success.sum()),
            success=success.mean(),
            ert=ert(np.where(success, e, np.nan), g["epochs"].to_numpy()),
            median_epochs=float(np.median(e[success])) if success.any() else np.nan,
            stopped=int(np.count_nonzero(still[g.index])),
            optima=distinct_optima(loss, still[g.index], threshold, rtol=rtol),
        )
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
        table["capacity"] = [
            capacity_label(s, d / n)
            for s, d, n in zip(table["success"], table["diverged"], table["runs"], strict=True)
        ]
        first = [*axes, "runs", "diverged", "n_params", "median", "iqm", "q10", "q25", "q75", "q90"]
        first += ["successes", "success", "success_lo", "success_hi"]
        table = table[first + [c for c in table.columns if c not in first]]
    return table


def capacity_label(success: float, diverged: float = 0.0) -> str:
    """under-capacity (no seed solved), over-capacity (at least 95% solved), or critical; no
    verdict, "diverged", when no seed solved and at least half the seeds diverged (``diverged``,
    a share): the learning rate failed there, not the width."""
    if success <= 0:
        return DIVERGED if diverged >= 0.5 else UNDER
    return OVER if success >= RELIABLE else CRITICAL


def capacity(summary: pd.DataFrame) -> pd.DataFrame:
    """Per depth (and every other swept axis but width): the smallest width that ever solves the
    task (``min_width_solves``) and the smallest width that solves it in at least 95% of seeds
    (``min_width_reliable``); NaN where no width does."""
    axes = [a for a in config_axes(summary) if a != "width"]
    rows = []
    for key, g in summary.groupby(axes, sort=True):
        solves = g.loc[g["successes"] > 0, "width"]
        reliable = g.loc[g["success"] >= RELIABLE, "width"]
        row = dict(zip(axes, key, strict=True))
        row.update(
            widths=", ".join(str(w) for w in sorted(g["width"])),
            min_width_solves=solves.min() if len(solves) else np.nan,
            min_width_reliable=reliable.min() if len(reliable) else np.nan,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _absorb_fits(F: np.ndarray, intercept: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each unit j of a layer's activations F (n, h): the other unit k whose affine function
    a f_k + c fits f_j best (least squares over the samples), or k = -1 when a constant alone fits
    at least as well. Without ``intercept`` (a bias-free network, whose next layer has no bias to
    absorb c) the fit is a f_k and the fallback is zero. Returns k, a, c, each (h,)."""
    mean = F.mean(axis=0) if intercept else np.zeros(F.shape[1])
    C = F - mean
    cov = C.T @ C / len(F)
    var = np.diag(cov).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(var[None, :] > 0, cov / var[None, :], 0.0)  # a[j, k]: f_j on f_k
    residual = var[:, None] - a * cov  # var(f_j - a f_k)
    np.fill_diagonal(residual, np.inf)
    k = residual.argmin(axis=1)
    rows = np.arange(len(var))
    constant = residual[rows, k] >= var  # a constant fits as well as any other unit
    k = np.where(constant, -1, k)
    a_best = np.where(constant, 0.0, a[rows, k])
    c = mean - a_best * np.where(constant, 0.0, mean[k])
    return k, a_best, c


def _merge_unit(W: list[np.ndarray], b: list[np.ndarray] | None, i: int, j: int, k: int, a: float, c: float):
    """Remove unit j of hidden layer i, letting layer i + 1 absorb it: with f_j fitted as a f_k + c
    (`_absorb_fits`), the next layer's weights take a W_{i+1}[j] onto row k (k >= 0) and
    c W_{i+1}[j] into its bias. Exact for a duplicated (or sign-flipped) unit and for a unit that
    is constant on the data."""
    W = list(W)
    nxt = W[i + 1].copy()
    if k >= 0:
        nxt[k] += a * nxt[j]
    if b is not None:
        b = list(b)
        b[i + 1] = b[i + 1] + c * nxt[j]
        b[i] = np.delete(b[i], j)
    W[i + 1] = np.delete(nxt, j, axis=0)
    W[i] = np.delete(W[i], j, axis=1)
    return W, b


def redundant_units(
    net: Network, X: np.ndarray, Y: np.ndarray, threshold: float, *, loss: str = "half_squared"
) -> np.ndarray:
    """Hidden units each replica can lose, one at a time and greedily, with its training loss
    staying below ``threshold``.

    Each step tries removing every hidden unit (a removed unit's contribution is absorbed by the
    next layer, see `_merge_unit`) and keeps the removal with the lowest loss, as long as that loss
    is below the threshold; every hidden layer keeps at least one unit.

    Returns
    -------
    ndarray (R,)
        Units removed; NaN for a replica whose loss is not below the threshold to begin with.
    """
    out = np.full(net.n_replicas, np.nan)
    start = loss_of(net, X, Y, loss=loss)
    for r in np.flatnonzero(start < threshold):
        W = [w[r] for w in net.weights]
        b = None if net.biases is None else [v[r] for v in net.biases]
        removed = 0
        while True:
            f = _forward_one(W, b, X, net)
            best = None
            for i in range(len(W) - 1):
                if W[i].shape[1] < 2:
                    continue
                fits = _absorb_fits(f[i + 1], intercept=b is not None)
                candidates = [_merge_unit(W, b, i, j, *(v[j] for v in fits)) for j in range(W[i].shape[1])]
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
            if best is None or not best[0] < threshold:
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
        ["depth", "width", "bias", "hidden", "output", "loss"], sort=True
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
