"""Success over time with censoring: Kaplan-Meier curves of the epochs to threshold and the log-rank
test between neighbouring widths.

A run that reached the threshold is an event at its first epoch below it (``epochs_to_threshold``);
one that never did is censored at its budget (``epochs``): it did not succeed within that many
epochs, which says nothing about later. With one budget for every run the Kaplan-Meier success curve
equals the share of seeds solved by each epoch; with several budgets (runs resumed, sweeps of
epochs) only the censored estimate is right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnlab.analysis.runs import config_axes, hit_epochs
from nnlab.schema import ALPHA, LEVEL


def kaplan_meier(time, observed, *, level: float = LEVEL) -> pd.DataFrame:
    """The Kaplan-Meier estimate of the survival function S(t) = P(T > t), with the pointwise
    confidence interval from Greenwood's variance on the log(-log S) scale (Kalbfleisch & Prentice;
    it stays inside [0, 1]; scipy.stats.ecdf's ``method="log-log"``).

    Parameters
    ----------
    time : array (n,)
        Event or censoring times.
    observed : array of bool (n,)
        True for an event (here: the run reached the threshold), False for censored at ``time``.
        A censoring at an event's time counts as still at risk then.
    level : float
        The interval's coverage.

    Returns
    -------
    DataFrame
        One row per distinct event time: ``time``, ``at_risk``, ``events``, ``survival``, ``lo``,
        ``hi`` (NaN where S is 0 or 1: the interval is not defined there; `survival_curves`
        fills it).
    """
    from scipy.stats import norm

    t = np.asarray(time, dtype=np.float64)
    d = np.asarray(observed, dtype=bool)
    if t.shape != d.shape or t.ndim != 1:
        raise ValueError(f"time, observed: expected two 1-D arrays of one length, got {t.shape}, {d.shape}")
    if not np.isfinite(t).all():
        raise ValueError("time: expected finite times (censor a run that never succeeded at its budget)")
    times = np.unique(t[d])
    at_risk = len(t) - np.searchsorted(np.sort(t), times, side="left")
    events = np.array([np.count_nonzero(d & (t == u)) for u in times], dtype=np.int64)
    surv = np.cumprod(1 - events / at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(events / (at_risk * (at_risk - events)))
        z = norm.ppf(0.5 + level / 2)
        log_s = np.log(surv)
        half = z * np.sqrt(greenwood) / np.abs(log_s)
        # log(-log S) +- half, back-transformed: the bigger log(-log S), the smaller S.
        lo = np.exp(-np.exp(np.log(-log_s) + half))
        hi = np.exp(-np.exp(np.log(-log_s) - half))
    undefined = (surv <= 0) | (surv >= 1)
    lo[undefined], hi[undefined] = np.nan, np.nan
    return pd.DataFrame(
        {"time": times, "at_risk": at_risk, "events": events, "survival": surv, "lo": lo, "hi": hi}
    )


def _times(runs: pd.DataFrame, threshold: float | None, curves: pd.DataFrame | None):
    """(time, observed): each run's first epoch below the threshold, or its budget, censored."""
    if threshold is None:
        hit = pd.to_numeric(runs["epochs_to_threshold"], errors="coerce").to_numpy(dtype=np.float64)
    else:
        hit = hit_epochs(runs, curves, threshold)
    observed = np.isfinite(hit)
    return np.where(observed, hit, runs["epochs"].to_numpy(dtype=np.float64)), observed


