"""Comparisons: two sweeps side by side, and tests between neighbouring widths."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnlab.analysis.runs import config_axes, hit_epochs
from nnlab.schema import ALPHA


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
