"""Figures of a sweep's tables: each function takes tables and returns a matplotlib Figure.

Nothing is saved or shown here (the CLI does that). Figures are built on
`matplotlib.figure.Figure` directly, never through pyplot, so they do not pile up in pyplot's
registry of open figures and are freed as soon as the caller drops them. A figure with nothing to
show returns None (see `figures_for` for the rules).

Facets follow one rule throughout. The compared axis is width (one colour per width, in numeric
order, from `PALETTE`), or depth when a single width was run and depth is swept (the chain study):
no figure is then drawn "per width" over one width. With width compared there is one column per
depth; one row per learning rate, with every other grid axis that varies (batch size, epochs, init,
...) folded into the row label.

Losses: a run whose final loss is below the threshold solved the task, and how far below it ended
(its convergence depth) says nothing about which optimum it found. `spread` and `ecdf` therefore
show the solved runs as one bar per width and only the others as points, on an axis that is linear
where the losses shown span less than a decade. Everything random (jitter, the sample of seeds
drawn) comes from fixed Generators, so regenerated figures are identical.
"""

from __future__ import annotations

import functools
import math
import textwrap
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import matplotlib as mpl
import matplotlib.patches as mpatches
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nnlab.analysis import TUNING, best_settings, config_axes, hit_epochs, varying_axes, wilson
from nnlab.errors import InputError

PALETTE = "colorblind"  # the one colour-blind-safe palette every figure draws from
WIDTH_LABEL = "hidden units per layer"
DEPTH_LABEL = "hidden layers (depth)"
LOSS_LABEL = "final training loss"
SAMPLE = 30  # seed_curves draws at most this many seeds of a configuration
SAMPLE_SEED = 20261210  # with a configuration's key, the seed of the Generator that picks them
MAX_PANELS = 40  # seed_curves draws at most this many configurations
_PANEL_W, _PANEL_H = 3.6, 2.9  # inches per facet: readable at 150 dpi without being huge
_MAX_W = 18.0  # inches: wider grids shrink their panels instead
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_SHOWN_MAX = 1e100  # a loss above this is drawn as diverged: no study's loss lives up there
# spread and ecdf: the solved bar spans _BAND of the loss axis (as fractions of the
# panel), and the losses shown span _DATA, so that the bar is clearly apart from the loss scale.
_BAND = (0.02, 0.14)
_DATA = (0.22, 0.95)
_INF = 0.92  # the row (a fraction of the panel's height) where the ERT panel shows infinity
_AXIS_LABELS = {"width": WIDTH_LABEL, "depth": DEPTH_LABEL}


# -- shared helpers -------------------------------------------------------------------------------


def _styled(func: Callable[..., Figure | None]) -> Callable[..., Figure | None]:
    """Build the figure inside seaborn's style, without changing the caller's global rcParams."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with ExitStack() as stack:
            stack.enter_context(sns.axes_style("whitegrid"))
            stack.enter_context(sns.plotting_context("notebook", font_scale=0.8))
            # Titles at a fixed height: no figure puts tick labels on top, so matplotlib's search
            # for them (a fifth of every draw) would only ever confirm this position.
            stack.enter_context(mpl.rc_context({"axes.titley": 1.0}))
            # A panel whose points share one value (a single seed, say): matplotlib widens the
            # axis itself, and says so; nothing for the user to act on.
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", "Attempting to set identical low and high", UserWarning)
            return func(*args, **kwargs)

    return wrapper


def _fmt(value) -> str:
    """A facet or legend value: 0.1 rather than 0.10000000000000001, 8 rather than 8.0."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _axis_name(axis: str) -> str:
    return axis.replace("_", " ")


def _label(axes: Sequence[str], values: Sequence) -> str:
    return ", ".join(f"{_axis_name(a)} {_fmt(v)}" for a, v in zip(axes, values, strict=True))


def _compared(table: pd.DataFrame) -> str:
    """The axis a figure compares (its colours, or its x-axis): width, or depth when a single width
    was run and depth is swept."""
    if table["width"].nunique() == 1 and table["depth"].nunique() > 1:
        return "depth"
    return "width"


def _values(table: pd.DataFrame, axis: str = "width") -> list:
    return sorted(table[axis].unique().tolist())


def _hue_colors(values: Sequence) -> dict[str, tuple]:
    """Value (as its label) -> colour; keyed by string so categorical plots keep numeric order."""
    colors = sns.color_palette(PALETTE, len(values))
    return {_fmt(v): c for v, c in zip(values, colors, strict=True)}


def _row_axes(table: pd.DataFrame) -> list[str]:
    """The varying axes that go into the row facets: lr first, then the rest in grid order."""
    rest = [a for a in varying_axes(table) if a not in ("depth", "width")]
    return sorted(rest, key=lambda a: a != "lr")


def _comparison(table: pd.DataFrame) -> tuple[str, _Facets, list, dict[str, tuple]]:
    """What a figure of ``table`` compares: the axis (`_compared`), the facets, the axis's values in
    order and their colours."""
    hue = _compared(table)
    values = _values(table, hue)
    return hue, _Facets.of(table, hue), values, _hue_colors(values)


@dataclass(frozen=True)
class _Facets:
    """Columns = depths (a single column when depth is the compared axis: its panels are then titled
    by the one width), rows = combinations of the other varying axes."""

    depths: list
    row_axes: list[str]
    rows: list[tuple]
    fixed: str = ""

    @classmethod
    def of(cls, table: pd.DataFrame, hue: str = "width") -> _Facets:
        row_axes = _row_axes(table)
        if row_axes:
            keys = table[row_axes].drop_duplicates().sort_values(row_axes)
            rows = [tuple(r) for r in keys.itertuples(index=False)]
        else:
            rows = [()]
        if hue == "depth":
            return cls([None], row_axes, rows, _label(["width"], [table["width"].iloc[0]]))
        return cls(sorted(table["depth"].unique().tolist()), row_axes, rows)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.depths)

    def title(self, row: tuple, depth) -> str:
        parts = [self.fixed if depth is None else f"depth {_fmt(depth)}"]
        if self.row_axes:
            parts.append(_label(self.row_axes, row))
        return " | ".join(p for p in parts if p)

    def panels(self, table: pd.DataFrame) -> Iterator[tuple[int, int, str, pd.DataFrame]]:
        """(row index, column index, panel title, the panel's rows of ``table``)."""
        for i, row in enumerate(self.rows):
            mask = np.ones(len(table), dtype=bool)
            for a, v in zip(self.row_axes, row, strict=True):
                mask &= (table[a] == v).to_numpy()
            for j, depth in enumerate(self.depths):
                cell = mask if depth is None else mask & (table["depth"] == depth).to_numpy()
                yield i, j, self.title(row, depth), table[cell]


