"""Figures of a sweep's tables, by job: the losses (`losses`: spread, ecdf, convergence, solved,
seed_curves), success over time (`survival`: Kaplan-Meier, censored), the summary table (`summary`:
capacity, heatmap), the end points (`landscape`: endpoints, spectra, barriers, chain_gradients),
on helpers written once (`layout`: style and paper sizes,
palettes, facets, loss and epoch axes).

Each figure is an axes-level panel, ``NAME_panel(data, ..., *, ax=None) -> Axes``, that draws into
the Axes it is given (or a new figure's), and a figure-level ``NAME(data, ..., *, size=None) ->
Figure`` that lays the panels out, as seaborn's axes-level and figure-level functions do. A figure
has a one-line title; what its caption says about these data (counts, what is not shown) is in
`notes` (the long captions are `nnlab.report.CAPTIONS`). Nothing is saved or shown here.

Several sweeps are drawn together when the tables have a ``sweep`` column and the threshold is one
per sweep (`nnlab compare`): overlaid on shared axes, one line style and marker per sweep, where a
figure's marks can be overlaid (spread, ecdf, convergence, solved, capacity, chain_gradients), in
rows of their own otherwise (seed_curves, heatmap, endpoints, spectra, barriers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nnlab.analysis import TUNING, best_settings
from nnlab.figures.landscape import (
    KIND_ORDER,
    barriers,
    barriers_panel,
    chain_gradients,
    chain_gradients_panel,
    endpoints,
    endpoints_panel,
    interpolation_panel,
    landscape_slices,
    slice_panel,
    spectra,
    spectra_panel,
)
from nnlab.figures.layout import (
    DEPTH_LABEL,
    LOSS_LABEL,
    PALETTE,
    SEQUENTIAL,
    SIZES,
    SWEEP,
    WIDTH_LABEL,
    Threshold,
    diverged,
    lanes,
    notes,
)
from nnlab.figures.losses import (
    OUTCOMES,
    QUANTILE_SEEDS,
    SAMPLE,
    Curves,
    convergence,
    convergence_panel,
    curve_quantiles,
    curves_of,
    ecdf,
    ecdf_panel,
    sample,
    seed_curves,
    seed_curves_panel,
    solved,
    solved_panel,
    spread,
    spread_panel,
)
from nnlab.figures.summary import capacity, ert_panel, heatmap, heatmap_panel, success_panel
from nnlab.figures.survival import survival, survival_panel


def _solved_span(runs: pd.DataFrame, threshold: float | None) -> float:
    """max / min of the final losses below the threshold (1 when fewer than two, inf with a 0)."""
    if threshold is None:
        return 1.0
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    below = loss[np.isfinite(loss) & (loss < threshold)]
    if len(below) < 2:
        return 1.0
    return float(below.max() / below.min()) if below.min() > 0 else float("inf")


def _banded(runs: pd.DataFrame, threshold: Threshold) -> Threshold:
    """The threshold of each sweep whose solved seeds spread and ecdf draw as a bar (their losses
    span more than a decade), None for the others."""
    out = {}
    for lane in lanes(runs, threshold):
        mine = runs if lane.name is None else runs[runs[SWEEP] == lane.name]
        out[lane.name] = lane.threshold if _solved_span(mine, lane.threshold) > 10 else None
    if list(out) == [None]:
        return out[None]
    return out if any(t is not None for t in out.values()) else None


def figures_for(
    runs: pd.DataFrame,
    curves: Curves | None,
    summary: pd.DataFrame,
    threshold: Threshold,
    chain: pd.DataFrame | None = None,
    landscape: tuple | None = None,
    slices: pd.DataFrame | None = None,
    *,
    size: str | None = None,
) -> dict[str, Figure]:
    """Every figure that has something to say about these tables.

    Parameters
    ----------
    runs, curves, summary : DataFrame
        A sweep's tables; with a ``sweep`` column, several sweeps' (run ids unique across them),
        drawn together. ``curves`` may be a reader instead (run ids -> their rows, as
        `nnlab.ResultsFolder.curves_of`), so that only the curves drawn are read: the seeds
        ``seed_curves`` draws and each configuration's first `QUANTILE_SEEDS` seeds for
        ``convergence``; how seeds ended is then the runs' stored ``epochs_to_threshold``. None:
        no figure of loss curves.
    threshold : float or None, or one per sweep
        The experiment's success threshold.
    chain : DataFrame, optional
        `nnlab.analysis.chain_gradients` output.
    landscape : tuple, optional
        (endpoints, optima, barriers) of `nnlab landscape`.
    slices : DataFrame, optional
        `nnlab.sweep.endpoints.slices` output: pictures of the landscape around a few end points.
    size : {"single", "double"}, optional
        A paper's column width (3.5 or 7 inches wide, paper fonts); by default each panel at a
        size readable on screen.

    Returns
    -------
    dict of str to Figure
        Keyed by file stem, in this order, each drawn only where the rule after it holds:

        - ``spread``, ``ecdf``: the solved seeds are one bar per width, and only the others
          points, where the solved seeds' final losses span more than a decade (how deep a
          solution was approached, not different optima); drawn then when some run ended at a
          finite loss not below the threshold (when every run is solved or diverged there is
          nothing to spread: the solved share is in ``capacity`` and ``solved``). Where the solved
          seeds' losses lie within a decade (a task whose losses cannot reach 0, such as digits),
          their spread is the point: every seed is drawn, without a bar;
        - ``convergence`` (median loss curves) and ``seed_curves`` (each seed's, coloured by
          outcome): with curves (``seed_curves`` also needs a threshold);
        - ``solved`` (share of seeds that reached the threshold by each epoch): some run reached
          the threshold;
        - ``survival`` (Kaplan-Meier share of seeds that reached the threshold by each epoch,
          censored at the budget, with the log-rank p between neighbouring widths): widths vary
          and some run reached the threshold;
        - ``capacity``: always, with its success panel only when some configuration failed for
          some seed and its ERT panel only when some configuration succeeded;
        - ``capacity_best``: the same for each architecture at its own best setting of the swept
          learning rate or initialization (`nnlab.analysis.best_settings`), when one is swept;
        - ``heatmap``: depth and width both swept and the success rate not the same everywhere;
        - ``chain_gradients``: with a chain table;
        - with ``landscape``: ``endpoints``, ``spectra`` (an end point did not solve the task)
          and ``barriers`` (there are optima); ``landscape_slices`` with ``slices`` (some end point
          small enough to be drawn).

        When a single width was run and depth is swept, the figures compare depths (colours, or
        the x-axis of ``capacity``) instead of drawing one width per panel.
    """
    banded = _banded(runs, threshold)
    candidates = {}
    if banded is not None or not diverged(runs["final_loss"]).all():
        candidates.update(
            spread=lambda: spread(runs, banded, size=size), ecdf=lambda: ecdf(runs, banded, size=size)
        )
    if curves is not None:
        candidates["convergence"] = lambda: convergence(runs, curves, threshold, size=size)
        candidates["seed_curves"] = lambda: seed_curves(runs, curves, threshold, size=size)
    candidates["solved"] = lambda: solved(runs, curves, threshold, size=size)
    if runs["width"].nunique() > 1:
        candidates["survival"] = lambda: survival(runs, threshold, size=size)
    candidates["capacity"] = lambda: capacity(summary, size=size)
    best = _best(summary)
    if len(best):
        tuned = [a for a in TUNING if a in summary.columns and summary[a].nunique() > 1]
        note = (
            f"each architecture at its own best setting of {', '.join(tuned)} (lowest ERT; the report "
            "names each setting)"
        )
        suffix = f", each at its best {', '.join(t.replace('_', ' ') for t in tuned)}"
        candidates["capacity_best"] = lambda: capacity(
            best.drop(columns=tuned), note, suffix=suffix, size=size
        )
    if summary["depth"].nunique() > 1 and summary["width"].nunique() > 1 and summary["success"].nunique() > 1:
        candidates["heatmap"] = lambda: heatmap(summary, size=size)
    if chain is not None:
        candidates["chain_gradients"] = lambda: chain_gradients(chain, size=size)
    if landscape is not None and landscape[0] is not None and "certified" in summary:
        candidates["endpoints"] = lambda: endpoints(summary, size=size)
        candidates["spectra"] = lambda: spectra(landscape[0], runs, size=size)
        candidates["barriers"] = lambda: barriers(landscape[2], landscape[1], size=size)
    if slices is not None:
        candidates["landscape_slices"] = lambda: landscape_slices(slices, size=size)
    out = {}
    for stem, draw in candidates.items():
        figure = draw()
        if figure is not None:
            out[stem] = figure
    return out


def _best(summary: pd.DataFrame) -> pd.DataFrame:
    """`best_settings` of each sweep's summary (the sweeps chosen apart)."""
    if SWEEP not in summary.columns:
        return best_settings(summary)
    parts = [best_settings(g).assign(**{SWEEP: name}) for name, g in summary.groupby(SWEEP, sort=False)]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else summary.iloc[:0]


__all__ = [
    "DEPTH_LABEL",
    "KIND_ORDER",
    "LOSS_LABEL",
    "OUTCOMES",
    "PALETTE",
    "QUANTILE_SEEDS",
    "SAMPLE",
    "SEQUENTIAL",
    "SIZES",
    "WIDTH_LABEL",
    "Curves",
    "barriers",
    "barriers_panel",
    "capacity",
    "chain_gradients",
    "chain_gradients_panel",
    "convergence",
    "convergence_panel",
    "curve_quantiles",
    "curves_of",
    "ecdf",
    "ecdf_panel",
    "endpoints",
    "endpoints_panel",
    "ert_panel",
    "figures_for",
    "heatmap",
    "heatmap_panel",
    "interpolation_panel",
    "landscape_slices",
    "notes",
    "sample",
    "seed_curves",
    "seed_curves_panel",
    "slice_panel",
    "solved",
    "solved_panel",
    "spectra",
    "spectra_panel",
    "spread",
    "spread_panel",
    "success_panel",
    "survival",
    "survival_panel",
]
