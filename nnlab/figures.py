"""Figures of a sweep's tables: each function takes tables and returns a matplotlib Figure.

Nothing is saved or shown here (the CLI does that). Figures are built on
`matplotlib.figure.Figure` directly, never through pyplot, so they do not pile up in pyplot's
registry of open figures and are freed as soon as the caller drops them.

Facets follow one rule throughout: one column per depth, one row per learning rate, and every
other grid axis that varies (batch size, epochs, ...) folded into the row label. Widths are
always drawn in numeric order with one colour each from `PALETTE`.
"""

from __future__ import annotations

import functools
import textwrap
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import matplotlib.patches as mpatches
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nnlab.analysis import varying_axes

PALETTE = "colorblind"  # the one colour-blind-safe palette every figure draws from
WIDTH_LABEL = "hidden units per layer"
LOSS_LABEL = "final training loss (log)"
_PANEL_W, _PANEL_H = 3.6, 2.9  # inches per facet: readable at 150 dpi without being huge
_MAX_W = 18.0  # inches: wider grids shrink their panels instead
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_SHOWN_MAX = 1e100  # a loss above this is drawn as diverged: no study's loss lives up there


# -- shared helpers -------------------------------------------------------------------------------


def _styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure inside seaborn's style, without changing the caller's global rcParams."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with ExitStack() as stack:
            stack.enter_context(sns.axes_style("whitegrid"))
            stack.enter_context(sns.plotting_context("notebook", font_scale=0.8))
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


def _widths(table: pd.DataFrame) -> list:
    return sorted(table["width"].unique().tolist())


def _width_colors(widths: Sequence) -> dict[str, tuple]:
    """Width (as its label) -> colour; keyed by string so categorical plots keep numeric order."""
    colors = sns.color_palette(PALETTE, len(widths))
    return {_fmt(w): c for w, c in zip(widths, colors, strict=True)}


def _row_axes(table: pd.DataFrame) -> list[str]:
    """The varying axes that go into the row facets: lr first, then the rest in grid order."""
    rest = [a for a in varying_axes(table) if a not in ("depth", "width")]
    return sorted(rest, key=lambda a: a != "lr")


@dataclass(frozen=True)
class _Facets:
    """Columns = depths, rows = combinations of the other varying axes (width excluded)."""

    depths: list
    row_axes: list[str]
    rows: list[tuple]

    @classmethod
    def of(cls, table: pd.DataFrame) -> _Facets:
        row_axes = _row_axes(table)
        if row_axes:
            keys = table[row_axes].drop_duplicates().sort_values(row_axes)
            rows = [tuple(r) for r in keys.itertuples(index=False)]
        else:
            rows = [()]
        return cls(sorted(table["depth"].unique().tolist()), row_axes, rows)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.depths)

    def title(self, row: tuple, depth) -> str:
        title = f"depth {_fmt(depth)}"
        return f"{title} | {_label(self.row_axes, row)}" if self.row_axes else title

    def panels(self, table: pd.DataFrame) -> Iterator[tuple[int, int, str, pd.DataFrame]]:
        """(row index, column index, panel title, the panel's rows of ``table``)."""
        for i, row in enumerate(self.rows):
            mask = np.ones(len(table), dtype=bool)
            for a, v in zip(self.row_axes, row, strict=True):
                mask &= (table[a] == v).to_numpy()
            for j, depth in enumerate(self.depths):
                sub = table[mask & (table["depth"] == depth).to_numpy()]
                yield i, j, self.title(row, depth), sub


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


def _width_legend(fig: Figure, widths: Sequence) -> None:
    """One legend for all panels, outside them (centred, clear of the suptitle)."""
    colors = _width_colors(widths)
    handles = [Line2D([], [], color=c, lw=2) for c in colors.values()]
    fig.legend(handles, list(colors), title="width", loc="outside right center", frameon=False)


# -- the figures -----------------------------------------------------------------------------------


def _strip(ax, x: np.ndarray, y: np.ndarray, **kwargs) -> None:
    """One point per seed at x, jittered sideways by up to 0.25. The jitter comes from a fixed
    Generator (seaborn's stripplot draws from numpy's global one), so regenerated figures are
    identical; rasterized, as thousands of points would bloat an SVG or PDF."""
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, size=len(x))
    ax.scatter(np.asarray(x, dtype=np.float64) + jitter, y, lw=0, rasterized=True, **kwargs)


