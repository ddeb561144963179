"""The runs table: its axes, and per-run statistics: when a run first hit the threshold, whether it was still
descending, ended worse than it began, or stopped at a point (the uncertified optima estimate).

Each statistic is read from the columns the runs were stored with (nnlab.schema.RUN_STATISTICS,
computed from every epoch when a job's runs are stored), so the summary never reads curves.parquet;
given the curves, it is computed from them instead (the same numbers on whole curves)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnlab.schema import AXIS_COLUMNS

# A run is still descending when its mean loss over the last twentieth of the epochs is this much
# (relative) below the mean over the twentieth before.
DESCENT = 0.01
# Defaults of `optima_estimate`. With a constant learning rate SGD never settles: at a minimum the
# full-data gradient stays at the noise level (about 1e-2 in the canonical studies, while the
# loss is flat for hundreds of epochs), and the final loss wanders by some 10% around the minimum.
GTOL = 0.05
RTOL = 0.1


def config_axes(runs: pd.DataFrame) -> list[str]:
    """The configuration columns of a runs table (every grid axis it has)."""
    return [a for a in AXIS_COLUMNS if a in runs.columns]


def varying_axes(table: pd.DataFrame) -> list[str]:
    """The configuration columns that take more than one value in ``table``."""
    return [a for a in config_axes(table) if table[a].nunique() > 1]


def stopped_runs(
    runs: pd.DataFrame, curves: pd.DataFrame | None = None, *, gtol: float = GTOL, rtol: float = RTOL
) -> np.ndarray:
    """Which runs have stopped moving: a finite final loss, a final full-data gradient norm of at
    most ``gtol`` and, given the curves or the stored ``late_loss``, a loss that changed by at most
    ``rtol`` (relative) over the last tenth of the epochs (a run still descending slowly has a small
    gradient too).

    Returns
    -------
    ndarray of bool, one per row of ``runs``.
    """
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    ok = np.isfinite(loss) & (runs["final_grad_norm"].to_numpy(dtype=np.float64) <= gtol)
    if curves is None and "late_loss" in runs.columns:
        before = runs["late_loss"].to_numpy(dtype=np.float64)
    elif curves is not None and len(runs):
        epochs = runs["epochs"].to_numpy()
        earlier = epochs - np.maximum(1, np.rint(0.1 * epochs).astype(int))
        wanted = pd.MultiIndex.from_arrays([runs["run_id"].to_numpy(), earlier])
        before = curves.set_index(["run_id", "epoch"])["loss"].reindex(wanted).to_numpy(dtype=np.float64)
    else:
        return ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return ok & (np.abs(loss - before) <= rtol * np.abs(loss))


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
    that the epoch-to-epoch noise of SGD does not count as descent). False without curves or the
    stored means (``tail_before``, ``tail_last``), and for a run whose loss is not finite there."""
    if curves is None and "tail_last" in runs.columns:
        before = runs["tail_before"].to_numpy(dtype=np.float64)
        last = runs["tail_last"].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return np.isfinite(last) & (before - last > drop * np.abs(last))
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
    saturation, where the loss is flat and the gradient zero). False without curves or the stored
    ``initial_loss``."""
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    if curves is None and "initial_loss" in runs.columns:
        start = runs["initial_loss"].to_numpy(dtype=np.float64)
    elif curves is None or not len(runs):
        return np.zeros(len(runs), dtype=bool)
    else:
        wanted = pd.MultiIndex.from_arrays([runs["run_id"].to_numpy(), np.zeros(len(runs), dtype=int)])
        start = curves.set_index(["run_id", "epoch"])["loss"].reindex(wanted).to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(loss) & (loss > start * (1 + rtol))