def _grid(nrows: int, ncols: int, panel_w: float = _PANEL_W, panel_h: float = _PANEL_H, **kwargs):
    """A Figure (outside pyplot) with an (nrows, ncols) array of axes; room left for a suptitle."""
    width = min(_MAX_W, max(6.0, ncols * panel_w + 1.5))
    fig = Figure(figsize=(width, nrows * panel_h + 1.0), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def _label_outer(axes: np.ndarray, xlabel: str, ylabel: str) -> None:
    """Axis names on the bottom row and left column only (shared axes need them once)."""
    nrows, ncols = axes.shape
    for (i, j), ax in np.ndenumerate(axes):
        ax.set_xlabel(xlabel if i == nrows - 1 else "")
        ax.set_ylabel(ylabel if j == 0 else "")


def _title(fig: Figure, title: str, notes: Sequence[str] = ()) -> None:
    """Suptitle with the notes on the lines below, wrapped to the figure's width (a suptitle
    wider than its figure is cut off, not shrunk)."""
    size = 11.0
    chars = max(40, int(fig.get_figwidth() * 72 / (0.55 * size)))
    lines = textwrap.wrap(title, chars)
    note = "; ".join(n for n in notes if n)
    if note:
        lines += textwrap.wrap(note[0].upper() + note[1:], chars)
    fig.suptitle("\n".join(lines), fontsize=size)


def _threshold_note(threshold: float | None) -> str:
    return f"dashed line: threshold {threshold:g}" if threshold is not None else ""


def _seeds_note(runs: pd.DataFrame) -> str:
    """How many seeds each configuration has: "64 seeds per configuration" (or a range)."""
    n = runs.groupby(config_axes(runs)).size()
    if not len(n):
        return ""
    return (
        f"{n.iloc[0]} seeds per configuration"
        if n.min() == n.max()
        else f"{n.min()} to {n.max()} seeds per configuration"
    )


def _diverged(values) -> np.ndarray:
    """Which losses count as diverged in a figure: inf, NaN, or above `_SHOWN_MAX` (on the way to
    inf; such a value would break a log axis's scale and ticks)."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(v) & (v <= _SHOWN_MAX))


def _finite_positive(values) -> np.ndarray:
    """Which values a log axis can show: not diverged, and above zero."""
    v = np.asarray(values, dtype=np.float64)
    return ~_diverged(v) & (v > 0)


def _diverged_note(runs: pd.DataFrame, fate: str = "are not shown") -> str:
    hidden = int(np.count_nonzero(_diverged(runs["final_loss"])))
    if not hidden:
        return ""
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    why = (
        "non-finite loss"
        if not (np.isfinite(loss) & (loss > _SHOWN_MAX)).any()
        else "loss inf, NaN or > 1e100"
    )
    return f"{hidden} of {len(runs)} runs diverged ({why}) and {fate}"


def _hue_legend(fig: Figure, values: Sequence, hue: str = "width") -> None:
    """One legend for all panels, outside them (centred, clear of the suptitle)."""
    colors = _hue_colors(values)
    handles = [Line2D([], [], color=c, lw=2) for c in colors.values()]
    fig.legend(handles, list(colors), title=hue, loc="outside right center", frameon=False)


# -- loss axes: linear under a decade, and the solved bar apart from the scale ---------------------


@dataclass(frozen=True)
class _LossView:
    """How a figure shows losses: on a log or a linear axis, and the range [lo, hi] shown."""

    log: bool
    lo: float
    hi: float

    @classmethod
    def of(cls, shown, threshold: float | None = None) -> _LossView:
        """Linear where the losses ``shown`` span less than a decade, log otherwise. The threshold
        joins the range on a log axis, and on a linear one when it is within a decade of the
        largest loss (on a linear axis it would otherwise squeeze the losses into a sliver)."""
        x = np.asarray(shown, dtype=np.float64)
        x = x[_finite_positive(x)]
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

    def apply(self, ax, axis: str, limits: tuple[float, float], start: float | None = None) -> None:
        """Scale, limits and ticks (`_ticks`) of ``ax``'s ``axis`` ("x" or "y"); ticks only from
        the loss ``start`` up (none beside the solved bar)."""
        which = ax.xaxis if axis == "x" else ax.yaxis
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log" if self.log else "linear")
        (ax.set_xlim if axis == "x" else ax.set_ylim)(*limits)
        ticks, formatter = _ticks(self.log, limits[0] if start is None else start, limits[1], axis)
        which.set_major_locator(mticker.FixedLocator(ticks))
        which.set_major_formatter(formatter)
        which.set_minor_locator(mticker.NullLocator())


def _ticks(log: bool, lo: float, hi: float, axis: str) -> tuple[np.ndarray, mticker.Formatter]:
    """Ticks in [lo, hi] and their formatter, few enough that the labels never overlap: at most
    5 (x) or 6 (y) on a linear axis; on a log axis its decades (every second or third when
    there are many), or 1, 2, 5 (y) or 1, 3 (x) in each decade when it spans less than two."""
    room = 5 if axis == "x" else 6
    if not log:
        ticks = mticker.MaxNLocator(nbins=room - 1, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        formatter = mticker.ScalarFormatter(useOffset=False)
    elif math.log10(hi / lo) >= 2:
        k0, k1 = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
        ticks = 10.0 ** np.arange(k0, k1 + 1, max(1, math.ceil((k1 - k0 + 1) / room)))
        formatter = mticker.FuncFormatter(lambda v, _: f"$10^{{{round(math.log10(v))}}}$")
    else:
        subs = (1, 2, 5) if axis == "y" else (1, 3)
        k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        ticks = np.array([m * 10.0**k for k in range(k0, k1 + 1) for m in subs])
        formatter = mticker.FuncFormatter(lambda v, _: f"{v:g}")
    tol = 1e-9 * (hi - lo)
    return ticks[(ticks >= lo - tol) & (ticks <= hi + tol)], formatter


def _loss_label(view: _LossView) -> str:
    return LOSS_LABEL + (" (log)" if view.log else "")


def _failed(loss, threshold: float | None) -> np.ndarray:
    """The losses drawn one by one: finite, positive and (with a threshold) not below it."""
    loss = np.asarray(loss, dtype=np.float64)
    ok = _finite_positive(loss)
    return ok & (loss >= threshold) if threshold is not None else ok


def _mark_threshold(ax, view: _LossView, threshold: float, axis: str, label: bool) -> None:
    """The solved bar's name "< threshold" where the tick labels of the loss ``axis`` are (with
    ``label``: the outer panels), and the threshold as a dashed line where the axis shows it."""
    middle = sum(_BAND) / 2
    if label:
        y = axis == "y"
        ax.text(
            *((-0.02, middle) if y else (middle, -0.02)),
            f"< {threshold:g}",
            transform=ax.transAxes,
            ha="right" if y else "center",
            va="center" if y else "top",
            fontsize=mpl.rcParams[f"{axis}tick.labelsize"],
        )
    if view.shows(threshold):
        (ax.axhline if axis == "y" else ax.axvline)(threshold, color="0.3", ls="--", lw=1.2, zorder=1.5)


def _final_view(runs: pd.DataFrame, threshold: float | None) -> _LossView | None:
    """How `spread` and `ecdf` show the final losses they draw one by one (`_failed`); None when
    there is a threshold and no such loss (every run solved or diverged)."""
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    shown = _failed(loss, threshold)
    if threshold is not None and not shown.any():
        return None
    return _LossView.of(loss[shown], threshold)


def _band_notes(view: _LossView, threshold: float | None, what: str) -> list[str]:
    notes = []
    if threshold is not None:
        notes.append(what)
        if not view.shows(threshold):
            notes.append(f"the threshold {threshold:g} is below the losses shown")
    if not view.log:
        notes.append("linear axis: the losses shown span less than a decade")
    return notes


# -- the figures -----------------------------------------------------------------------------------


def _strip(ax, x: np.ndarray, y: np.ndarray, **kwargs) -> None:
    """One point per seed at x, jittered sideways by up to 0.25. The jitter comes from a fixed
    Generator (seaborn's stripplot draws from numpy's global one), so regenerated figures are
    identical; rasterized, as thousands of points would bloat an SVG or PDF."""
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, size=len(x))
    ax.scatter(np.asarray(x, dtype=np.float64) + jitter, y, lw=0, rasterized=True, **kwargs)


@_styled
def spread(runs: pd.DataFrame, threshold: float | None = None) -> Figure | None:
    """Final loss of every seed per width: where the seeds that did not solve the task end.

    Parameters
    ----------
    runs : DataFrame
        runs.parquet: one row per run.
    threshold : float, optional
        The success threshold. With it, the seeds whose final loss is below it are one bar per
        width at the bottom of the panel (filled to their share of the seeds, "k/M" written on
        it), apart from the loss axis; only the other seeds are points.

    Returns
    -------
    Figure or None
        One panel per depth (columns) and learning rate (rows, with any other swept axis); per
        width (or per depth when one width was run) one jittered point per seed not solved (and
        without a threshold, a box plot of all seeds). The loss axis is linear when the losses
        shown span less than a decade, log otherwise. Diverged runs (non-finite loss) are left
        out and counted in the title and above their width. None when every run's final loss is
        below the threshold or diverged: there is no loss left to spread.
    """
    view = _final_view(runs, threshold)
    if view is None:
        return None
    hue, facets, values, colors = _comparison(runs)
    order = [_fmt(v) for v in values]
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    band = threshold is not None
    any_lost = bool(_diverged(loss).any())
    # Headroom at the top for the counts of diverged seeds.
    limits = view.limits(_DATA[0] if band else 0.04, 0.84 if any_lost else _DATA[1])
    fig, axes = _grid(
        *facets.shape, panel_w=max(_PANEL_W, 0.45 * len(values) + 1.2), sharex=True, sharey=True
    )
    for i, j, title, sub in facets.panels(runs):
        ax = axes[i, j]
        mine = sub["final_loss"].to_numpy(dtype=np.float64)
        x = sub[hue].map({v: k for k, v in enumerate(values)}).to_numpy(dtype=int)
        keep = _failed(mine, threshold)
        if not band and keep.any():
            sns.boxplot(
                pd.DataFrame({hue: [order[k] for k in x[keep]], "final_loss": mine[keep]}),
                x=hue,
                y="final_loss",
                order=order,
                ax=ax,
                log_scale=(False, view.log),
                fill=False,
                color="0.35",
                showfliers=False,
                width=0.6,
                linewidth=1,
            )
        if keep.any():
            point_colors = [colors[order[k]] for k in x[keep]]
            _strip(ax, x[keep], mine[keep], color=point_colors, s=9, alpha=0.7)
        if band:
            for k in np.unique(x):
                solved = int(np.count_nonzero(mine[x == k] < threshold))
                _solved_bar(ax, k, solved, int(np.count_nonzero(x == k)), colors[order[k]])
            _mark_threshold(ax, view, threshold, "y", label=j == 0)
        # Points that cannot be drawn still count: say how many seeds of each diverged.
        lost = pd.Series(x[_diverged(mine)]).value_counts()
        for k, n in lost.items():
            ax.text(
                k,
                0.98,
                f"{n}\ndiverged",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize="x-small",
                color="0.25",
            )
        ax.set_title(title)
    for ax in axes.flat:  # empty panels (a combination not in the grid) still get the categories
        ax.set_xticks(range(len(order)), order)
        ax.set_xlim(-0.5, len(order) - 0.5)
        view.apply(ax, "y", limits, start=view.lo if band else None)
    _label_outer(axes, _AXIS_LABELS[hue], _loss_label(view))
    if band:
        title = (
            f"Final loss of the seeds that did not solve the task, one point each, per {_axis_name(hue)}; "
            f"the solved seeds counted in the bar below"
        )
    else:
        title = f"Final loss of every seed, per {_axis_name(hue)}"
    _title(
        fig,
        title,
        [
            *_band_notes(
                view,
                threshold,
                f"bar: the seeds whose final loss is below the threshold {threshold:g}, "
                "filled to their share (solved of all seeds)"
                if band
                else "",
            ),
            "" if band else "one point per seed over a box plot (quartiles, whiskers 1.5 IQR)",
            _threshold_note(threshold) if band and view.shows(threshold) else "",
            _diverged_note(runs),
        ],
    )
    return fig


def _solved_bar(ax, k: int, solved: int, n: int, color) -> None:
    """The solved bar of category ``k`` in `spread`: an outline the height of the band (all ``n``
    seeds), filled to the share ``solved / n``, and "solved/n" written on it."""
    transform = ax.get_xaxis_transform()  # x in data, y in axes fractions
    low, high = _BAND
    ax.add_patch(
        mpatches.Rectangle((k - 0.4, low), 0.8, high - low, transform=transform, fc="0.95", ec="0.6", lw=0.8)
    )
    ax.add_patch(
        mpatches.Rectangle(
            (k - 0.4, low), 0.8, (high - low) * solved / n, transform=transform, fc=color, alpha=0.6
        )
    )
    ax.text(
        k,
        (low + high) / 2,
        f"{solved}/{n}",
        transform=transform,
        ha="center",
        va="center",
        fontsize="x-small",
    )


@_styled
def ecdf(runs: pd.DataFrame, threshold: float | None = None) -> Figure | None:
    """Empirical CDF of the final loss per width.

    Parameters
    ----------
    runs : DataFrame
        runs.parquet: one row per run.
    threshold : float, optional
        The success threshold. With it, the seeds whose final loss is below it are one bar per
        width at the left of the panel (the height of the bar is their share), apart from the
        loss axis; each curve starts at that share and steps up at the final loss of each other
        seed (a point).

    Returns
    -------
    Figure or None
        Faceted like `spread`: per width (colour), the fraction of seeds whose final loss is at
        most x; linear x when the losses shown span less than a decade, log otherwise. The
        fraction is of all seeds, so a diverged seed never counts and its curve levels off below
        1. None when every run's final loss is below the threshold or diverged.
    """
    view = _final_view(runs, threshold)
    if view is None:
        return None
    hue, facets, values, colors = _comparison(runs)
    band = threshold is not None
    limits = view.limits(*((_DATA[0], _DATA[1]) if band else (0.04, 0.96)))
    start = view.at(_BAND[1], limits) if band else None
    fig, axes = _grid(*facets.shape, sharex=True, sharey=True)
    for i, j, title, sub in facets.panels(runs):
        ax = axes[i, j]
        if band:  # the solved share of each width, side by side, on a grey ground
            ax.add_patch(
                mpatches.Rectangle(
                    (_BAND[0], 0), _BAND[1] - _BAND[0], 1, transform=ax.get_yaxis_transform(), fc="0.93", lw=0
                )
            )
        for k, v in enumerate(values):
            mine = sub.loc[sub[hue] == v, "final_loss"].to_numpy(dtype=np.float64)
            if not len(mine):
                continue
            color = colors[_fmt(v)]
            x = np.sort(mine[_failed(mine, threshold)])
            base = np.count_nonzero(mine < threshold) / len(mine) if band else 0.0
            y = base + np.arange(1, len(x) + 1) / len(mine)
            if band:
                w = (_BAND[1] - _BAND[0]) / len(values)
                ax.add_patch(
                    mpatches.Rectangle(
                        (_BAND[0] + k * w + 0.1 * w, 0),
                        0.8 * w,
                        base,
                        transform=ax.get_yaxis_transform(),
                        fc=color,
                    )
                )
                # The curve starts at the bar's edge, at the solved share, and steps up per seed.
                ys = np.r_[base, y]
                ax.step(np.r_[start, x, limits[1]], np.r_[ys, ys[-1]], where="post", color=color, lw=1.8)
                ax.plot(x, y, ls="none", marker="o", ms=3, color=color, rasterized=True)
            elif len(x):
                # Start at 0 and run on to the panel's right edge, as a step function does.
                ax.step(np.r_[x[0], x, limits[1]], np.r_[0.0, y, y[-1]], where="post", color=color, lw=1.8)
        if band:
            _mark_threshold(ax, view, threshold, "x", label=i == facets.shape[0] - 1)
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
        ax.set_title(title)
    for ax in axes.flat:
        view.apply(ax, "x", limits, start=view.lo if band else None)
    _label_outer(axes, _loss_label(view), "seeds with this final loss or less")
    _hue_legend(fig, values, hue)
    _title(
        fig,
        f"How many seeds end at or below each loss: ECDF of the final loss per {_axis_name(hue)}"
        + ("; the solved seeds in the bar at the left" if band else ""),
        [
            *_band_notes(
                view,
                threshold,
                f"bar: the share of seeds whose final loss is below the threshold {threshold:g}; "
                "a point: a seed that did not solve the task"
                if band
                else "",
            ),
            _threshold_note(threshold) if band and view.shows(threshold) else "",
            _diverged_note(runs, "count as never reaching any level"),
        ],
    )
    return fig


def _curve_quantiles(runs: pd.DataFrame, curves: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """25/50/75% quantiles of the training loss over the seeds of each group of ``keys`` and epoch.

    Vectorised over millions of curve rows: the run ids are factorised, so each distinct id is
    looked up in ``runs`` once rather than once per row (mapping the strings row by row is ~20x
    slower), and one groupby on an integer key does the quantiles.
    A non-finite loss (a diverged run) counts as larger than any finite one; a quantile that
    lands among them comes back NaN, which breaks the line instead of drawing a fake value.
    """
    groups = runs.groupby(keys, sort=True)
    run_group = pd.Series(groups.ngroup().to_numpy(), index=runs["run_id"].to_numpy())
    codes, uniques = pd.factorize(curves["run_id"])
    # A missing id (code -1) or one not in ``runs`` (position -1) belongs to no group.
    row = np.append(run_group.index.get_indexer(uniques), -1)[codes]
    found = row >= 0
    group = run_group.to_numpy()[row[found]]
    epoch = curves["epoch"].to_numpy()[found].astype(np.int64)
    loss = curves["loss"].to_numpy(dtype=np.float64)[found]
    finite = _finite_positive(loss) | (loss == 0)
    top = loss[finite].max() if finite.any() else 1.0
    loss = np.where(finite, loss, np.finfo(np.float64).max / 4)
    n_epochs = int(epoch.max()) + 1 if len(epoch) else 1
    levels = [0.25, 0.5, 0.75]
    q = pd.Series(loss).groupby(group * n_epochs + epoch).quantile(levels).unstack().reindex(columns=levels)
    q = q.where(q <= top)
    q.columns = ["q25", "median", "q75"]
    index = groups.size().index.to_frame(index=False)
    out = index.iloc[q.index.to_numpy() // n_epochs].reset_index(drop=True)
    out["epoch"] = q.index.to_numpy() % n_epochs
    return pd.concat([out, q.reset_index(drop=True)], axis=1)


@_styled
def convergence(runs: pd.DataFrame, curves: pd.DataFrame, threshold: float | None = None) -> Figure:
    """Training loss against epoch: per width the median over seeds and its interquartile band.

    Parameters
    ----------
    runs : DataFrame
        runs.parquet (for each run's configuration).
    curves : DataFrame
        curves.parquet: ``run_id``, ``epoch``, ``loss`` (long; millions of rows are fine).
    threshold : float, optional
        Drawn as a dashed horizontal line when given.

    Returns
    -------
    Figure
        Faceted like `spread`; log y. A diverged seed counts as the worst loss, and where the
        median or a quartile is a diverged seed's the line stops. The title says how many seeds
        each line summarizes; `seed_curves` draws them one by one.
    """
    hue, facets, values, colors = _comparison(runs)
    stats = _curve_quantiles(runs, curves, [*facets.row_axes, "depth", "width"])
    fig, axes = _grid(*facets.shape, sharex=True, sharey=True)
    for i, j, title, sub in facets.panels(stats):
        ax = axes[i, j]
        ax.set_yscale("log")
        lost = []
        for v, g in sub.groupby(hue, sort=True):
            g = g.sort_values("epoch")
            color = colors[_fmt(v)]
            ax.fill_between(g["epoch"], g["q25"], g["q75"], color=color, alpha=0.2, lw=0, rasterized=True)
            ax.plot(g["epoch"], g["median"], color=color, lw=1.8)
            if np.isnan(g["median"].iloc[-1]):
                lost.append(_fmt(v))
        if lost:  # a line that stops early, or never starts, is said in words too
            ax.text(
                0.98,
                0.97,
                f"median diverged: {_axis_name(hue)} {', '.join(lost)}",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize="x-small",
                color="0.25",
            )
        if threshold is not None:
            ax.axhline(threshold, color="0.3", ls="--", lw=1.2, zorder=1.5)
        ax.set_title(title)
    _label_outer(axes, "epoch", "training loss (log)")
    _hue_legend(fig, values, hue)
    _title(
        fig,
        f"Training loss against epoch: median over the seeds of each {_axis_name(hue)} ({_seeds_note(runs)})",
        [
            "band: 25-75% of seeds; a median hides the seeds that fail, the seed_curves figure "
            "draws each seed",
            _threshold_note(threshold),
            _diverged_note(runs, "count as the worst loss"),
        ],
    )
    return fig


@_styled
def solved(
    runs: pd.DataFrame, curves: pd.DataFrame | None = None, threshold: float | None = None
) -> Figure | None:
    """Share of seeds that have reached the threshold by each epoch, per width.

    A seed counts from the first epoch its full-data loss is below the threshold (hitting-based,
    as `nnlab.analysis.summarize` counts success), whether or not it stays below; at the last
    epoch the curve is the success rate.

    Parameters
    ----------
    runs : DataFrame
        runs.parquet.
    curves : DataFrame, optional
        curves.parquet; without it the runs' stored ``epochs_to_threshold`` are used.
    threshold : float, optional
        The success threshold (no figure without one).

    Returns
    -------
    Figure or None
        Faceted like `spread`; a step line per width (or per depth when one width was run) with
        the Wilson 95% interval of the share at each epoch as a band. None without a threshold
        or when no seed ever reached it.
    """
    if threshold is None or not len(runs):
        return None
    hit = hit_epochs(runs, curves, threshold)
    if not np.isfinite(hit).any():
        return None
    hue, facets, values, colors = _comparison(runs)
    table = runs.assign(_hit=hit)
    fig, axes = _grid(*facets.shape, sharex=True, sharey=True)
    for i, j, title, sub in facets.panels(table):
        ax = axes[i, j]
        for v in values:
            g = sub[sub[hue] == v]
            if not len(g):
                continue
            t = np.arange(int(g["epochs"].max()) + 1)
            hits = np.sort(g["_hit"].dropna().to_numpy())
            k = np.searchsorted(hits, t, side="right")
            color = colors[_fmt(v)]
            if len(hits):
                # From the first hit on: before it every line is at 0 with the same band.
                after = t >= hits[0]
                lo, hi = wilson(k[after], len(g))
                ax.fill_between(t[after], lo, hi, step="post", color=color, alpha=0.18, lw=0, rasterized=True)
            ax.step(t, k / len(g), where="post", color=color, lw=1.8)
        if not np.isfinite(sub["_hit"].to_numpy(dtype=np.float64)).any():
            ax.text(
                0.5, 0.5, "no seed reached the threshold", transform=ax.transAxes, ha="center", color="0.25"
            )
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
        ax.set_title(title)
    _label_outer(axes, "epoch", "seeds that reached the threshold")
    _hue_legend(fig, values, hue)
    _title(
        fig,
        f"Share of seeds that have reached the threshold by each epoch, per {_axis_name(hue)}",
        [
            f"a seed counts from the first epoch its full-data loss is below {threshold:g}, whether or "
            "not it stays below",
            "band: Wilson 95% interval, from the first seed that reached it",
            _seeds_note(runs),
        ],
    )
    return fig


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


def _outcomes(runs: pd.DataFrame, hit: np.ndarray, threshold: float) -> np.ndarray:
    """Per run, how it ended: a key of `OUTCOMES`."""
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    out = np.where(loss < threshold, "solved", np.where(np.isfinite(hit), "left", "never")).astype(object)
    out[_diverged(loss)] = "diverged"
    return out


def _sample(outcome: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
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
    name = "|".join(_fmt(v) for v in key).encode()
    return np.random.default_rng([SAMPLE_SEED, zlib.crc32(name)])


@_styled
def seed_curves(
    runs: pd.DataFrame, curves: pd.DataFrame | None, threshold: float | None, *, cap: int = SAMPLE
) -> Figure | None:
    """Every seed's training loss against epoch, coloured by how it ended (see `OUTCOMES`).

    Parameters
    ----------
    runs, curves : DataFrame
        runs.parquet and curves.parquet.
    threshold : float or None
        The success threshold (no figure without one, nor without curves).
    cap : int
        At most this many seeds are drawn per configuration: a sample, fixed by a Generator
        seeded with `SAMPLE_SEED` and the configuration, that keeps the outcomes in proportion and
        draws every outcome present at least once. The counts written in each panel are of all
        its seeds.

    Returns
    -------
    Figure or None
        One panel per configuration (the compared axis along a row, at most 5 panels a row, the
        first `MAX_PANELS` configurations in grid order); log y, cut two decades below the
        threshold (the depth of convergence is not the point here).
    """
    if threshold is None or curves is None or not len(runs):
        return None
    runs = runs.reset_index(drop=True)
    hue = _compared(runs)
    values = _values(runs, hue)
    keys = [*(["depth"] if hue == "width" else []), *_row_axes(runs), hue]
    outcome = _outcomes(runs, hit_epochs(runs, curves, threshold), threshold)
    groups = sorted(
        (k if isinstance(k, tuple) else (k,), idx) for k, idx in runs.groupby(keys, sort=True).indices.items()
    )
    heads = sorted({k[:-1] for k, _ in groups})
    heads_shown = heads[: max(1, MAX_PANELS // len(values))]
    groups = [(k, idx) for k, idx in groups if k[:-1] in heads_shown]
    ncols = min(len(values), 5)
    per = -(-len(values) // ncols)  # panel rows per combination of the other axes
    picks = {key: idx[_sample(outcome[idx], cap, _sample_rng(key))] for key, idx in groups}
    ids = runs["run_id"].to_numpy()
    wanted = np.concatenate(list(picks.values()))
    sel = curves[curves["run_id"].isin(ids[wanted])].sort_values(["run_id", "epoch"], kind="stable")
    starts = np.flatnonzero(np.r_[True, sel["run_id"].to_numpy()[1:] != sel["run_id"].to_numpy()[:-1]])
    epochs, losses = sel["epoch"].to_numpy(dtype=np.float64), sel["loss"].to_numpy(dtype=np.float64)
    curve_of = {
        rid: (epochs[a:b], losses[a:b])
        for rid, a, b in zip(
            sel["run_id"].to_numpy()[starts], starts, np.r_[starts[1:], len(sel)], strict=True
        )
    }
    palette = sns.color_palette(PALETTE, 10)
    fig, axes = _grid(len(heads_shown) * per, ncols, panel_w=3.0, panel_h=2.3, sharex=True, sharey=True)
    used = np.zeros(axes.shape, dtype=bool)
    top, bottom = threshold, threshold
    for key, idx in groups:
        k = values.index(key[-1])
        r, c = heads_shown.index(key[:-1]) * per + k // ncols, k % ncols
        ax, used[r, c] = axes[r, c], True
        for z, kind in enumerate(OUTCOMES):
            segments, ends = [], []
            for pos in picks[key][outcome[picks[key]] == kind]:
                t, loss = curve_of.get(ids[pos], (np.empty(0), np.empty(0)))
                bad = np.flatnonzero(_diverged(loss))
                n = bad[0] if len(bad) else len(loss)  # diverged: drawn up to its last finite loss
                if n:
                    # A loss of exactly 0 goes below the axis, where a log scale keeps it.
                    y = np.where(loss[:n] > 0, loss[:n], threshold * 1e-6)
                    segments.append(np.column_stack([t[:n], y]))
                    top, bottom = max(top, y.max()), min(bottom, y.min())
                if len(bad) and n:
                    ends.append((t[n - 1], loss[n - 1]))
            color = palette[OUTCOMES[kind][0]]
            if segments:
                ax.add_collection(
                    LineCollection(segments, colors=[color], lw=0.8, alpha=0.7, zorder=2 + z, rasterized=True)
                )
            if ends:
                ax.plot(*np.array(ends).T, ls="none", marker="x", ms=5, color=color, zorder=6)
        counts = pd.Series(outcome[idx]).value_counts()
        lines = [(f"of {len(idx)} seeds:", "0.25")] + [
            (f"{counts[kind]} {_OUTCOME_SHORT[kind]}", palette[OUTCOMES[kind][0]])
            for kind in OUTCOMES
            if kind in counts
        ]
        for m, (text, color) in enumerate(lines):
            ax.text(
                0.03,
                0.04 + 0.085 * (len(lines) - 1 - m),
                text,
                transform=ax.transAxes,
                fontsize="x-small",
                color=color,
                va="bottom",
                bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.5),
            )
        ax.axhline(threshold, color="0.3", ls="--", lw=1.2, zorder=1.5)
        ax.set_title(_label(keys, key), fontsize="small")
    for ax in axes[~used]:
        ax.set_visible(False)
    ax = axes[used][0]
    ax.set_yscale("log")
    ax.set_ylim(max(bottom, threshold / 100) / 1.5, top * 1.5)
    ax.set_xlim(0, float(runs["epochs"].max()))
    _label_outer(axes, "epoch", "training loss (log)")
    present = [kind for kind in OUTCOMES if (outcome == kind).any()]
    fig.legend(
        [Line2D([], [], color=palette[OUTCOMES[kind][0]], lw=2) for kind in present],
        [OUTCOMES[kind][1] for kind in present],
        title="how the seed ended",
        loc="outside right center",
        frameon=False,
    )
    n_configs = len(runs.groupby(keys))
    _title(
        fig,
        "Training loss of each seed against epoch, coloured by how the seed ended",
        [
            f"at most {cap} seeds drawn per configuration (a fixed sample keeping the outcomes in "
            "proportion, each present outcome at least once); the counts in a panel are of all its seeds"
            if (runs.groupby(keys).size() > cap).any()
            else "every seed drawn",
            _threshold_note(threshold),
            "the axis stops two decades below the threshold",
            f"the first {len(groups)} of {n_configs} configurations shown" if len(groups) < n_configs else "",
        ],
    )
    return fig


def _series(summary: pd.DataFrame, hue: str) -> tuple[list[str], list[tuple[tuple, pd.DataFrame]]]:
    """One line per combination of the axes other than ``hue`` (the x-axis): depth when width is on
    the x-axis, plus whatever else varies."""
    keys = sorted([a for a in varying_axes(summary) if a not in ("depth", "width")], key=lambda a: a != "lr")
    if hue == "width":
        keys = ["depth", *keys]
    if not keys:
        return keys, [((), summary.sort_values(hue))]
    return keys, [(k, g.sort_values(hue)) for k, g in summary.groupby(keys, sort=True)]


@_styled
def capacity(summary: pd.DataFrame, note: str = "") -> Figure:
    """Success rate and expected running time against width (or depth, when one width was run).

    Parameters
    ----------
    summary : DataFrame
        `nnlab.analysis.summarize` output (or `nnlab.analysis.best_settings` of it).
    note : str
        A line added to the title (what the rows are, say).

    Returns
    -------
    Figure
        Success rate (hitting-based) with its Wilson 95% interval as error bars, left out when
        every configuration solved every seed; ERT in epochs (log y) with its bootstrap 95%
        interval (``ert_lo``, ``ert_hi``) as error bars, left out when no configuration solved
        any seed. An interval whose upper end is infinite is an arrow to the top of the panel;
        a configuration no seed solved (ERT = inf) is an open triangle pinned there. Colour =
        depth (or the first other swept axis), line style = the other swept axes; width on a
        log-2 axis, depth on a linear one.
    """
    hue = _compared(summary)
    keys, series = _series(summary, hue)
    xs = _values(summary, hue)
    first = _values(summary, keys[0]) if keys else [None]
    colors = dict(zip(first, sns.color_palette(PALETTE, len(first)), strict=True))
    rest = sorted({k[1:] for k, _ in series})
    panels = []
    if not (summary["success"] >= 1).all():
        panels.append("success")
    if np.isfinite(summary["ert"].to_numpy(dtype=np.float64)).any():
        panels.append("ert")
    fig, axes = _grid(1, len(panels), panel_w=5.0, panel_h=3.8, sharex=True)
    ax_of = dict(zip(panels, axes[0], strict=True))
    handles, labels = [], []
    open_top = no_seed = False
    for n, (key, g) in enumerate(series):
        color = colors[key[0] if keys else None]
        style = rest.index(key[1:])
        fmt = dict(color=color, ls=_LINESTYLES[style % 4], marker=_MARKERS[style % len(_MARKERS)], ms=5)
        # Nudge each line sideways (a fraction of an octave, or of a layer) so the bars do not overlap.
        shift = 0.06 * (n - (len(series) - 1) / 2)
        x = g[hue].to_numpy(dtype=np.float64)
        x = x * 2**shift if hue == "width" else x + 1.5 * shift
        if "success" in ax_of:
            s = g["success"].to_numpy(dtype=np.float64)
            yerr = np.clip([s - g["success_lo"].to_numpy(), g["success_hi"].to_numpy() - s], 0, None)
            ax_of["success"].errorbar(x, s, yerr=yerr, capsize=3, lw=1.5, **fmt)
        if "ert" in ax_of:
            a, b = _ert_bars(ax_of["ert"], x, g, fmt)
            open_top, no_seed = open_top or a, no_seed or b
        handles.append(Line2D([], [], **fmt))
        labels.append(_label(keys, key) if keys else _label(["width"], [g["width"].iloc[0]]))
    for ax in ax_of.values():
        if hue == "width":
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [_fmt(w) for w in xs])
            ax.xaxis.set_minor_locator(mticker.NullLocator())
            ax.set_xlim(min(xs) / 2**0.5, max(xs) * 2**0.5)
            ax.set_xlabel(f"{WIDTH_LABEL} (log 2)")
        else:
            ax.set_xticks(xs, [_fmt(d) for d in xs])
            ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
            ax.set_xlabel(DEPTH_LABEL)
    notes = []
    if "success" in ax_of:
        ax = ax_of["success"]
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
        ax.set_ylabel("success rate (seeds that reached the threshold)")
        ax.set_title("success rate, Wilson 95% interval")
    else:
        notes.append("every seed of every configuration reached the threshold: no success-rate panel")
    if "ert" in ax_of:
        ax = ax_of["ert"]
        cols = ["ert", "ert_lo", "ert_hi"]
        ends = summary[cols].to_numpy(dtype=np.float64).ravel()
        finite = ends[np.isfinite(ends) & (ends > 0)]
        _ert_axis(ax, finite.min() / 1.5, finite.max() * 1.5, infinite=open_top or no_seed)
        ax.set_ylabel("ERT: expected epochs to threshold (log)")
        marks = ["expected running time (ERT), bootstrap 95% interval"]
        if open_top:
            marks.append("↑: the interval's upper end is ∞ (resamples without a success)")
        if no_seed:
            marks.append("△ at ∞: no seed reached the threshold")
        ax.set_title("\n".join(marks))
    else:
        notes.append("no seed of any configuration reached the threshold: no ERT panel")
    fig.legend(handles, labels, loc="outside right center", frameon=False)
    shown = " and ".join({"success": "success rate", "ert": "expected running time"}[p] for p in panels)
    _title(fig, f"{shown[0].upper()}{shown[1:]} against {_axis_name(hue)}", [note, *notes])
    return fig


def _ert_axis(ax, lo: float, hi: float, infinite: bool) -> None:
    """The ERT panel's log axis from ``lo`` to ``hi``; with ``infinite``, the top of the panel is
    a row of its own, ticked "∞", apart from the finite values (at `_INF`)."""
    ax.set_yscale("log")
    a, b = math.log10(lo), math.log10(hi)
    top = a + (b - a) / 0.8 if infinite else b  # the finite values take the lower 80%
    ax.set_ylim(10**a, 10**top)
    ticks, formatter = _ticks(True, 10**a, 10**b, "y")
    labels = [formatter(t) for t in ticks]
    if infinite:
        ticks = np.r_[ticks, 10 ** (a + _INF * (top - a))]
        labels.append("∞")
    ax.set_yticks(ticks, labels)
    ax.yaxis.set_minor_locator(mticker.NullLocator())


def _ert_bars(ax, x: np.ndarray, g: pd.DataFrame, fmt: dict) -> tuple[bool, bool]:
    """One line of ERTs with their bootstrap intervals; returns whether an interval ran off to
    infinity (drawn as an arrow) and whether an ERT is infinite (an open triangle at the top)."""
    e, lo, hi = (g[c].to_numpy(dtype=np.float64) for c in ("ert", "ert_lo", "ert_hi"))
    ok = np.isfinite(e) & (e > 0)
    ax.plot(x, np.where(ok, e, np.nan), lw=1.5, **fmt)
    with np.errstate(invalid="ignore"):
        below = np.where(ok & np.isfinite(lo), np.clip(e - lo, 0, None), 0.0)
        above = np.where(ok & np.isfinite(hi), np.clip(hi - e, 0, None), 0.0)
    if ok.any():
        ax.errorbar(
            x[ok], e[ok], yerr=[below[ok], above[ok]], ls="none", capsize=3, lw=1.2, color=fmt["color"]
        )
    unbounded = ok & np.isposinf(hi)
    for xi, ei in zip(x[unbounded], e[unbounded], strict=True):
        ax.annotate(
            "",
            xy=(xi, _INF),
            xycoords=("data", "axes fraction"),
            xytext=(xi, ei),
            textcoords="data",
            arrowprops=dict(
                arrowstyle="-|>", color=fmt["color"], lw=1.2, shrinkA=0, shrinkB=0, mutation_scale=9
            ),
        )
    inf = np.isposinf(e)
    if inf.any():
        ax.plot(
            x[inf],
            np.full(inf.sum(), _INF),
            transform=ax.get_xaxis_transform(),
            ls="none",
            marker="^",
            ms=7,
            mfc="none",
            mew=1.5,
            color=fmt["color"],
            clip_on=False,
        )
    return bool(unbounded.any()), bool(inf.any())


@_styled
def heatmap(summary: pd.DataFrame) -> Figure:
    """Success rate over depth x width, annotated with the percentage.

    Parameters
    ----------
    summary : DataFrame
        `nnlab.analysis.summarize` output.

    Returns
    -------
    Figure
        One heatmap per learning rate (and other swept axis); rows depth (shallowest on top),
        columns width in numeric order; a configuration not run is left blank.
    """
    facets = _Facets.of(summary)
    widths = _values(summary, "width")
    depths = facets.depths
    ncols = len(facets.rows)
    panel_w = max(3.0, 0.55 * len(widths) + 1.2)
    fig, axes = _grid(1, ncols, panel_w=panel_w, panel_h=max(2.4, 0.5 * len(depths) + 1.2), sharey=True)
    # Sequential map blended from white into the palette's first colour: same palette, ordered.
    cmap = sns.light_palette(sns.color_palette(PALETTE)[0], as_cmap=True)
    for j, row in enumerate(facets.rows):
        ax = axes[0, j]
        mask = np.ones(len(summary), dtype=bool)
        for a, v in zip(facets.row_axes, row, strict=True):
            mask &= (summary[a] == v).to_numpy()
        grid = (
            summary[mask]
            .pivot_table(index="depth", columns="width", values="success", aggfunc="mean")
            .reindex(index=depths, columns=widths)
        )
        grid.index = [_fmt(d) for d in grid.index]
        grid.columns = [_fmt(w) for w in grid.columns]
        annot = grid.map(lambda s: "" if np.isnan(s) else f"{100 * s:.0f}%").to_numpy()
        sns.heatmap(
            grid,
            annot=annot,
            fmt="",
            vmin=0,
            vmax=1,
            cmap=cmap,
            cbar=False,
            linewidths=0.5,
            linecolor="white",
            ax=ax,
            annot_kws={"fontsize": "small"},
        )
        ax.set_title(_label(facets.row_axes, row) if facets.row_axes else "all runs")
        ax.set_xlabel(WIDTH_LABEL)
        ax.set_ylabel("hidden layers (depth)" if j == 0 else "")
        ax.tick_params(axis="y", labelrotation=0)
    fig.colorbar(
        axes[0, 0].collections[0],
        ax=axes.ravel().tolist(),
        label="success rate",
        format=mticker.PercentFormatter(1.0),
        shrink=0.9,
    )
    _title(fig, "Success rate by depth and width: share of seeds that reached the threshold")
    return fig


@_styled
def chain_gradients(table: pd.DataFrame) -> Figure:
    """|dLoss/dw_1| at initialization of a single-unit tanh chain against its length L.

    Parameters
    ----------
    table : DataFrame
        `nnlab.analysis.chain_gradients` output: ``L``, ``seed``, ``grad_w1``, ``loss``.

    Returns
    -------
    Figure
        One jittered point per seed and the median per L (log y).
    """
    fig, axes = _grid(1, 1, panel_w=6.0, panel_h=4.0)
    ax = axes[0, 0]
    colors = sns.color_palette(PALETTE)
    ok = _finite_positive(table["grad_w1"])
    shown = table[ok]
    lengths = sorted(table["L"].unique().tolist())
    if len(shown):
        _strip(ax, shown["L"].to_numpy(), shown["grad_w1"].to_numpy(), color=colors[0], s=6, alpha=0.45)
        ax.scatter([], [], color=colors[0], s=6, alpha=0.45, label="one seed")
        med = shown.groupby("L")["grad_w1"].median()
        ax.plot(med.index, med.to_numpy(), color=colors[1], marker="o", lw=2, label="median over seeds")
    ax.set_yscale("log")
    ax.set_xticks(lengths, [_fmt(L) for L in lengths])
    ax.set_xlabel("chain length L (tanh units)")
    ax.set_ylabel(r"$|\partial\, \mathrm{loss} / \partial w_1|$ at initialization (log)")
    # stripplot labels every point collection; keep one legend entry per kind.
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="lower left")
    hidden = int(np.count_nonzero(~ok))
    _title(
        fig,
        # Plain unicode, not mathtext: the title is wrapped to the figure's width.
        "Gradient through a tanh chain at initialization: |∂loss/∂w₁| against the chain's length L, "
        "a product of one (1 − fᵢ²)·wᵢ₊₁ factor per unit, so it shrinks or explodes with L",
        [f"{hidden} zero or non-finite gradients not shown" if hidden else ""],
    )
    return fig


# -- the landscape: what the end points are (nnlab landscape) -------------------------------------

KIND_ORDER = ("solved", "minimum", "degenerate", "saddle", "valley", "unconverged")


def _kind_colors() -> dict[str, tuple]:
    """One colour per end point kind from `PALETTE`, far apart where kinds sit side by side."""
    palette = sns.color_palette(PALETTE, 10)
    return dict(zip(KIND_ORDER, [palette[i] for i in (0, 2, 1, 3, 4, 7)], strict=True))


@_styled
def endpoints(summary: pd.DataFrame) -> Figure:
    """What the end points are: per width, the share of the certified end points of each kind.

    Parameters
    ----------
    summary : DataFrame
        `nnlab.analysis.summarize` output with ``endpoints`` (columns ``end_<kind>``).

    Returns
    -------
    Figure
        Stacked bars, one per width, in the facets of the other figures (columns depth, rows lr
        and the other swept axes); the number of distinct certified optima above each bar.
    """
    facets = _Facets.of(summary)
    widths = _values(summary, "width")
    colors = _kind_colors()
    fig, axes = _grid(*facets.shape, panel_w=max(_PANEL_W, 0.45 * len(widths) + 1.5), sharey=True)
    for i, j, title, sub in facets.panels(summary):
        ax = axes[i, j]
        sub = sub.set_index("width").reindex(widths)
        x = np.arange(len(widths))
        total = sub["certified"].to_numpy(dtype=np.float64)
        bottom = np.zeros(len(widths))
        with np.errstate(invalid="ignore", divide="ignore"):
            for kind in KIND_ORDER:
                share = np.nan_to_num(sub[f"end_{kind}"].to_numpy(dtype=np.float64) / total)
                ax.bar(x, share, bottom=bottom, color=colors[kind], width=0.8, label=kind)
                bottom += share
        for k, (n, optima) in enumerate(zip(total, sub["optima"], strict=True)):
            if n > 0 and optima > 0:
                ax.annotate(
                    f"{int(optima)}",
                    (k, 1.0),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    fontsize="small",
                )
        ax.set_xticks(x, [_fmt(w) for w in widths])
        ax.set_ylim(0, 1.08)
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
        ax.set_title(title)
    _label_outer(axes, WIDTH_LABEL, "share of certified end points")
    handles = [mpatches.Patch(color=colors[k], label=k) for k in KIND_ORDER]
    fig.legend(handles, KIND_ORDER, title="end point", loc="outside right center", frameon=False)
    _title(
        fig,
        "What the end points are: each seed's final network polished (L-BFGS, then Newton with the exact "
        "Hessian) and classified, per width",
        ["number above a bar: distinct certified local minima (modulo permutation and sign)"],
    )
    return fig


@_styled
def spectra(endpoints: pd.DataFrame, runs: pd.DataFrame, flat: float = 1e-6) -> Figure | None:
    """The Hessian spectra of the end points that did not solve the task.

    Parameters
    ----------
    endpoints : DataFrame
        endpoints.parquet (``run_id``, ``kind``, ``polished_loss``, ``spectrum``, ``n_symmetry``).
    runs : DataFrame
        runs.parquet, for the configurations.
    flat : float
        The flat tolerance the end points were classified with (drawn as a dashed line).

    Returns
    -------
    Figure or None
        One panel per configuration with unsolved end points (the first 12 in grid order): each
        end point a column of its eigenvalues' sizes relative to the largest, |lambda| / max |lambda|
        (log, floored at 1e-16), sorted by polished loss and coloured by kind; a negative
        eigenvalue is an open marker. None when every end point solved.
    """
    axes_names = list(dict.fromkeys(a for a in ["depth", "width", *varying_axes(runs)] if a in runs.columns))
    table = endpoints[endpoints["kind"] != "solved"].merge(runs[["run_id", *axes_names]], on="run_id")
    if not len(table):
        return None
    groups = list(table.groupby(axes_names, sort=True))[:12]
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    fig, axes = _grid(nrows, ncols, panel_w=4.2, panel_h=3.2, sharey=True)
    colors = _kind_colors()
    for n, (key, g) in enumerate(groups):
        ax = axes.flat[n]
        g = g.sort_values("polished_loss")
        for k, row in enumerate(g.itertuples(index=False)):
            lam = np.asarray(row.spectrum, dtype=np.float64)
            size = np.maximum(np.abs(lam) / max(np.abs(lam).max(initial=0.0), 1e-300), 1e-16)
            neg = lam < 0
            x = np.full(len(lam), k)
            ax.scatter(x[~neg], size[~neg], s=8, lw=0, color=colors[row.kind], rasterized=True)
            ax.scatter(x[neg], size[neg], s=14, facecolors="none", edgecolors=colors[row.kind], lw=0.8)
        ax.set_yscale("log")
        ax.set_ylim(3e-17, 3)
        ax.axhline(flat, color="0.3", lw=0.8, ls="--")
        ax.set_xticks([])
        ax.set_title(_label(axes_names, key if isinstance(key, tuple) else (key,)), fontsize="small")
        ax.set_xlabel(f"{len(g)} end points, by polished loss")
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("|eigenvalue| / largest (log)")
    handles = [mpatches.Patch(color=colors[k], label=k) for k in KIND_ORDER[1:]]
    handles.append(Line2D([], [], ls="none", marker="o", mfc="none", mec="0.3", label="negative eigenvalue"))
    fig.legend(
        handles,
        [h.get_label() for h in handles],
        title="end point",
        loc="outside right center",
        frameon=False,
    )
    symmetric = "n_symmetry" in table and (table["n_symmetry"] > 0).any()
    _title(
        fig,
        "Hessian spectra of the end points that did not solve the task: a strict minimum has every "
        "eigenvalue above the dashed line, a degenerate point some below it, a saddle a negative one",
        [
            f"dashed line: the flat tolerance {flat:g} of the largest",
            "the directions of the networks' rescaling symmetries left out" if symmetric else "",
        ],
    )
    return fig


@_styled
def barriers(table: pd.DataFrame, optima: pd.DataFrame) -> Figure | None:
    """The loss along the straight path (after alignment) between distinct optima of a
    configuration, and from each to its nearest solved network.

    Parameters
    ----------
    table : DataFrame
        barriers.parquet.
    optima : DataFrame
        optima.parquet.

    Returns
    -------
    Figure or None
        One panel per configuration with optima (at most 12); None when there is no barrier.
    """
    if table is None or not len(table):
        return None
    axes_names = config_axes(table)
    shown = [a for a in axes_names if a in ("depth", "width") or table[a].nunique() > 1]
    groups = list(table.groupby(axes_names, sort=True))[:12]
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    fig, axes = _grid(nrows, ncols, panel_w=4.2, panel_h=3.2)
    colors = sns.color_palette(PALETTE, 10)
    for n, (key, g) in enumerate(groups):
        ax = axes.flat[n]
        where = dict(zip(axes_names, key, strict=True))
        for k, row in enumerate(g.itertuples(index=False)):
            path = np.asarray(row.path, dtype=np.float64)
            t = np.linspace(0, 1, len(path))
            target = "nearest solved" if row.to == "solved" else f"optimum {row.to}"
            ax.plot(
                t, path, color=colors[k % 10], lw=1.5, label=f"{row.optimum} → {target}: {row.barrier:.2g}"
            )
        ax.set_yscale("log")
        ax.set_xlabel("t along the straight path")
        ax.set_title(_label(shown, [where[a] for a in shown]), fontsize="small")
        ax.legend(fontsize="x-small", title="optimum (loss) → end: barrier", title_fontsize="x-small")
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("training loss (log)")
    _title(
        fig,
        "Barriers: the loss along the straight path between distinct optima (hidden units aligned), "
        "and from each optimum to the nearest solved network",
        ["barrier = highest loss on the path minus the higher end"],
    )
    return fig


def _solved_span(runs: pd.DataFrame, threshold: float | None) -> float:
    """max / min of the final losses below the threshold (1 when fewer than two, inf with a 0)."""
    if threshold is None:
        return 1.0
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    solved = loss[np.isfinite(loss) & (loss < threshold)]
    if len(solved) < 2:
        return 1.0
    return float(solved.max() / solved.min()) if solved.min() > 0 else float("inf")


def figures_for(
    runs: pd.DataFrame,
    curves: pd.DataFrame | None,
    summary: pd.DataFrame,
    threshold: float | None,
    chain: pd.DataFrame | None = None,
    landscape: tuple | None = None,
) -> dict[str, Figure]:
    """Every figure that has something to say about these tables.

    Parameters
    ----------
    runs, curves, summary : DataFrame
        A sweep's tables (``curves`` may be None: no figure of loss curves then).
    threshold : float or None
        The experiment's success threshold.
    chain : DataFrame, optional
        `nnlab.analysis.chain_gradients` output.
    landscape : tuple, optional
        (endpoints, optima, barriers) of `nnlab landscape`.

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
        - ``capacity``: always, with its success panel only when some configuration failed for
          some seed and its ERT panel only when some configuration succeeded;
        - ``capacity_best``: the same for each architecture at its own best setting of the swept
          learning rate or initialization (`nnlab.analysis.best_settings`), when one is swept;
        - ``heatmap``: depth and width both swept and the success rate not the same everywhere;
        - ``chain_gradients``: with a chain table;
        - with ``landscape``: ``endpoints``, ``spectra`` (an end point did not solve the task)
          and ``barriers`` (there are optima).

        When a single width was run and depth is swept, the figures compare depths (colours, or
        the x-axis of ``capacity``) instead of drawing one width per panel.
    """
    # The solved seeds as a bar only where their losses span more than a decade (see above).
    banded = threshold if _solved_span(runs, threshold) > 10 else None
    candidates = {}
    if banded is not None or not _diverged(runs["final_loss"]).all():
        candidates.update(spread=lambda: spread(runs, banded), ecdf=lambda: ecdf(runs, banded))
    if curves is not None:
        candidates["convergence"] = lambda: convergence(runs, curves, threshold)
        candidates["seed_curves"] = lambda: seed_curves(runs, curves, threshold)
    candidates["solved"] = lambda: solved(runs, curves, threshold)
    candidates["capacity"] = lambda: capacity(summary)
    best = best_settings(summary)
    if len(best):
        tuned = [a for a in TUNING if a in summary.columns and summary[a].nunique() > 1]
        note = (
            f"each architecture at its own best setting of {', '.join(tuned)} (lowest ERT; the "
            "report names each setting)"
        )
        candidates["capacity_best"] = lambda: capacity(best.drop(columns=tuned), note)
    if summary["depth"].nunique() > 1 and summary["width"].nunique() > 1 and summary["success"].nunique() > 1:
        candidates["heatmap"] = lambda: heatmap(summary)
    if chain is not None:
        candidates["chain_gradients"] = lambda: chain_gradients(chain)
    if landscape is not None and landscape[0] is not None and "certified" in summary:
        candidates["endpoints"] = lambda: endpoints(summary)
        candidates["spectra"] = lambda: spectra(landscape[0], runs)
        candidates["barriers"] = lambda: barriers(landscape[2], landscape[1])
    out = {}
    for stem, draw in candidates.items():
        figure = draw()
        if figure is not None:
            out[stem] = figure
    return out


def side_by_side(panels: Sequence[tuple[str, Figure | None]], *, dpi: float = 150.0) -> Figure:
    """Several sweeps' versions of one figure in one, each under its sweep's name (`nnlab compare`).

    Each figure is rendered at ``dpi`` and placed as an image, so it keeps its own layout, scales and
    notes; a sweep without the figure gets a panel saying so.

    Parameters
    ----------
    panels : sequence of (str, Figure or None)
        The sweep's name and its figure (None: that sweep has nothing to show in it).
    dpi : float
        Resolution of the images; save the result at the same dpi for a 1:1 copy.

    Returns
    -------
    Figure
        The panels left to right, or one above the other when the figures are wider than 10 inches.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    images = []
    for _, figure in panels:
        if figure is None:
            images.append(None)
            continue
        canvas = FigureCanvasAgg(figure)
        figure.set_dpi(dpi)
        canvas.draw()
        images.append(np.asarray(canvas.buffer_rgba()))
    drawn = [im for im in images if im is not None]
    if not drawn:
        raise InputError("panels: no figure to place")
    h = max(im.shape[0] for im in drawn) / dpi
    w = max(im.shape[1] for im in drawn) / dpi
    title = 0.35  # inches above each panel for the sweep's name
    stacked = w > 10.0
    n = len(panels)
    size = (w, n * (h + title)) if stacked else (n * w, h + title)
    fig = Figure(figsize=size, dpi=dpi)
    for k, ((name, _), image) in enumerate(zip(panels, images, strict=True)):
        if stacked:
            box = (0.0, 1 - (k + 1) * (h + title) / size[1], 1.0, h / size[1])
        else:
            box = (k * w / size[0], 0.0, w / size[0], h / size[1])
        ax = fig.add_axes(box)
        ax.set_axis_off()
        if image is None:
            note = f"{name}: nothing to show in this figure"
            ax.text(0.5, 0.5, note, ha="center", va="center", color="0.3")
        else:
            ax.imshow(image, interpolation="none")
            ax.set_xlim(-0.5, w * dpi - 0.5)  # every panel at the same scale, aligned top left
            ax.set_ylim(h * dpi - 0.5, -0.5)
        ax.text(0.0, 1.0, name, transform=ax.transAxes, ha="left", va="bottom", fontsize=13, weight="bold")
    return fig


__all__ = [
    "PALETTE",
    "barriers",
    "capacity",
    "chain_gradients",
    "convergence",
    "ecdf",
    "endpoints",
    "figures_for",
    "heatmap",
    "seed_curves",
    "side_by_side",
    "solved",
    "spectra",
    "spread",
]
