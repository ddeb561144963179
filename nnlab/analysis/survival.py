"""Success over time with censoring: Kaplan-Meier curves of the epochs to threshold and the log-rank
test between neighbouring widths.

A run that reached the threshold is an event at its first epoch below it (``epochs_to_threshold``);
one that never did is censored at its budget (``epochs``): it did not succeed within that many
epochs, which says nothing about later. With one budget for every run the Kaplan-Meier success curve
equals the share of seeds solved by each epoch; with several budgets (runs resumed, sweeps of
epochs) only the censored estimate is right.

Where `nnlab landscape` ran the SGD escape test of a failed run's end point (SGD resumed from it
with fresh shuffling streams), the run is followed into the first of those streams, its
continuation (`with_continuations` joins it from endpoints.parquet): an event at budget + the
epochs that stream took to reach the threshold, or censored at budget + the epochs it ran. Any
stream is an equally good continuation (the shuffles after the budget are fresh in either case);
the first is taken so that each run stays one observation (the log-rank test needs whole counts).
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


# endpoints.parquet's columns of a failed run's continuation (`nnlab.sweep.endpoints.ESCAPE_COLUMNS`):
# the first escape stream's epochs to the threshold (NaN: it never got there) and the epochs it ran.
CONTINUATION = ("escape_first", "escape_length")


def with_continuations(runs: pd.DataFrame, endpoints: pd.DataFrame | None) -> pd.DataFrame:
    """``runs`` with the `CONTINUATION` columns of ``endpoints`` (endpoints.parquet) joined by run
    id, NaN for a run without one; ``runs`` unchanged without endpoints or when they predate the
    columns (certified before the continuation was recorded: the runs are censored at the budget)."""
    if endpoints is None or not set(CONTINUATION) <= set(endpoints.columns):
        return runs
    known = endpoints[["run_id", *CONTINUATION]].drop_duplicates("run_id")
    out = runs.drop(columns=[c for c in CONTINUATION if c in runs.columns])
    joined = out.merge(known, on="run_id", how="left")
    joined.index = runs.index
    return joined


def continued(runs: pd.DataFrame) -> bool:
    """Whether some run of ``runs`` that never reached the threshold is followed into its SGD
    continuation (`survival_times`), rather than censored at its budget."""
    if not set(CONTINUATION) <= set(runs.columns):
        return False
    hit = pd.to_numeric(runs["epochs_to_threshold"], errors="coerce")
    length = pd.to_numeric(runs["escape_length"], errors="coerce")
    return bool((hit.isna() & length.notna() & _plain_sgd(runs)).any())


# The training settings under which a run continued is what the escape test resumed: plain SGD.
PLAIN_SGD = {"optimizer": "sgd", "schedule": "constant", "weight_decay": 0.0}


def _plain_sgd(runs: pd.DataFrame) -> np.ndarray:
    """Which runs were trained by plain SGD at a constant rate (an axis the table lacks: default)."""
    plain = np.ones(len(runs), dtype=bool)
    for axis, value in PLAIN_SGD.items():
        if axis in runs.columns:
            plain &= (runs[axis] == value).to_numpy()
    return plain


def survival_times(
    runs: pd.DataFrame, threshold: float | None = None, curves: pd.DataFrame | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each run's time and whether it is an event, as the Kaplan-Meier curves and log-rank tests
    read them.

    A run that reached the threshold: an event at its first epoch below it. One that did not:
    with the `CONTINUATION` columns (`with_continuations`) and a finite ``escape_length``, an
    event at ``epochs`` + ``escape_first`` when its continuation reached the threshold, otherwise
    censored at ``epochs`` + ``escape_length``; without them, censored at its budget ``epochs``.
    The continuations were run to the experiment's threshold, so they are not used when
    ``threshold`` and ``curves`` recompute the epochs for another; and they resume plain SGD at the
    run's constant rate, so a run trained otherwise (another optimizer, a schedule, weight decay)
    stays censored at its budget: its continuation is not its training continued.

    Returns
    -------
    time : ndarray (n,) of float
    observed : ndarray (n,) of bool
    """
    if threshold is None:
        hit = pd.to_numeric(runs["epochs_to_threshold"], errors="coerce").to_numpy(dtype=np.float64)
    else:
        hit = hit_epochs(runs, curves, threshold)
    observed = np.isfinite(hit)
    budget = runs["epochs"].to_numpy(dtype=np.float64)
    time = np.where(observed, hit, budget)
    if (threshold is None or curves is None) and set(CONTINUATION) <= set(runs.columns):
        first = pd.to_numeric(runs["escape_first"], errors="coerce").to_numpy(dtype=np.float64)
        length = pd.to_numeric(runs["escape_length"], errors="coerce").to_numpy(dtype=np.float64)
        followed = ~observed & np.isfinite(length) & _plain_sgd(runs)
        escaped = followed & np.isfinite(first)
        time = np.where(escaped, budget + first, np.where(followed, budget + length, time))
        observed = observed | escaped
    return time, observed


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
        The configuration's axes, then ``epoch`` (0, each event epoch, and the last time a run
        was followed: its budget, or the end of its continuation, `survival_times`),
        ``at_risk``, ``events``, ``success`` (the Kaplan-Meier estimate of P(T <= epoch)),
        ``success_lo``, ``success_hi`` and ``runs``. Where the estimate is 0 the interval is
        [0, 0]; where every run at risk succeeded it is [its value just before, 1] (no variance to
        go on: the conservative reading).
    """
    runs = runs.reset_index(drop=True)
    axes = config_axes(runs)
    time, observed = survival_times(runs, threshold, curves)
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
    never reached the threshold censored at their budget or followed into their continuation
    (`survival_times`).

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
    time, observed = survival_times(runs, threshold, curves)
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
