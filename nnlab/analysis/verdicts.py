"""Verdicts: each configuration's capacity label, the capacity table, each architecture at its best
setting."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnlab.analysis.runs import config_axes
from nnlab.schema import ALPHA, RELIABLE, decisive_seeds

TUNING = ("lr", "init", "init_scale")  # the axes best_settings may choose per architecture
OVER, CRITICAL, UNDECIDED = "over-capacity", "critical", "undecided"
UNDER, UNSOLVED, STUCK, DIVERGED = "under-capacity", "unsolved within budget", "stuck", "diverged"
WORSE = "worse than at start"
LABELS = (OVER, UNDECIDED, CRITICAL, UNSOLVED, STUCK, UNDER, WORSE, DIVERGED)


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


def decide_seeds(successes, runs) -> float:
    """For an ``undecided`` configuration: the fewest seeds at which the same success rate
    (``successes / runs``) would make the verdict decisive (the Wilson bound at or above `RELIABLE`,
    or below it; `nnlab.schema.decisive_seeds`), never fewer than ``runs`` + 1; inf when the rate is
    exactly `RELIABLE` (no number of seeds decides) and NaN without runs."""
    if not runs:
        return float("nan")
    return max(decisive_seeds(successes / runs), float(runs + 1))


def verdict_text(row: dict) -> str:
    """The verdict in words, for people: an ``undecided`` one says what would decide it ("undecided:
    30/30 solved, 35 seeds could decide"), using the row's ``decide_seeds``."""
    label = row["verdict"]
    if label != UNDECIDED:
        return label
    solved = f"{row['successes']}/{row['runs']} solved"
    n = row.get("decide_seeds", decide_seeds(row["successes"], row["runs"]))
    if n is None or not np.isfinite(n):
        return f"{UNDECIDED}: {solved}, no number of seeds decides at this rate"
    return f"{UNDECIDED}: {solved}, {int(n):,} seeds could decide"


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