@_styled
def spread(runs: pd.DataFrame, threshold: float | None = None) -> Figure:
    """Final loss of every seed per width: the spread of the optima SGD ends in.

    Parameters
    ----------
    runs : DataFrame
        runs.parquet: one row per run.
    threshold : float, optional
        Drawn as a dashed horizontal line when given.

    Returns
    -------
    Figure
        One panel per depth (columns) and learning rate (rows, with any other swept axis): the
        final loss (log y) per width as a box plot with one jittered point per seed. Diverged runs
        (non-finite loss) are left out and counted in the title and above their width.
    """
    facets = _Facets.of(runs)
    widths = _widths(runs)
    order = [_fmt(w) for w in widths]
    colors = _width_colors(widths)
    fig, axes = _grid(
        *facets.shape, panel_w=max(_PANEL_W, 0.45 * len(widths) + 1.2), sharex=True, sharey=True
    )
    for i, j, title, sub in facets.panels(runs):
        ax = axes[i, j]
        ax.set_yscale("log")
        ok = _finite_positive(sub["final_loss"])
        shown = pd.DataFrame({"width": sub["width"].map(_fmt), "final_loss": sub["final_loss"]})[ok]
        if len(shown):
            sns.boxplot(
                shown,
                x="width",
                y="final_loss",
                order=order,
                ax=ax,
                log_scale=(False, True),
                fill=False,
                color="0.35",
                showfliers=False,
                width=0.6,
                linewidth=1,
            )
            x = shown["width"].map(order.index).to_numpy()
            point_colors = [colors[w] for w in shown["width"]]
            _strip(ax, x, shown["final_loss"].to_numpy(), color=point_colors, s=9, alpha=0.7)
        # Points that cannot be drawn still count: say how many seeds of each width diverged.
        lost = sub.loc[_diverged(sub["final_loss"]), "width"].value_counts()
        for w, n in lost.items():
            ax.text(
                order.index(_fmt(w)),
                0.98,
                f"{n}\ndiverged",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize="x-small",
                color="0.25",
            )
        if threshold is not None:
            ax.axhline(threshold, color="0.3", ls="--", lw=1.2, zorder=1.5)
        ax.set_title(title)
    for ax in axes.flat:  # empty panels (a combination not in the grid) still get the categories
        ax.set_xticks(range(len(order)), order)
        ax.set_xlim(-0.5, len(order) - 0.5)
    if not _finite_positive(runs["final_loss"]).all():
        # Headroom (in decades, the y axes being shared and log) so the counts clear the points.
        lo, hi = np.log10(axes[0, 0].get_ylim())
        axes[0, 0].set_ylim(10**lo, 10 ** (hi + 0.2 * (hi - lo)))
    _label_outer(axes, WIDTH_LABEL, LOSS_LABEL)
    _title(
        fig,
        "Spread across local optima: the final loss each seed ends at, per width",
        [
            "one point per seed over a box plot (quartiles, whiskers 1.5 IQR)",
            _threshold_note(threshold),
            _diverged_note(runs),
        ],
    )
    return fig


