"""Figures of the losses: where the seeds end (`spread`, `ecdf`), how they get there
(`convergence`, `seed_curves`) and when they reach the threshold (`solved`).

Each is an axes-level panel (``*_panel(data, ..., *, ax=None) -> Axes``) and a figure-level function
that lays the panels out (`nnlab.figures.layout.facet`) and returns a Figure, or None when it has
nothing to show. A run whose final loss is below the threshold solved the task, and how far below it
ended (its convergence depth) says nothing about which optimum it found: `spread` and `ecdf`
therefore show the solved runs as one bar per width and only the others as points, on an axis that
is linear where the losses shown span less than a decade. Everything random (jitter, the sample of
seeds drawn) comes from fixed Generators, so regenerated figures are identical.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib as mpl
import matplotlib.patches as mpatches
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nnlab.analysis import hit_epochs, wilson
from nnlab.figures import layout as L
from nnlab.schema import QUANTILE_SEEDS

SAMPLE = 30  # seed_curves draws at most this many seeds of a configuration
SAMPLE_SEED = 20261210  # with a configuration's key, the seed of the Generator that picks them
MAX_PANELS = 40  # seed_curves draws at most this many configurations
# spread and ecdf: the solved bar spans BAND of the loss axis (as fractions of the panel), and the
# losses shown span DATA, so that the bar is clearly apart from the loss scale.
BAND = (0.02, 0.14)
DATA = (0.22, 0.95)


# -- reading curves: only the runs a figure draws ----------------------------------------------------

# curves.parquet as a DataFrame, or a reader: run ids -> their rows (`nnlab.ResultsFolder.curves_of`).
Curves = pd.DataFrame | Callable[[Sequence[str]], pd.DataFrame]


def curves_of(curves: Curves, ids) -> pd.DataFrame:
    """The rows (``run_id``, ``epoch``, ``loss``) of the runs ``ids``: filtered from ``curves`` when it
    is a DataFrame, asked of it when it is a reader (which reads those runs' curves and no others)."""
    if callable(curves):
        return curves(list(ids))
    return curves[curves["run_id"].isin(ids)]


def run_hits(runs: pd.DataFrame, curves, threshold: float) -> np.ndarray:
    """Each run's first epoch below ``threshold`` (NaN: never): counted from ``curves`` when they are
    a DataFrame (hand-made tables, any threshold), else the runs' stored ``epochs_to_threshold``
    (counted from every epoch when the runs were stored or read back, for the experiment's
    threshold): a reader's curves are never read whole for it."""
    return hit_epochs(runs, curves if isinstance(curves, pd.DataFrame) else None, threshold)


def first_seeds(runs: pd.DataFrame, keys: list[str], cap: int) -> pd.DataFrame:
    """The runs of each group of ``keys``'s first ``cap`` seeds (the smallest): a fixed sample, the
    same whatever else the folder holds."""
    return runs.sort_values([*keys, "seed"], kind="stable").groupby(keys, sort=False).head(cap)


# -- loss axes: linear under a decade, and the solved bar apart from the scale ---------------------


@dataclass(frozen=True)
class LossView:
    """How a figure shows losses: on a log or a linear axis, and the range [lo, hi] shown."""

    log: bool
    lo: float
    hi: float

    @classmethod
    def of(cls, shown, threshold: float | None = None) -> LossView:
        """Linear where the losses ``shown`` span less than a decade, log otherwise. The threshold
        joins the range on a log axis, and on a linear one when it is within a decade of the
        largest loss (on a linear axis it would otherwise squeeze the losses into a sliver)."""
        x = np.asarray(shown, dtype=np.float64)
        x = x[L.finite_positive(x)]
        if not len(x):
            x = np.array([threshold if threshold is not None else 1.0])
        lo, hi = float(x.min()), float(x.max())
        if threshold is not None and threshold <= lo and hi < 10 * threshold:
            return cls(False, threshold, hi)
        if hi < 10 * lo:
            return cls(False, lo, hi)
        return cls(True, min(lo, threshold) if threshold is not None else lo, hi)

    def _t(self, v):
        return np.log10(v) if self.log else v

    def _inv(self, t):
        return 10.0**t if self.log else t

    def limits(self, start: float, stop: float) -> tuple[float, float]:
        """Axis limits that put ``lo`` at the fraction ``start`` of the axis and ``hi`` at ``stop``."""
        a, b = self._t(self.lo), self._t(self.hi)
        if b <= a:
            pad = 0.1 if self.log else 0.05 * abs(a) or 1e-12
            a, b = a - pad, b + pad
        s = (b - a) / (stop - start)
        return float(self._inv(a - start * s)), float(self._inv(b + (1 - stop) * s))

    def at(self, fraction: float, limits: tuple[float, float]) -> float:
        """The loss at ``fraction`` of an axis with ``limits``."""
        a, b = self._t(limits[0]), self._t(limits[1])
        return float(self._inv(a + fraction * (b - a)))

    def shows(self, value: float) -> bool:
        return self.lo * (1 - 1e-9) <= value <= self.hi * (1 + 1e-9)

    def apply(
        self,
        ax: Axes,
        axis: str,
        limits: tuple[float, float],
        start: float | None = None,
        band: str | None = None,
    ) -> None:
        """Scale, limits and ticks (`layout.ticks`) of ``ax``'s ``axis`` ("x" or "y"); ticks only
        from the loss ``start`` up, and with ``band`` one more beside the solved bar, named so
        ("< 0.001")."""
        which = ax.xaxis if axis == "x" else ax.yaxis
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log" if self.log else "linear")
        (ax.set_xlim if axis == "x" else ax.set_ylim)(*limits)
        found, formatter = L.ticks(self.log, limits[0] if start is None else start, limits[1], axis)
        if band is not None:
            at = self.at(sum(BAND) / 2, limits)
            if axis == "x":  # side by side: no loss tick so close to the bar's that their labels meet
                found = found[found >= self.at(DATA[0] + 0.1, limits)]
            found = np.r_[at, found]
            formatter = mticker.FuncFormatter(lambda v, pos, f=formatter: band if v == at else f(v, pos))
        which.set_major_locator(mticker.FixedLocator(found))
        which.set_major_formatter(formatter)
        which.set_minor_locator(mticker.NullLocator())

    @property
    def label(self) -> str:
        return L.LOSS_LABEL + (" (log)" if self.log else " (linear)")


def failed(loss, threshold) -> np.ndarray:
    """The losses drawn one by one: finite, positive and (with a threshold, one or one per loss)
    not below it."""
    loss = np.asarray(loss, dtype=np.float64)
    ok = L.finite_positive(loss)
    if threshold is None:
        return ok
    with np.errstate(invalid="ignore"):
        return ok & ~(loss < threshold)


def final_view(runs: pd.DataFrame, threshold: L.Threshold) -> LossView | None:
    """How `spread` and `ecdf` show the final losses they draw one by one (`failed`); None when
    there is a threshold and no such loss (every run solved or diverged)."""
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    shown = failed(loss, L.thresholds(runs, threshold))
    if L.lowest(threshold) is not None and not shown.any():
        return None
    return LossView.of(loss[shown], L.lowest(threshold))


def band_label(threshold: L.Threshold) -> str:
    """The name of the solved bar's tick: "< 0.001", or "< threshold" for sweeps of several."""
    values = set(threshold.values()) - {None} if isinstance(threshold, dict) else {threshold}
    return f"< {values.pop():g}" if len(values) == 1 else "< threshold"


def threshold_line(ax: Axes, view: LossView, lane: L.Lane, axis: str) -> None:
    """The lane's threshold as a dashed line across the loss ``axis``, where the axis shows it."""
    if view.shows(lane.threshold):
        ls = "--" if lane.name is None else (0, (4, 2 + 2 * lane.k))
        (ax.axhline if axis == "y" else ax.axvline)(lane.threshold, color="0.3", ls=ls, lw=1.2, zorder=1.5)


def band_notes(view: LossView, threshold: float | None) -> list[str]:
    notes = []
    if threshold is not None and not view.shows(threshold):
        notes.append(f"the threshold {threshold:g} is below the losses shown")
    if not view.log:
        notes.append("linear loss axis: the losses shown span less than a decade")
    return notes


# -- spread -------------------------------------------------------------------------------------------


@L.panel
def spread_panel(
    runs: pd.DataFrame,
    threshold: float | None = None,
    *,
    ax: Axes,
    hue: L.Hue | None = None,
    view: LossView | None = None,
    lane: L.Lane | None = None,
) -> Axes:
    """One panel of `spread`: per value of the compared axis (``hue``, default width or depth),
    one jittered point per seed not solved, and with ``threshold`` the solved seeds' bar at the
    bottom (filled to their share, "k/M" on it); without it a box plot of all seeds.

    ``view`` (`LossView`, default from these runs) sets the loss axis; ``lane`` places one sweep's
    marks beside the others' (`nnlab.figures.layout.Lane`, its threshold then used)."""
    lane = lane or L.Lane(None, threshold)
    threshold = lane.threshold
    hue = hue or L.Hue.of(runs)
    band = threshold is not None
    if view is None:
        view = final_view(runs, threshold) or LossView.of([], threshold)
    _spread_axes(ax, hue, view, band_label(threshold) if band else None, L.diverged(runs["final_loss"]).any())
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    x = hue.index(runs[hue.axis])
    keep = failed(loss, threshold)
    shift, width = lane.dodge(), 0.8 / lane.n
    if not band and keep.any():
        positions = sorted(set(x[keep]))
        ax.boxplot(
            [loss[keep & (x == k)] for k in positions],
            positions=[k + shift for k in positions],
            widths=0.6 / lane.n,
            showfliers=False,
            medianprops=dict(color="0.35", lw=1),
            boxprops=dict(color="0.35", lw=1),
            whiskerprops=dict(color="0.35", lw=1),
            capprops=dict(color="0.35", lw=1),
            manage_ticks=False,
        )
    if keep.any():
        colors = [hue.colors[L.fmt(hue.values[k])] for k in x[keep]]
        L.strip(
            ax,
            x[keep] + shift,
            loss[keep],
            color=colors,
            s=9,
            alpha=0.7,
            marker=lane.marker,
            jitter=0.25 / lane.n,
        )
    if band:
        for k in np.unique(x):
            solved = int(np.count_nonzero(loss[x == k] < threshold))
            _solved_bar(ax, k + shift, width, solved, int(np.count_nonzero(x == k)), hue.color(hue.values[k]))
        threshold_line(ax, view, lane, "y")
    # Points that cannot be drawn still count: say how many seeds of each diverged.
    for k, n in pd.Series(x[L.diverged(loss)]).value_counts().items():
        ax.text(
            k + shift,
            0.98,
            f"{n}\ndiverged",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize="x-small",
            color="0.25",
        )
    return ax


def _spread_axes(ax: Axes, hue: L.Hue, view: LossView, band: str | None, any_lost: bool) -> None:
    """The categories and the loss axis of a `spread` panel: ``band``, the solved bar's tick
    label (or None, no bar); headroom for the diverged counts."""
    limits = view.limits(DATA[0] if band else 0.04, 0.84 if any_lost else DATA[1])
    ax.set_xticks(range(len(hue.values)), [L.fmt(v) for v in hue.values])
    ax.set_xlim(-0.5, len(hue.values) - 0.5)
    view.apply(ax, "y", limits, start=view.lo if band else None, band=band)
    ax.set_xlabel(L.axis_label(hue.axis, ax))
    ax.set_ylabel(view.label)


def _solved_bar(ax: Axes, x: float, width: float, solved: int, n: int, color) -> None:
    """A solved bar of `spread` at ``x``: an outline the height of the band (all ``n`` seeds),
    filled to the share ``solved / n``, and "solved/n" written on it."""
    transform = ax.get_xaxis_transform()  # x in data, y in axes fractions
    low, high = BAND
    w = 0.95 * width
    ax.add_patch(
        mpatches.Rectangle((x - w / 2, low), w, high - low, transform=transform, fc="0.95", ec="0.6", lw=0.8)
    )
    ax.add_patch(
        mpatches.Rectangle(
            (x - w / 2, low), w, (high - low) * solved / n, transform=transform, fc=color, alpha=0.6
        )
    )
    ax.text(
        x,
        (low + high) / 2,
        f"{solved}/{n}",
        transform=transform,
        ha="center",
        va="center",
        fontsize="x-small",
    )


@L.styled
def spread(runs: pd.DataFrame, threshold: L.Threshold = None, *, size: str | None = None) -> Figure | None:
    """Final loss of every seed per width: where the seeds that did not solve the task end.

    Parameters
    ----------
    runs : DataFrame
        runs.parquet: one row per run (with a ``sweep`` column: several sweeps, side by side in
        each panel).
    threshold : float, or one per sweep, optional
        The success threshold. With it, the seeds whose final loss is below it are one bar per
        width at the bottom of the panel, apart from the loss axis; only the other seeds are points.
    size : {"single", "double"}, optional
        A paper's column width (3.5 or 7 inches); by default each panel at a readable size.

    Returns
    -------
    Figure or None
        One panel per depth (columns) and learning rate (rows, with any other swept axis), each
        `spread_panel`. None when every run's final loss is below the threshold or diverged.
    """
    view = final_view(runs, threshold)
    if view is None:
        return None
    hue = L.Hue.of(runs)
    band = L.lowest(threshold) is not None

    def draw(ax, part, lane):
        spread_panel(part, ax=ax, hue=hue, view=view, lane=lane)

    n_lanes = len(L.lanes(runs))
    fig, axes, _ = L.facet(
        runs,
        draw,
        threshold=threshold,
        hue=hue.axis,
        size=size,
        panel_w=max(L.PANEL_W, 0.45 * len(hue.values) * n_lanes + 1.2),
        sharex=True,
        sharey=True,
        legend=n_lanes > 1,
    )
    any_lost = bool(L.diverged(runs["final_loss"]).any())
    for ax in axes.flat:  # empty panels (a combination not in the grid) still get the categories
        _spread_axes(ax, hue, view, band_label(threshold) if band else None, any_lost)
    L.label_outer(axes, L.axis_label(hue.axis, axes[-1, 0]), view.label)
    L.legend(
        fig, L.lane_handles(L.lanes(runs, threshold)), L.lane_labels(L.lanes(runs, threshold)), "sweep", size
    )
    L.title(fig, f"Final loss per {L.axis_name(hue.axis)}")
    L.note(
        fig,
        *band_notes(view, L.lowest(threshold)),
        "" if band else "one point per seed over a box plot (quartiles, whiskers 1.5 IQR)",
        L.diverged_note(runs),
    )
    return fig


# -- ecdf ---------------------------------------------------------------------------------------------


@L.panel
def ecdf_panel(
    runs: pd.DataFrame,
    threshold: float | None = None,
    *,
    ax: Axes,
    hue: L.Hue | None = None,
    view: LossView | None = None,
    lane: L.Lane | None = None,
) -> Axes:
    """One panel of `ecdf`: per value of the compared axis, the share of seeds whose final loss is
    at most x; with ``threshold`` the solved share is a bar at the left (apart from the loss axis)
    and the curve starts there, stepping up at each other seed's final loss (a point)."""
    lane = lane or L.Lane(None, threshold)
    threshold = lane.threshold
    hue = hue or L.Hue.of(runs)
    band = threshold is not None
    if view is None:
        view = final_view(runs, threshold) or LossView.of([], threshold)
    limits = view.limits(*((DATA[0], DATA[1]) if band else (0.04, 0.96)))
    start = view.at(BAND[1], limits) if band else None
    if band and lane.k == 0:  # the solved share of each width, side by side, on a grey ground
        ax.add_patch(
            mpatches.Rectangle(
                (BAND[0], 0), BAND[1] - BAND[0], 1, transform=ax.get_yaxis_transform(), fc="0.93", lw=0
            )
        )
    slots = len(hue.values) * lane.n
    for k, v in enumerate(hue.values):
        mine = runs.loc[runs[hue.axis] == v, "final_loss"].to_numpy(dtype=np.float64)
        if not len(mine):
            continue
        color = hue.color(v)
        x = np.sort(mine[failed(mine, threshold)])
        base = np.count_nonzero(mine < threshold) / len(mine) if band else 0.0
        y = base + np.arange(1, len(x) + 1) / len(mine)
        if band:
            w = (BAND[1] - BAND[0]) / slots
            left = BAND[0] + (k * lane.n + lane.k) * w
            ax.add_patch(
                mpatches.Rectangle(
                    (left + 0.1 * w, 0),
                    0.8 * w,
                    base,
                    transform=ax.get_yaxis_transform(),
                    fc=color,
                    hatch=None if lane.k == 0 else "////",
                    ec="white",
                    lw=0,
                )
            )
            # The curve starts at the bar's edge, at the solved share, and steps up per seed.
            ys = np.r_[base, y]
            ax.step(
                np.r_[start, x, limits[1]], np.r_[ys, ys[-1]], where="post", color=color, lw=1.8, ls=lane.ls
            )
            ax.plot(x, y, ls="none", marker=lane.marker, ms=3, color=color)
        elif len(x):
            # Start at 0 and run on to the panel's right edge, as a step function does.
            ax.step(
                np.r_[x[0], x, limits[1]], np.r_[0.0, y, y[-1]], where="post", color=color, lw=1.8, ls=lane.ls
            )
    if band:
        threshold_line(ax, view, lane, "x")
    ax.set_ylim(-0.03, 1.03)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    view.apply(ax, "x", limits, start=view.lo if band else None, band=band_label(threshold) if band else None)
    ax.set_xlabel(view.label)
    ax.set_ylabel("seeds at or below")
    return ax


@L.styled
def ecdf(runs: pd.DataFrame, threshold: L.Threshold = None, *, size: str | None = None) -> Figure | None:
    """Empirical CDF of the final loss per width (`ecdf_panel`), faceted like `spread`.

    The fraction is of all seeds, so a diverged seed never counts and its curve levels off below 1.
    None when every run's final loss is below the threshold or diverged.
    """
    view = final_view(runs, threshold)
    if view is None:
        return None
    hue = L.Hue.of(runs)

    def draw(ax, part, lane):
        ecdf_panel(part, ax=ax, hue=hue, view=view, lane=lane)

    fig, axes, _ = L.facet(runs, draw, threshold=threshold, hue=hue.axis, size=size, sharex=True, sharey=True)
    if L.lowest(threshold) is not None:  # the bar's tick named for every sweep's threshold
        for ax in axes.flat:
            view.apply(ax, "x", view.limits(*DATA), start=view.lo, band=band_label(threshold))
    L.label_outer(axes, view.label, "seeds at or below this final loss")
    hue.legend(fig, size, L.lanes(runs, threshold))
    L.title(fig, f"ECDF of the final loss per {L.axis_name(hue.axis)}")
    L.note(
        fig,
        *band_notes(view, L.lowest(threshold)),
        L.diverged_note(runs, "count as never reaching any level"),
    )
    return fig


# -- convergence ------------------------------------------------------------------------------------


def curve_quantiles(runs: pd.DataFrame, curves: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """25/50/75% quantiles of the training loss over the seeds of each group of ``keys`` and epoch.

    Vectorised over millions of curve rows: the run ids are factorised, so each distinct id is
    looked up in ``runs`` once rather than once per row, and the losses go into one dense block
    (runs of a group together x the epochs stored), whose columns each group's quantiles are taken
    over (numpy's linear interpolation; a run without that epoch left out of it). The block holds
    the losses once, as float64: no groupby copies.
    A non-finite loss (a diverged run) counts as larger than any finite one; a quantile that
    lands among them comes back NaN, which breaks the line instead of drawing a fake value.
    """
    groups = runs.groupby(keys, sort=True)
    group = groups.ngroup().to_numpy()
    index = groups.size().index.to_frame(index=False)
    # Runs ordered by group: row k of the block is run order[k].
    order = np.argsort(group, kind="stable")
    slot = np.empty(len(runs), dtype=np.int64)
    slot[order] = np.arange(len(runs))
    bounds = np.searchsorted(group[order], np.arange(len(index) + 1))
    ids = curves["run_id"]
    if isinstance(ids.dtype, pd.CategoricalDtype):  # (as `read_curves` reads them: codes at hand)
        codes, uniques = ids.cat.codes.to_numpy(), np.asarray(ids.cat.categories, dtype=object)
    else:
        codes, uniques = pd.factorize(ids)
        uniques = np.asarray(uniques, dtype=object)
    # Each id's row of the block; -1 for a missing id (code -1), one not in ``runs`` or in no group.
    known = pd.Index(runs["run_id"].to_numpy()).get_indexer(uniques)
    row_of = np.full(len(known), -1, dtype=np.int64)
    mine = known >= 0
    row_of[mine] = np.where(group[known[mine]] >= 0, slot[known[mine]], -1)
    row = np.append(row_of, -1)[codes]
    found = row >= 0
    loss = curves["loss"].to_numpy(dtype=np.float64)
    epoch = curves["epoch"].to_numpy()
    if not found.all():
        row, epoch, loss = row[found], epoch[found], loss[found]
    finite = L.finite_positive(loss) | (loss == 0)
    top = loss[finite].max() if finite.any() else 1.0
    # The epochs stored (thinned curves: a few of them) as the block's columns.
    stored_epoch = np.zeros(int(epoch.max()) + 1 if len(epoch) else 0, dtype=bool)
    stored_epoch[epoch] = True
    epochs = np.flatnonzero(stored_epoch)
    column = (np.cumsum(stored_epoch) - 1)[epoch]
    block = np.full((len(runs), len(epochs)), np.nan)
    block[row, column] = loss
    block[row[~finite], column[~finite]] = np.finfo(np.float64).max / 4
    del row, column, loss, epoch, finite
    levels = [0.25, 0.5, 0.75]
    frames = []
    for g in range(len(index)):
        part = block[bounds[g] : bounds[g + 1]]
        stored = ~np.isnan(part)
        present = stored.any(axis=0)
        if not present.any():
            continue
        part = part[:, present]
        whole = stored[:, present].all()  # (nanquantile only where some run lacks an epoch: slower)
        q = np.quantile(part, levels, axis=0) if whole else np.nanquantile(part, levels, axis=0)
        q = np.where(q <= top, q, np.nan)
        head = index.iloc[np.full(int(present.sum()), g)].reset_index(drop=True)
        frames.append(head.assign(epoch=epochs[present], q25=q[0], median=q[1], q75=q[2]))
    if not frames:
        empty = {"epoch": np.empty(0, np.int64), **{c: np.empty(0) for c in ("q25", "median", "q75")}}
        return index.iloc[:0].reset_index(drop=True).assign(**empty)
    return pd.concat(frames, ignore_index=True)


@L.panel
def convergence_panel(
    stats: pd.DataFrame,
    threshold: float | None = None,
    *,
    ax: Axes,
    hue: L.Hue | None = None,
    lane: L.Lane | None = None,
    floor: float | None = None,
    last: float | None = None,
) -> Axes:
    """One panel of `convergence`: per value of the compared axis the median training loss
    against epoch and its 25-75% band, from ``stats`` (`curve_quantiles` of the runs, by the axes).

    The loss axis is log, clipped at ``floor`` (default `layout.floor_of`: no lower than the
    threshold / 100);
    the epoch axis (to ``last``, default the last epoch of ``stats``) is log when the epochs span
    more than a decade."""
    lane = lane or L.Lane(None, threshold)
    hue = hue or L.Hue.of(stats)
    floor = floor if floor is not None else L.floor_of(stats["q25"], lane.threshold)
    _convergence_marks(stats, ax, hue, lane, floor)
    last = last or (float(stats["epoch"].max()) if len(stats) else 1.0)
    L.epoch_axis(ax, last, L.log_epochs(1, last))
    top = np.nanmax(stats["q75"].to_numpy(dtype=np.float64), initial=floor * 10)
    L.clipped_loss_axis(ax, floor, top, L.clipped(stats["q25"], floor))
    ax.set_ylabel("training loss (log)")
    return ax


def _convergence_marks(stats: pd.DataFrame, ax: Axes, hue: L.Hue, lane: L.Lane, floor: float) -> None:
    """The marks of `convergence_panel` (lines, bands, threshold, the note of medians that
    diverged), without its axes' scales, limits and ticks: a figure sets a shared grid's once."""
    lost = []
    for v, g in stats.groupby(hue.axis, sort=True):
        g = g.sort_values("epoch")
        color = hue.color(v)
        lo, mid, hi = (np.maximum(g[c].to_numpy(dtype=np.float64), floor) for c in ("q25", "median", "q75"))
        ax.fill_between(g["epoch"], lo, hi, color=color, alpha=0.2, lw=0)
        ax.plot(g["epoch"], mid, color=color, lw=1.8, ls=lane.ls)
        if np.isnan(g["median"].iloc[-1]):
            lost.append(L.fmt(v))
    if lost:  # a line that stops early, or never starts, is said in words too
        ax.text(
            0.98,
            0.97,
            f"median diverged: {L.axis_name(hue.axis)} {', '.join(lost)}"
            + (f" ({lane.name})" if lane.name else ""),
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize="x-small",
            color="0.25",
        )
    if lane.threshold is not None:
        ax.axhline(
            lane.threshold,
            color="0.3",
            ls="--" if lane.name is None else (0, (4, 2 + 2 * lane.k)),
            lw=1.2,
            zorder=1.5,
        )


@L.styled
def convergence(
    runs: pd.DataFrame, curves: Curves, threshold: L.Threshold = None, *, size: str | None = None
) -> Figure:
    """Training loss against epoch: per width the median over seeds and its interquartile band
    (`convergence_panel`), faceted like `spread`.

    ``curves``: curves.parquet, or a reader of the runs' curves (`curves_of`). Of a configuration
    with more than `QUANTILE_SEEDS` seeds, the median and band are its first `QUANTILE_SEEDS` seeds'
    (exact per epoch over that fixed sample; the figure's note says so), and only their curves are
    read.

    A diverged seed counts as the worst loss, and where the median or a quartile is a diverged
    seed's the line stops. The loss axis stops at the decade of the lowest loss, no lower than the
    threshold / 100 (its lowest tick then says so), the epoch axis is log where the epochs span
    decades.
    """
    hue = L.Hue.of(runs)
    keys = [*L.row_axes(runs), *([L.SWEEP] if L.SWEEP in runs.columns else []), "depth", "width"]
    keys = list(dict.fromkeys(keys))
    sample = first_seeds(runs, keys, QUANTILE_SEEDS)
    stats = curve_quantiles(sample, curves_of(curves, sample["run_id"]), keys)
    floor = L.floor_of(stats["q25"], L.lowest(threshold))
    clip = L.clipped(stats["q25"], floor)
    last = float(stats["epoch"].max())
    top = float(np.nanmax(stats["q75"].to_numpy(dtype=np.float64), initial=floor * 10))

    def draw(ax, part, lane):
        _convergence_marks(part, ax, hue, lane, floor)

    fig, axes, _ = L.facet(
        stats, draw, threshold=threshold, hue=hue.axis, size=size, sharex=True, sharey=True
    )
    # The panels share both axes: set once, matplotlib gives every panel the same scales, limits
    # and ticks (set on each panel, each setting is repeated on all of them).
    L.epoch_axis(axes[-1, 0], last, L.log_epochs(1, last))
    L.clipped_loss_axis(axes[-1, 0], floor, top, clip)
    L.label_outer(axes, axes[-1, 0].get_xlabel(), "training loss (log)")
    hue.legend(fig, size, L.lanes(runs, threshold))
    L.title(fig, f"Median training loss per {L.axis_name(hue.axis)}")
    sampled = f" (median and band of each configuration's first {QUANTILE_SEEDS} seeds)"
    L.note(
        fig,
        f"{L.seeds_note(runs)}; band: 25-75% of seeds" + (sampled if len(sample) < len(runs) else ""),
        f"losses below {floor:g} drawn at {floor:g}" if clip else "",
        L.diverged_note(runs, "count as the worst loss"),
    )
    return fig


# -- solved ---------------------------------------------------------------------------------------------


HIT = "hit_epoch"  # the column `solved_panel` reads: each run's first epoch below the threshold


@L.panel
def solved_panel(
    runs: pd.DataFrame,
    curves: Curves | None = None,
    threshold: float | None = None,
    *,
    ax: Axes,
    hue: L.Hue | None = None,
    lane: L.Lane | None = None,
    log: bool | None = None,
    first: float | None = None,
    last: float | None = None,
) -> Axes:
    """One panel of `solved`: per value of the compared axis, the share of seeds that have reached
    the threshold by each epoch (a step line) with its Wilson 95% interval (a band, from the first
    hit on). Each run's first epoch below the threshold is its ``hit_epoch`` column, or found in
    ``curves`` (or the stored epochs to threshold). ``log``: a log epoch axis (default: when the
    first hit and the last epoch are more than a decade apart); ``first``, ``last``: the epoch axis's
    range of interest (default: the first hit, the runs' budget)."""
    lane = lane or L.Lane(None, threshold)
    hue = hue or L.Hue.of(runs)
    hit = runs[HIT].to_numpy(dtype=np.float64) if HIT in runs else run_hits(runs, curves, lane.threshold)
    last = last or (float(runs["epochs"].max()) if len(runs) else 1.0)
    first = np.nanmin(hit, initial=last) if first is None else first
    if log is None:
        log = L.log_epochs(first, last)
    for v in hue.values:
        mask = (runs[hue.axis] == v).to_numpy()
        if not mask.any():
            continue
        t = np.arange(int(runs.loc[mask, "epochs"].max()) + 1)
        hits = np.sort(hit[mask][np.isfinite(hit[mask])])
        k = np.searchsorted(hits, t, side="right")
        color = hue.color(v)
        if len(hits):
            # From the first hit on: before it every line is at 0 with the same band.
            after = t >= hits[0]
            lo, hi = wilson(k[after], mask.sum())
            ax.fill_between(t[after], lo, hi, step="post", color=color, alpha=0.18, lw=0)
        ax.step(t, k / mask.sum(), where="post", color=color, lw=1.8, ls=lane.ls)
    if not np.isfinite(hit).any() and lane.k == 0:
        ax.text(0.5, 0.5, "no seed reached the threshold", transform=ax.transAxes, ha="center", color="0.25")
    ax.set_ylim(-0.03, 1.03)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    L.epoch_axis(ax, last, log, first)
    ax.set_ylabel("seeds solved")
    return ax


@L.styled
def solved(
    runs: pd.DataFrame,
    curves: Curves | None = None,
    threshold: L.Threshold = None,
    *,
    size: str | None = None,
) -> Figure | None:
    """Share of seeds that have reached the threshold by each epoch, per width (`solved_panel`),
    faceted like `spread`.

    A seed counts from the first epoch its full-data loss is below the threshold (hitting-based,
    as `nnlab.analysis.summarize` counts success), whether or not it stays below; at the last
    epoch the curve is the success rate. Without ``curves`` as a DataFrame (none, or a reader) the
    runs' stored ``epochs_to_threshold`` are used. None without a threshold or when no seed ever reached it.
    """
    if L.lowest(threshold) is None or not len(runs):
        return None
    hit = np.full(len(runs), np.nan)
    for lane in L.lanes(runs, threshold):
        mask = np.ones(len(runs), bool) if lane.name is None else (runs[L.SWEEP] == lane.name).to_numpy()
        if lane.threshold is not None:
            hit[mask] = run_hits(runs[mask], curves, lane.threshold)
    if not np.isfinite(hit).any():
        return None
    hue = L.Hue.of(runs)
    table = runs.assign(**{HIT: hit})
    last = float(runs["epochs"].max())
    first = float(np.nanmin(hit))
    log = L.log_epochs(first, last)

    def draw(ax, part, lane):
        solved_panel(part, ax=ax, hue=hue, lane=lane, log=log, first=first, last=last)

    fig, axes, _ = L.facet(
        table, draw, threshold=threshold, hue=hue.axis, size=size, sharex=True, sharey=True
    )
    L.label_outer(axes, "epoch (log)" if log else "epoch", "seeds that reached the threshold")
    hue.legend(fig, size, L.lanes(runs, threshold))
    L.title(fig, f"Seeds that reached the threshold by each epoch, per {L.axis_name(hue.axis)}")
    L.note(fig, L.seeds_note(runs))
    return fig


# -- seed_curves ---------------------------------------------------------------------------------------

# How a seed ended, in drawing order (the failures drawn over the solved), with its colour's index
# in `PALETTE` and its legend text.
OUTCOMES = {
    "solved": (0, "solved: final loss below the threshold"),
    "left": (4, "reached the threshold, ended above it"),
    "never": (3, "never reached the threshold"),
    "diverged": (7, "diverged (× where the loss left the finite range)"),
}
_OUTCOME_SHORT = {
    "solved": "solved",
    "left": "reached, ended above",
    "never": "never reached",
    "diverged": "diverged",
}


def outcomes(runs: pd.DataFrame, hit: np.ndarray, threshold) -> np.ndarray:
    """Per run, how it ended: a key of `OUTCOMES` (``threshold``: one, or one per run)."""
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    out = np.where(loss < threshold, "solved", np.where(np.isfinite(hit), "left", "never")).astype(object)
    out[L.diverged(loss)] = "diverged"
    return out


def sample(outcome: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``cap`` positions of ``outcome``, each outcome in proportion to its count (largest
    remainders) and every outcome present at least once; sorted."""
    n = len(outcome)
    if n <= cap:
        return np.arange(n)
    kinds, counts = np.unique(outcome, return_counts=True)
    want = cap * counts / n
    quota = np.minimum(np.maximum(1, np.floor(want)).astype(int), counts)
    while quota.sum() > cap:  # the ones forced up to 1 are paid for by the largest
        quota[np.argmax(quota)] -= 1
    while quota.sum() < cap:
        gap = np.where(quota < counts, want - quota, -np.inf)
        quota[np.argmax(gap)] += 1
    picked = [
        rng.choice(np.flatnonzero(outcome == k), q, replace=False) for k, q in zip(kinds, quota, strict=True)
    ]
    return np.sort(np.concatenate(picked))


def _sample_rng(key: tuple) -> np.random.Generator:
    """The Generator that picks a configuration's seeds: `SAMPLE_SEED` and the configuration's
    values as written, so the sample depends on nothing else (not on the other configurations,
    nor on the column's integer or float type)."""
    name = "|".join(L.fmt(v) for v in key).encode()
    return np.random.default_rng([SAMPLE_SEED, zlib.crc32(name)])


def _curves_by_run(curves: pd.DataFrame, ids) -> dict:
    """run_id -> (epochs, losses) of the runs ``ids``, in one pass over the curves."""
    sel = curves[curves["run_id"].isin(ids)].sort_values(["run_id", "epoch"], kind="stable")
    rid = sel["run_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, rid[1:] != rid[:-1]]) if len(rid) else np.empty(0, int)
    epochs, losses = sel["epoch"].to_numpy(dtype=np.float64), sel["loss"].to_numpy(dtype=np.float64)
    ends = np.r_[starts[1:], len(sel)]
    return {r: (epochs[a:b], losses[a:b]) for r, a, b in zip(rid[starts], starts, ends, strict=True)}


@L.panel
def seed_curves_panel(
    runs: pd.DataFrame,
    curves: pd.DataFrame | dict,
    threshold: float,
    *,
    ax: Axes,
    outcome: np.ndarray | None = None,
    picked: np.ndarray | None = None,
    floor: float | None = None,
) -> Axes:
    """One panel of `seed_curves`: the training loss of each of these runs (one configuration)
    against epoch, coloured by how the run ended (`OUTCOMES`), with the counts of all of them.

    ``curves``: curves.parquet, or run_id -> (epochs, losses); ``picked``: the positions drawn
    (default all); ``floor``: the bottom of the log loss axis (default `layout.floor_of`), the losses
    below it drawn on it."""
    outcome = outcome if outcome is not None else outcomes(runs, run_hits(runs, curves, threshold), threshold)
    picked = picked if picked is not None else np.arange(len(runs))
    ids = runs["run_id"].to_numpy()
    curve_of = curves if isinstance(curves, dict) else _curves_by_run(curves, ids[picked])
    if floor is None:
        drawn = [curve_of.get(r, (None, np.empty(0)))[1] for r in ids[picked]]
        floor = L.floor_of(np.concatenate([threshold, *drawn], axis=None), threshold)
    top, low = _seed_marks(runs, curve_of, threshold, ax, outcome, picked, floor)
    L.clipped_loss_axis(ax, floor, top, low < floor)
    last = float(runs["epochs"].max()) if len(runs) else 1.0
    L.epoch_axis(ax, last, L.log_epochs(1, last))
    ax.set_ylabel("training loss (log)")
    return ax


def _seed_marks(
    runs: pd.DataFrame,
    curve_of: dict,
    threshold: float,
    ax: Axes,
    outcome: np.ndarray,
    picked: np.ndarray,
    floor: float,
) -> tuple[float, float]:
    """The marks of `seed_curves_panel` (curves, crosses, counts, threshold), without its axes'
    scales, limits and ticks (a figure sets a shared grid's once); returns the highest loss drawn
    (at least the threshold) and the lowest finite one."""
    ids = runs["run_id"].to_numpy()
    palette = sns.color_palette(L.PALETTE, 10)
    top, low = threshold, np.inf
    for z, kind in enumerate(OUTCOMES):
        segments, ends = [], []
        for pos in picked[outcome[picked] == kind]:
            t, loss = curve_of.get(ids[pos], (np.empty(0), np.empty(0)))
            bad = np.flatnonzero(L.diverged(loss))
            n = bad[0] if len(bad) else len(loss)  # diverged: drawn up to its last finite loss
            if n:
                segments.append(np.column_stack([t[:n], np.maximum(loss[:n], floor)]))
                top = max(top, float(segments[-1][:, 1].max()))
                low = min(low, float(loss[:n].min()))
            if len(bad) and n:
                ends.append((t[n - 1], loss[n - 1]))
        color = palette[OUTCOMES[kind][0]]
        if segments:
            # Rasterized: thirty curves of thousands of epochs per panel would make an SVG of
            # tens of megabytes; everything else in the figures stays vector.
            ax.add_collection(
                LineCollection(segments, colors=[color], lw=0.8, alpha=0.7, zorder=2 + z, rasterized=True)
            )
        if ends:
            ax.plot(*np.array(ends).T, ls="none", marker="x", ms=5, color=color, zorder=6)
    counts = pd.Series(outcome).value_counts()
    lines = [(f"of {len(runs)} seeds:", "0.25")] + [
        (f"{counts[kind]} {_OUTCOME_SHORT[kind]}", palette[OUTCOMES[kind][0]])
        for kind in OUTCOMES
        if kind in counts
    ]
    step = 1.25 * mpl.font_manager.FontProperties(size="x-small").get_size_in_points()
    for m, (text, color) in enumerate(lines):
        ax.annotate(
            text,
            (0.03, 0.04),
            xycoords="axes fraction",
            xytext=(0, step * (len(lines) - 1 - m)),  # a line apart at any panel size
            textcoords="offset points",
            fontsize="x-small",
            color=color,
            va="bottom",
            bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.5),
        )
    ax.axhline(threshold, color="0.3", ls="--", lw=1.2, zorder=1.5)
    return top, low


@L.styled
def seed_curves(
    runs: pd.DataFrame,
    curves: Curves | None,
    threshold: L.Threshold,
    *,
    cap: int = SAMPLE,
    size: str | None = None,
) -> Figure | None:
    """Every seed's training loss against epoch, coloured by how it ended (`seed_curves_panel`).

    Parameters
    ----------
    runs, curves : DataFrame
        runs.parquet and curves.parquet (with a ``sweep`` column: each sweep's panels in rows);
        ``curves`` may be a reader (`curves_of`): only the seeds drawn are read, and how each seed
        ended comes from the runs' stored ``epochs_to_threshold``.
    threshold : float, or one per sweep
        The success threshold (no figure without one, nor without curves).
    cap : int
        At most this many seeds are drawn per configuration: a sample, fixed by a Generator
        seeded with `SAMPLE_SEED` and the configuration, that keeps the outcomes in proportion and
        draws every outcome present at least once. The counts written in each panel are of all
        its seeds.
    size : {"single", "double"}, optional
        A paper's column width.

    Returns
    -------
    Figure or None
        One panel per configuration (the compared axis along rows of at most 5 panels filled
        evenly, the first `MAX_PANELS` configurations in grid order); log y, cut no lower than two
        decades below the lowest threshold; log epochs where they span decades.
    """
    if L.lowest(threshold) is None or curves is None or not len(runs):
        return None
    runs = runs.reset_index(drop=True)
    hue = L.compared(runs)
    hue_values = L.values(runs, hue)
    keys = [*(["depth"] if hue == "width" else []), *L.row_axes(runs, overlay=False), hue]
    per_run = L.thresholds(runs, threshold)
    hit = np.full(len(runs), np.nan)
    for lane in L.lanes(runs, threshold):
        mask = np.ones(len(runs), bool) if lane.name is None else (runs[L.SWEEP] == lane.name).to_numpy()
        hit[mask] = run_hits(runs[mask], curves, lane.threshold)
    outcome = outcomes(runs, hit, per_run)
    groups = sorted(
        (
            (k if isinstance(k, tuple) else (k,), idx)
            for k, idx in runs.groupby(keys, sort=True).indices.items()
        ),
        key=lambda g: g[0],
    )
    heads = list(dict.fromkeys(k[:-1] for k, _ in groups))
    heads_shown = heads[: max(1, MAX_PANELS // len(hue_values))]
    groups = [(k, idx) for k, idx in groups if k[:-1] in heads_shown]
    # Each combination of the other axes (and sweep) in rows of its own, its values along them, at
    # most 5 a row and rows filled evenly (`layout.wrap`).
    own = {h: [k[-1] for k, _ in groups if k[:-1] == h] for h in heads_shown}
    ncols = max(L.wrap(len(v), 5)[1] for v in own.values())
    first_row = dict(
        zip(heads_shown, np.cumsum([0, *(-(-len(own[h]) // ncols) for h in heads_shown)]), strict=False)
    )
    nrows = int(sum(-(-len(v) // ncols) for v in own.values()))
    picks = {key: idx[sample(outcome[idx], cap, _sample_rng(key))] for key, idx in groups}
    picked_ids = runs["run_id"].to_numpy()[np.concatenate(list(picks.values()))]
    curve_of = _curves_by_run(curves_of(curves, picked_ids), picked_ids)
    drawn = np.concatenate([L.lowest(threshold), *(loss for _, loss in curve_of.values())], axis=None)
    floor = L.floor_of(drawn, L.lowest(threshold))
    clip = L.clipped(drawn, floor)
    fig, axes = L.grid(nrows, ncols, size=size, panel_w=3.0, panel_h=2.3, sharex=True, sharey=True)
    used = np.zeros(axes.shape, dtype=bool)
    top = L.lowest(threshold)
    for key, idx in groups:
        k = own[key[:-1]].index(key[-1])
        r, c = int(first_row[key[:-1]]) + k // ncols, k % ncols
        ax, used[r, c] = axes[r, c], True
        mine = runs.iloc[idx]
        picked = np.searchsorted(idx, picks[key])
        # The panels share both axes: their scales, limits and ticks are set once, below.
        high, _ = _seed_marks(mine, curve_of, float(per_run[idx[0]]), ax, outcome[idx], picked, floor)
        top = max(top, max(high, floor * 10) * 1.5 / 1.5)  # the panel's highest loss drawn
        ax.set_title(L.label(keys, key), fontsize="small")
    for ax in axes[~used]:
        ax.set_visible(False)
    first = axes[used][0]
    L.clipped_loss_axis(first, floor, top, clip)
    last = float(runs["epochs"].max())
    L.epoch_axis(first, last, L.log_epochs(1, last))
    L.label_outer(axes, first.get_xlabel(), "training loss (log)")
    for ax in axes[used]:  # a hidden panel below leaves its neighbour above without an x-label
        row, col = np.argwhere(axes == ax)[0]
        if row + 1 < axes.shape[0] and not used[row + 1, col]:
            ax.set_xlabel(first.get_xlabel())
            ax.xaxis.set_tick_params(labelbottom=True)
    present = [kind for kind in OUTCOMES if (outcome == kind).any()]
    palette = sns.color_palette(L.PALETTE, 10)
    L.legend(
        fig,
        [Line2D([], [], color=palette[OUTCOMES[kind][0]], lw=2) for kind in present],
        [OUTCOMES[kind][1] for kind in present],
        "how the seed ended",
        size,
    )
    L.title(fig, "Training loss of each seed, coloured by how it ended")
    n_configs = len(runs.groupby(keys))
    L.note(
        fig,
        f"at most {cap} seeds drawn per configuration (a fixed sample keeping the outcomes in "
        "proportion, each present outcome at least once); the counts in a panel are of all its seeds"
        if (runs.groupby(keys).size() > cap).any()
        else "every seed drawn",
        f"losses below {floor:g} drawn at {floor:g}" if clip else "",
        f"the first {len(groups)} of {n_configs} configurations shown" if len(groups) < n_configs else "",
    )
    return fig


__all__ = [
    "OUTCOMES",
    "QUANTILE_SEEDS",
    "SAMPLE",
    "Curves",
    "LossView",
    "convergence",
    "convergence_panel",
    "curve_quantiles",
    "curves_of",
    "first_seeds",
    "ecdf",
    "ecdf_panel",
    "outcomes",
    "run_hits",
    "sample",
    "seed_curves",
    "seed_curves_panel",
    "solved",
    "solved_panel",
    "spread",
    "spread_panel",
]
