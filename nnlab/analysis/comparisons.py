"""Comparisons: two sweeps side by side, and tests between neighbouring configurations.

Runs pair by seed: a seed fixes a run's initialization stream and its shuffling stream
(`nnlab.sgd.shuffle_keys`) whatever the configuration, so two configurations run on the same seeds
are compared seed by seed (paired tests), and otherwise as two samples (unpaired tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnlab.analysis.runs import config_axes, hit_epochs
from nnlab.schema import ALPHA

PAIRED = ("McNemar exact", "Wilcoxon signed-rank")  # (test on success, test on epochs to threshold)
UNPAIRED = ("Fisher exact", "Mann-Whitney U")


def pairs_by_seed(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether the runs of ``a`` and ``b`` pair by seed: both have a ``seed`` column, each seed once,
    and the same seeds."""
    if "seed" not in a.columns or "seed" not in b.columns or not len(a):
        return False
    sa, sb = a["seed"], b["seed"]
    return sa.is_unique and sb.is_unique and set(sa) == set(sb)


def compare(
    a: pd.DataFrame, b: pd.DataFrame, threshold: float | None = None, *, paired: bool | None = None
) -> dict:
    """Two configurations' runs compared on success (hitting-based) and on the epochs to threshold.

    Paired by seed (``paired``; default: when `pairs_by_seed`), McNemar's exact test on success
    (a two-sided binomial test on the discordant seeds: solved by one configuration and not the
    other) and the Wilcoxon signed-rank test on the epochs, a run that never got there counted at
    its budget + 1 (censored: the sign of its difference is known, its size a lower bound; seeds
    where neither got there differ by 0 and drop out). Unpaired: Fisher's exact test on success and
    the Mann-Whitney rank test on the epochs, a run that never got there ranked last.

    Parameters
    ----------
    a, b : DataFrame
        runs.parquet rows of each configuration (with ``epochs_to_threshold``, recomputed for
        ``threshold`` by the caller when it differs from the stored one, and ``epochs``, the budget,
        for the paired test).

    Returns
    -------
    dict
        ``successes_a``, ``runs_a``, ``successes_b``, ``runs_b``, ``median_epochs_a``,
        ``median_epochs_b`` (to threshold, of the successes), ``paired`` (the seeds paired),
        ``test_success`` and ``test_epochs`` (the tests' names), ``p_success`` (two-sided),
        ``p_epochs`` (two-sided; NaN when neither succeeded), and ``significant_success``,
        ``significant_epochs`` (p < `ALPHA`).
    """
    from scipy.stats import binomtest, fisher_exact, mannwhitneyu, wilcoxon

    def epochs(t):
        e = pd.to_numeric(t["epochs_to_threshold"], errors="coerce").to_numpy(dtype=np.float64)
        return np.where(np.isnan(e), np.inf, e)

    if paired is None:
        paired = pairs_by_seed(a, b)
    elif paired and not pairs_by_seed(a, b):
        raise ValueError("paired: the runs of a and b do not pair by seed (each seed once, the same seeds)")
    if paired:
        a, b = a.sort_values("seed"), b.sort_values("seed")
    ea, eb = epochs(a), epochs(b)
    ka, kb = int(np.isfinite(ea).sum()), int(np.isfinite(eb).sum())
    p_epochs = float("nan")
    if paired:
        only_a = int(np.count_nonzero(np.isfinite(ea) & ~np.isfinite(eb)))
        only_b = int(np.count_nonzero(np.isfinite(eb) & ~np.isfinite(ea)))
        p_success = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
        if ka + kb:
            budget_a = a["epochs"].to_numpy(dtype=np.float64) + 1
            budget_b = b["epochs"].to_numpy(dtype=np.float64) + 1
            d = np.where(np.isfinite(ea), ea, budget_a) - np.where(np.isfinite(eb), eb, budget_b)
            p_epochs = wilcoxon(d[d != 0]).pvalue if np.count_nonzero(d) else 1.0
    else:
        p_success = fisher_exact([[ka, len(ea) - ka], [kb, len(eb) - kb]]).pvalue
        if ka + kb:
            p_epochs = mannwhitneyu(ea, eb).pvalue
    tests = PAIRED if paired else UNPAIRED
    return {
        "successes_a": ka,
        "runs_a": len(ea),
        "successes_b": kb,
        "runs_b": len(eb),
        "median_epochs_a": float(np.median(ea[np.isfinite(ea)])) if ka else float("nan"),
        "median_epochs_b": float(np.median(eb[np.isfinite(eb)])) if kb else float("nan"),
        "paired": bool(paired),
        "test_success": tests[0],
        "test_epochs": tests[1],
        "p_success": float(p_success),
        "p_epochs": float(p_epochs),
        "significant_success": bool(p_success < ALPHA),
        "significant_epochs": bool(p_epochs < ALPHA),
    }


def neighbour_tests(runs: pd.DataFrame, threshold: float, curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """`compare` for every pair of neighbouring widths with the other axes equal: paired by seed
    where their runs pair (the same seeds), unpaired otherwise (a partial sweep).

    Returns
    -------
    DataFrame
        The group's axes, ``width_a`` < ``width_b``, then `compare`'s columns (``test_success`` and
        ``test_epochs`` name the tests used). The p-values are not adjusted for the number of pairs.
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