@_styled
def ecdf(runs: pd.DataFrame, threshold: float | None = None) -> Figure:
    """Empirical CDF of the final loss per width.

    Parameters
    ----------
    runs : DataFrame
        runs.parquet: one row per run.
    threshold : float, optional
        Drawn as a dashed vertical line when given; where a width's curve crosses it is its
        success rate.

    Returns
    -------
    Figure
        Faceted like `spread`: per width (colour), the fraction of seeds whose final loss is at
        most x (log x). The fraction is of all seeds, so a diverged seed never counts and its
        curve levels off below 1.
    """
    facets = _Facets.of(runs)
    widths = _widths(runs)
    colors = _width_colors(widths)
    fig, axes = _grid(*facets.shape, sharex=True, sharey=True)
    ok_all = _finite_positive(runs["final_loss"])
    span = runs["final_loss"].to_numpy(dtype=np.float64)[ok_all]
    right = span.max() * 1.5 if len(span) else 1.0
    for i, j, title, sub in facets.panels(runs):
        ax = axes[i, j]
        ax.set_xscale("log")
        for w in widths:
            loss = sub.loc[sub["width"] == w, "final_loss"].to_numpy(dtype=np.float64)
            if not len(loss):
                continue
            x = np.sort(loss[_finite_positive(loss)])
            if not len(x):
                continue
            y = np.arange(1, len(x) + 1) / len(loss)
            # Start at 0 and run on to the panel's right edge, as a step function does.
            ax.step(np.r_[x[0], x, right], np.r_[0.0, y, y[-1]], where="post", color=colors[_fmt(w)], lw=1.8)
        if threshold is not None:
            ax.axvline(threshold, color="0.3", ls="--", lw=1.2, zorder=1.5)
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
        ax.set_title(title)
    _label_outer(axes, LOSS_LABEL, "seeds reaching this loss")
    _width_legend(fig, widths)
    _title(
        fig,
        "How many seeds reach each loss level: ECDF of the final loss per width",
        [_threshold_note(threshold), _diverged_note(runs, "count as never reaching any level")],
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
        median or a quartile is a diverged seed's the line stops.
    """
    facets = _Facets.of(runs)
    widths = _widths(runs)
    colors = _width_colors(widths)
    stats = _curve_quantiles(runs, curves, [*facets.row_axes, "depth", "width"])
    fig, axes = _grid(*facets.shape, sharex=True, sharey=True)
    for i, j, title, sub in facets.panels(stats):
        ax = axes[i, j]
        ax.set_yscale("log")
        lost = []
        for w, g in sub.groupby("width", sort=True):
            g = g.sort_values("epoch")
            color = colors[_fmt(w)]
            ax.fill_between(g["epoch"], g["q25"], g["q75"], color=color, alpha=0.2, lw=0, rasterized=True)
            ax.plot(g["epoch"], g["median"], color=color, lw=1.8)
            if np.isnan(g["median"].iloc[-1]):
                lost.append(_fmt(w))
        if lost:  # a line that stops early, or never starts, is said in words too
            ax.text(
                0.98,
                0.97,
                f"median diverged: width {', '.join(lost)}",
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
    _width_legend(fig, widths)
    _title(
        fig,
        "Training loss against epoch: median over seeds per width",
        [
            "band: 25-75% of seeds",
            _threshold_note(threshold),
            _diverged_note(runs, "count as the worst loss"),
        ],
    )
    return fig


def _series(summary: pd.DataFrame) -> tuple[list[str], list[tuple[tuple, pd.DataFrame]]]:
    """One line per combination of the non-width axes: depth always, plus whatever else varies."""
    keys = ["depth", *[a for a in varying_axes(summary) if a not in ("depth", "width")]]
    keys = sorted(keys, key=lambda a: (a != "depth", a != "lr"))
    return keys, [(k, g.sort_values("width")) for k, g in summary.groupby(keys, sort=True)]


@_styled
def capacity(summary: pd.DataFrame) -> Figure:
    """Success rate and expected running time against width.

    Parameters
    ----------
    summary : DataFrame
        `nnlab.analysis.summarize` output.

    Returns
    -------
    Figure
        Left: success rate per width with the Wilson 95% interval as error bars. Right: ERT in
        epochs (log y); a configuration no seed solved (ERT = inf) is an open triangle pinned
        at the top of the panel. Colour = depth, line style = the other swept axes (lr, ...);
        width on a log-2 axis.
    """
    keys, series = _series(summary)
    widths = _widths(summary)
    depths = sorted(summary["depth"].unique().tolist())
    depth_colors = dict(zip(depths, sns.color_palette(PALETTE, len(depths)), strict=True))
    rest = sorted({k[1:] for k, _ in series})
    fig, axes = _grid(1, 2, panel_w=5.0, panel_h=3.8, sharex=True)
    ax_s, ax_e = axes[0]
    ert_all = summary["ert"].to_numpy(dtype=np.float64)
    finite = ert_all[np.isfinite(ert_all) & (ert_all > 0)]
    any_inf = bool(np.isposinf(ert_all).any())
    handles, labels = [], []
    for n, (key, g) in enumerate(series):
        color = depth_colors[key[0]]
        style = rest.index(key[1:])
        fmt = dict(color=color, ls=_LINESTYLES[style % 4], marker=_MARKERS[style % len(_MARKERS)], ms=5)
        # Nudge each line sideways (a fraction of an octave) so the error bars do not overlap.
        x = g["width"].to_numpy(dtype=np.float64) * 2 ** (0.06 * (n - (len(series) - 1) / 2))
        s = g["success"].to_numpy(dtype=np.float64)
        yerr = np.clip([s - g["success_lo"].to_numpy(), g["success_hi"].to_numpy() - s], 0, None)
        ax_s.errorbar(x, s, yerr=yerr, capsize=3, lw=1.5, **fmt)
        e = g["ert"].to_numpy(dtype=np.float64)
        ok = np.isfinite(e) & (e > 0)
        ax_e.plot(x, np.where(ok, e, np.nan), lw=1.5, **fmt)
        inf = np.isposinf(e)
        if inf.any():
            ax_e.plot(
                x[inf],
                np.full(inf.sum(), 0.96),
                transform=ax_e.get_xaxis_transform(),
                ls="none",
                marker="^",
                ms=7,
                mfc="none",
                mew=1.5,
                color=color,
                clip_on=False,
            )
        handles.append(Line2D([], [], **fmt))
        labels.append(_label(keys, key))
    for ax in (ax_s, ax_e):
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [_fmt(w) for w in widths])
        ax.xaxis.set_minor_locator(mticker.NullLocator())
        ax.set_xlim(min(widths) / 2**0.5, max(widths) * 2**0.5)
        ax.set_xlabel(f"{WIDTH_LABEL} (log 2)")
    ax_s.set_ylim(-0.03, 1.03)
    ax_s.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax_s.set_ylabel("success rate (seeds below threshold)")
    ax_s.set_title("success rate, Wilson 95% interval")
    ax_e.set_yscale("log")
    if len(finite):
        # Headroom above the finite ERTs so the pinned infinite ones sit clear of them.
        ax_e.set_ylim(finite.min() / 2, finite.max() * 6)
    else:
        ax_e.set_ylim(1, 10 * float(summary["epochs"].max()) if "epochs" in summary else 1e4)
    ax_e.set_ylabel("ERT: expected epochs to threshold (log)")
    ert_title = "expected running time (ERT)"
    ax_e.set_title(ert_title + ("\n△ at top: no seed solved it (ERT = ∞)" if any_inf else ""))
    fig.legend(handles, labels, loc="outside right center", frameon=False)
    _title(fig, "Does capacity pay? Success rate and expected running time against width")
    return fig


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
    widths = _widths(summary)
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
    _title(fig, "Success rate by depth and width: share of seeds whose final loss is below the threshold")
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


def _config_label(row: pd.Series | dict, axes: Sequence[str]) -> str:
    return _label(axes, [row[a] for a in axes])


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
    widths = _widths(summary)
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
    axes_names = [a for a in table.columns if a not in ("optimum", "to", "to_run_id", "barrier", "path")]
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


def figures_for(
    runs: pd.DataFrame,
    curves: pd.DataFrame | None,
    summary: pd.DataFrame,
    threshold: float | None,
    chain: pd.DataFrame | None = None,
    landscape: tuple | None = None,
) -> dict[str, Figure]:
    """Every figure that applies to these tables.

    Parameters
    ----------
    runs, curves, summary : DataFrame
        A sweep's tables (``curves`` may be None: no convergence figure then).
    threshold : float or None
        The experiment's success threshold.
    chain : DataFrame, optional
        `nnlab.analysis.chain_gradients` output.
    landscape : tuple, optional
        (endpoints, optima, barriers) of `nnlab landscape`.

    Returns
    -------
    dict of str to Figure
        Keyed by file stem: ``spread``, ``ecdf``, ``convergence`` (with curves), ``capacity``,
        ``heatmap`` (when depth takes more than one value), ``chain_gradients`` (with a chain
        table), and with ``landscape`` ``endpoints``, ``spectra`` (when an end point did not solve
        the task) and ``barriers`` (when there are optima).
    """
    out = {"spread": spread(runs, threshold), "ecdf": ecdf(runs, threshold)}
    if curves is not None:
        out["convergence"] = convergence(runs, curves, threshold)
    out["capacity"] = capacity(summary)
    if summary["depth"].nunique() > 1:
        out["heatmap"] = heatmap(summary)
    if chain is not None:
        out["chain_gradients"] = chain_gradients(chain)
    if landscape is not None and landscape[0] is not None and "certified" in summary:
        out["endpoints"] = endpoints(summary)
        for stem, figure in (
            ("spectra", spectra(landscape[0], runs)),
            ("barriers", barriers(landscape[2], landscape[1])),
        ):
            if figure is not None:
                out[stem] = figure
    return out


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
    "spectra",
    "spread",
]