def survival_curves(
    runs: pd.DataFrame, threshold: float | None = None, curves: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per configuration, the Kaplan-Meier share of runs that have reached the threshold by each
    epoch (1 - S) with its interval (`kaplan_meier`, log-log Greenwood, `LEVEL`).

    Parameters
    ----------
    runs : DataFrame
        runs.parquet rows (``epochs_to_threshold``, ``epochs`` and the configuration's axes).
    threshold : float, optional
        Recompute the epochs to threshold for it (from ``curves`` when given); by default the
        stored ``epochs_to_threshold``.

    Returns
    -------
    DataFrame
        The configuration's axes, then ``epoch`` (0, each event epoch, and the last budget),
        ``at_risk``, ``events``, ``success`` (the Kaplan-Meier estimate of P(T <= epoch)),
        ``success_lo``, ``success_hi`` and ``runs``. Where the estimate is 0 the interval is
        [0, 0]; where every run at risk succeeded it is [its value just before, 1] (no variance to
        go on: the conservative reading).
    """
    runs = runs.reset_index(drop=True)
    axes = config_axes(runs)
    time, observed = _times(runs, threshold, curves)
    frames = []
    for key, idx in runs.groupby(axes, sort=True).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        km = kaplan_meier(time[idx], observed[idx])
        last = float(time[idx].max())
        success = 1 - km["survival"].to_numpy()
        lo, hi = 1 - km["hi"].to_numpy(), 1 - km["lo"].to_numpy()
        full = success >= 1
        before = np.concatenate([[0.0], success[:-1]])
        lo = np.where(full, before, lo)
        hi = np.where(full, 1.0, hi)
        frame = pd.DataFrame(
            {
                "epoch": np.concatenate([[0.0], km["time"], [last]]),
                "at_risk": np.concatenate([[len(idx)], km["at_risk"], [np.nan]]),
                "events": np.concatenate([[0], km["events"], [0]]),
                "success": np.concatenate([[0.0], success, [success[-1] if len(success) else 0.0]]),
                "success_lo": np.concatenate([[0.0], lo, [lo[-1] if len(lo) else 0.0]]),
                "success_hi": np.concatenate([[0.0], hi, [hi[-1] if len(hi) else 0.0]]),
            }
        )
        # (An event at epoch 0 makes the first two rows one epoch: keep the event's.)
        frame = frame.drop_duplicates("epoch", keep="last").reset_index(drop=True)
        frame["at_risk"] = frame["at_risk"].astype("Int64")
        frame["runs"] = len(idx)
        where = pd.DataFrame({a: [v] * len(frame) for a, v in zip(axes, key, strict=True)})
        frames.append(pd.concat([where, frame], axis=1))
    columns = [*axes, "epoch", "at_risk", "events", "success", "success_lo", "success_hi", "runs"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def logrank_tests(
    runs: pd.DataFrame, threshold: float | None = None, curves: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The log-rank test (scipy.stats.logrank on scipy.stats.CensoredData, two-sided) of the epochs
    to threshold between every pair of neighbouring widths with the other axes equal, runs that
    never reached the threshold censored at their budget.

    Returns
    -------
    DataFrame
        The group's axes, ``width_a`` < ``width_b``, ``runs_a``, ``runs_b``, ``successes_a``,
        ``successes_b``, ``statistic`` (scipy's: positive when width_a succeeds sooner), ``p_logrank``
        (NaN when neither width ever succeeded: nothing to compare) and ``significant_logrank``
        (p < `ALPHA`). Not adjusted for the number of pairs.
    """
    from scipy.stats import CensoredData, logrank

    runs = runs.reset_index(drop=True)
    time, observed = _times(runs, threshold, curves)
    axes = [a for a in config_axes(runs) if a != "width"]
    rows = []
    for key, g in runs.groupby(axes, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        widths = sorted(g["width"].unique())
        for wa, wb in zip(widths[:-1], widths[1:], strict=True):
            a = g.index[g["width"] == wa].to_numpy()
            b = g.index[g["width"] == wb].to_numpy()
            row = dict(zip(axes, key, strict=True))
            row.update(
                width_a=wa,
                width_b=wb,
                runs_a=len(a),
                runs_b=len(b),
                successes_a=int(observed[a].sum()),
                successes_b=int(observed[b].sum()),
            )
            stat = p = np.nan
            if observed[a].any() or observed[b].any():

                def data(i):
                    return CensoredData(uncensored=time[i][observed[i]], right=time[i][~observed[i]])

                result = logrank(data(a), data(b))
                stat, p = float(result.statistic), float(result.pvalue)
            row.update(statistic=stat, p_logrank=p, significant_logrank=bool(p < ALPHA))
            rows.append(row)
    columns = [
        *axes,
        "width_a",
        "width_b",
        "runs_a",
        "runs_b",
        "successes_a",
        "successes_b",
        "statistic",
        "p_logrank",
        "significant_logrank",
    ]
    return pd.DataFrame(rows, columns=columns)
