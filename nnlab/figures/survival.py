"""Success over time, censored: Kaplan-Meier curves of the epochs to threshold (`survival`).

A run that never reached the threshold is censored at its budget, or, where the runs carry their
SGD escape continuation (`nnlab.analysis.with_continuations`), followed into it: an event when the
continuation reached the threshold, censored at its end otherwise (`nnlab.analysis.survival_times`;
a dotted line marks the budget, and the caption says which was done). The band is the pointwise 95%
interval from Greenwood's variance on the log(-log) scale. With one budget per configuration and no
continuation the curve equals the share of seeds solved by each epoch (`solved`), and the figure's
point is its test: the log-rank p between neighbouring widths, in the panel's corner.
"""

from __future__ import annotations

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nnlab.analysis import config_axes, continued, logrank_tests, survival_curves, survival_times
from nnlab.figures import layout as L


@L.panel
def survival_panel(
    runs: pd.DataFrame,
    threshold: float | None = None,
    *,
    ax: Axes,
    hue: L.Hue | None = None,
    lane: L.Lane | None = None,
    log: bool | None = None,
    tests: bool = True,
) -> Axes:
    """One panel of `survival`: per value of the compared axis, the Kaplan-Meier share of runs
    that reached the threshold by each epoch (a step line, censored at the budget or followed into
    the continuation, `nnlab.analysis.survival_times`; a dotted line at the budget when some run
    was followed) with its log-log Greenwood 95% band; with ``tests``, the log-rank p between
    neighbouring widths written in the lower right corner. ``threshold``: recompute the epochs to
    threshold for it (default: the stored ``epochs_to_threshold``); ``log``: a log epoch axis
    (default: when the first success and the last epoch followed are more than a decade apart)."""
    lane = lane or L.Lane(None, threshold)
    hue = hue or L.Hue.of(runs)
    km = survival_curves(runs, threshold)
    last = float(km["epoch"].max()) if len(km) else 1.0
    events = km.loc[km["events"] > 0, "epoch"]
    first = float(events.min()) if len(events) else last
    if log is None:
        log = L.log_epochs(first, last)
    for v in hue.values:
        part = km[km[hue.axis] == v]
        if not len(part):
            continue
        # Several configurations in one panel (other axes): one line each, the hue's colour.
        for _, curve in part.groupby([a for a in config_axes(part) if a != hue.axis], sort=True):
            color = hue.color(v)
            t = curve["epoch"].to_numpy()
            ax.fill_between(
                t, curve["success_lo"], curve["success_hi"], step="post", color=color, alpha=0.18, lw=0
            )
            ax.step(t, curve["success"], where="post", color=color, lw=1.8, ls=lane.ls)
    if tests and hue.axis == "width" and runs["width"].nunique() > 1:
        found = logrank_tests(runs, threshold)
        text = [
            f"{r.width_a}→{r.width_b}: p = {r.p_logrank:.2g}" if np.isfinite(r.p_logrank) else ""
            for r in found.itertuples(index=False)
        ]
        text = [t for t in text if t]
        if text and len(text) <= 6:
            ax.text(
                0.98,
                0.04,
                "log-rank\n" + "\n".join(text),
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize="x-small",
                color="0.25",
            )
    if not len(events) and lane.k == 0:
        ax.text(0.5, 0.5, "no seed reached the threshold", transform=ax.transAxes, ha="center", color="0.25")
    if continued(runs):
        for budget in sorted(runs["epochs"].unique()):
            ax.axvline(float(budget), color="0.5", lw=0.8, ls=":", zorder=0)
    ax.set_ylim(-0.03, 1.03)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    L.epoch_axis(ax, last, log, first)
    ax.set_ylabel("reached the threshold (KM)")
    return ax


@L.styled
def survival(runs: pd.DataFrame, threshold: L.Threshold = None, *, size: str | None = None) -> Figure | None:
    """Kaplan-Meier curves of the epochs to threshold per width (`survival_panel`), faceted like
    `nnlab.figures.solved`, each panel with the log-rank p between its neighbouring widths. None
    without a threshold, with a single width, or when no run ever reached the threshold."""
    if L.lowest(threshold) is None or not len(runs) or runs["width"].nunique() < 2:
        return None
    time, observed = survival_times(runs)
    if not observed.any():
        return None
    hue = L.Hue.of(runs, "width")
    log = L.log_epochs(float(time[observed].min()), float(time.max()))

    def draw(ax, part, lane):
        # Several sweeps overlaid: their p-values would collide in one corner, so none then.
        survival_panel(part, ax=ax, hue=hue, lane=lane, log=log, tests=lane.name is None)

    fig, axes, _ = L.facet(runs, draw, threshold=threshold, hue="width", size=size, sharex=True, sharey=True)
    L.label_outer(axes, "epoch (log)" if log else "epoch", "reached the threshold (Kaplan-Meier)")
    hue.legend(fig, size, L.lanes(runs, threshold))
    if continued(runs):
        L.title(fig, "Success over time, failed runs followed into an SGD continuation, per width")
        how = (
            "a run that did not reach the threshold within its budget (dotted line) is followed into the "
            "first stream of its SGD escape test (resumed from its end point, plain SGD at its rate): an "
            "event if that stream reached the threshold, else censored at its end; runs without one "
            "censored at the budget"
        )
    else:
        L.title(fig, "Success over time, censored at the budget, per width")
        how = "a run that never reached the threshold is censored at its budget"
    L.note(
        fig,
        L.seeds_note(runs),
        how,
        "band: 95% log-log Greenwood interval; p: log-rank, two-sided, unadjusted",
    )
    return fig
