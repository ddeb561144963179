"""Figures of the summary table: success rate and expected running time against width or depth
(`capacity`: `success_panel`, `ert_panel`), and the success rate over depth x width (`heatmap`)."""

from __future__ import annotations

import math

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nnlab.figures import layout as L

INF = 0.92  # the row (a fraction of the panel's height) where the ERT panel shows infinity


def series(summary: pd.DataFrame, hue: str | None = None) -> list[tuple[str, pd.DataFrame, dict]]:
    """The lines of `capacity`: one per combination of the axes other than the x-axis ``hue``
    (depth when width is on the x-axis, then whatever else varies, then the sweep), each with its
    label, rows (sorted along x) and matplotlib style: colour by the first of these axes that
    varies (sequential when ordered), line style and marker by the others that vary."""
    hue = hue or L.compared(summary)
    keys = L.row_axes(summary)
    if hue == "width":
        keys = ["depth", *keys]
    if L.SWEEP in summary.columns and summary[L.SWEEP].nunique() > 1:
        keys.append(L.SWEEP)
    if not keys:
        return [
            (
                L.label(["width"], [summary["width"].iloc[0]]),
                summary.sort_values(hue),
                dict(color=sns.color_palette(L.PALETTE)[0], ls="-", marker="o", ms=5),
            )
        ]
    groups = list(summary.groupby(keys, sort=False))
    # Colour by the first of these axes that varies (sequential when its values are ordered: lr,
    # depth), line style and marker by the others that vary.
    varying = [a for a in keys if summary[a].nunique() > 1] or keys[:1]
    at = [keys.index(a) for a in varying]
    first = (
        list(dict.fromkeys(summary[varying[0]])) if varying[0] == L.SWEEP else L.values(summary, varying[0])
    )
    colors = L.palette(first)
    rest = sorted({tuple(k[i] for i in at[1:]) for k, _ in groups})
    out = []
    for key, g in sorted(groups, key=lambda kg: tuple(kg[0])):
        style = rest.index(tuple(key[i] for i in at[1:]))
        fmt = dict(
            color=colors[L.fmt(key[at[0]])], ls=L.LINESTYLES[style % 4], marker=L.MARKERS[style % 6], ms=5
        )
        out.append((L.label(keys, key), g.sort_values(hue), fmt))
    return out


def _x_axis(ax: Axes, xs: list, hue: str) -> None:
    """Width on a log-2 axis, depth on a linear one, ticked at the values run."""
    if hue == "width":
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [L.fmt(w) for w in xs])
        ax.xaxis.set_minor_locator(mticker.NullLocator())
        ax.set_xlim(min(xs) / 2**0.5, max(xs) * 2**0.5)
        ax.set_xlabel(f"{L.axis_label('width', ax)} (log 2)")
    else:
        ax.set_xticks(xs, [L.fmt(d) for d in xs])
        ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
        ax.set_xlabel(L.axis_label("depth", ax))


def _nudged(g: pd.DataFrame, hue: str, n: int, count: int) -> np.ndarray:
    """The x of line ``n`` of ``count``, nudged sideways (a fraction of an octave, or of a layer)
    so that the error bars of neighbouring lines do not overlap."""
    shift = 0.06 * (n - (count - 1) / 2)
    x = g[hue].to_numpy(dtype=np.float64)
    return x * 2**shift if hue == "width" else x + 1.5 * shift


@L.panel
def success_panel(summary: pd.DataFrame, *, ax: Axes, hue: str | None = None) -> Axes:
    """Success rate (hitting-based) against width (or depth) with its Wilson 95% interval as error
    bars, one line per `series`."""
    hue = hue or L.compared(summary)
    lines = series(summary, hue)
    for n, (_, g, fmt) in enumerate(lines):
        x = _nudged(g, hue, n, len(lines))
        s = g["success"].to_numpy(dtype=np.float64)
        yerr = np.clip([s - g["success_lo"].to_numpy(), g["success_hi"].to_numpy() - s], 0, None)
        ax.errorbar(x, s, yerr=yerr, capsize=3, lw=1.5, **fmt)
    _x_axis(ax, L.values(summary, hue), hue)
    ax.set_ylim(-0.03, 1.03)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set_ylabel("success rate")
    return ax


@L.panel
def ert_panel(summary: pd.DataFrame, *, ax: Axes, hue: str | None = None) -> Axes:
    """Expected running time in epochs (log y) against width (or depth) with its bootstrap 95%
    interval (``ert_lo``, ``ert_hi``) as error bars, one line per `series`. An interval whose upper
    end is infinite is an arrow to the top of the panel; a configuration no seed solved (ERT = inf)
    is an open triangle pinned there, at a row ticked "∞"."""
    hue = hue or L.compared(summary)
    lines = series(summary, hue)
    open_top = no_seed = False
    for n, (_, g, fmt) in enumerate(lines):
        a, b = _ert_bars(ax, _nudged(g, hue, n, len(lines)), g, fmt)
        open_top, no_seed = open_top or a, no_seed or b
    ends = summary[["ert", "ert_lo", "ert_hi"]].to_numpy(dtype=np.float64).ravel()
    finite = ends[np.isfinite(ends) & (ends > 0)]
    if len(finite):
        _ert_axis(ax, finite.min() / 1.5, finite.max() * 1.5, infinite=open_top or no_seed)
    _x_axis(ax, L.values(summary, hue), hue)
    ax.set_ylabel("ERT (epochs, log)")
    return ax


@L.styled
def capacity(summary: pd.DataFrame, note: str = "", *, suffix: str = "", size: str | None = None) -> Figure:
    """Success rate and expected running time against width (or depth, when one width was run).

    Parameters
    ----------
    summary : DataFrame
        `nnlab.analysis.summarize` output (or `nnlab.analysis.best_settings` of it); with a
        ``sweep`` column, several sweeps' lines on the same axes.
    note : str
        A sentence for the caption (what the rows are, say).
    suffix : str
        Added to the title (", each at its best lr", say).
    size : {"single", "double"}, optional
        A paper's column width.

    Returns
    -------
    Figure
        `success_panel`, left out when every configuration solved every seed, and `ert_panel`, left
        out when no configuration solved any seed. Colour = depth (or the first other swept axis),
        line style = the other swept axes and the sweep.
    """
    hue = L.compared(summary)
    panels = []
    if not (summary["success"] >= 1).all():
        panels.append("success")
    if np.isfinite(summary["ert"].to_numpy(dtype=np.float64)).any():
        panels.append("ert")
    fig, axes = L.grid(1, len(panels), size=size, panel_w=4.4, panel_h=3.4, sharex=True)
    for ax, name in zip(axes[0], panels, strict=True):
        (success_panel if name == "success" else ert_panel)(summary, ax=ax, hue=hue)
    lines = series(summary, hue)
    L.legend(fig, [Line2D([], [], **fmt) for _, _, fmt in lines], [name for name, _, _ in lines], None, size)
    shown = " and ".join({"success": "Success rate", "ert": "ERT"}[p] for p in panels)
    L.title(fig, f"{shown} against {L.axis_name(hue)}{suffix}")
    infinite = [t.get_text() for t in axes[0, -1].get_yticklabels()] if "ert" in panels else []
    L.note(
        fig,
        note,
        ""
        if "success" in panels
        else "every seed of every configuration reached the threshold: no success-rate panel",
        "" if "ert" in panels else "no seed of any configuration reached the threshold: no ERT panel",
        "ERT at ∞: no seed reached the threshold; an arrow: the interval's upper end is ∞"
        if "∞" in infinite
        else "",
    )
    return fig


def _ert_axis(ax: Axes, lo: float, hi: float, infinite: bool) -> None:
    """The ERT panel's log axis from ``lo`` to ``hi``; with ``infinite``, the top of the panel is
    a row of its own, ticked "∞", apart from the finite values (at `INF`)."""
    ax.set_yscale("log")
    a, b = math.log10(lo), math.log10(hi)
    top = a + (b - a) / 0.8 if infinite else b  # the finite values take the lower 80%
    ax.set_ylim(10**a, 10**top)
    found, formatter = L.ticks(True, 10**a, 10**b, "y")
    names = [formatter(t) for t in found]
    if infinite:
        found = np.r_[found, 10 ** (a + INF * (top - a))]
        names.append("∞")
    ax.set_yticks(found, names)
    ax.yaxis.set_minor_locator(mticker.NullLocator())


def _ert_bars(ax: Axes, x: np.ndarray, g: pd.DataFrame, fmt: dict) -> tuple[bool, bool]:
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
            xy=(xi, INF),
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
            np.full(inf.sum(), INF),
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


@L.panel
def heatmap_panel(
    summary: pd.DataFrame, *, ax: Axes, depths: list | None = None, widths: list | None = None
) -> Axes:
    """Success rate over depth (rows, shallowest on top) x width (columns, numeric order),
    annotated with the percentage, on a sequential scale from 0 to 100%; a configuration not run
    is left blank. The rows of ``summary`` of one setting of the other axes."""
    depths = depths if depths is not None else L.values(summary, "depth")
    widths = widths if widths is not None else L.values(summary, "width")
    grid = summary.pivot_table(index="depth", columns="width", values="success", aggfunc="mean").reindex(
        index=depths, columns=widths
    )
    grid.index = [L.fmt(d) for d in grid.index]
    grid.columns = [L.fmt(w) for w in grid.columns]
    annot = grid.map(lambda s: "" if np.isnan(s) else f"{100 * s:.0f}%").to_numpy()
    sns.heatmap(
        grid,
        annot=annot,
        fmt="",
        vmin=0,
        vmax=1,
        cmap=L.SEQUENTIAL,
        cbar=False,
        linewidths=0.5,
        linecolor="white",
        ax=ax,
        annot_kws={"fontsize": "small"},
    )
    ax.set_xlabel(L.axis_label("width", ax))
    ax.set_ylabel(L.axis_label("depth", ax))
    ax.tick_params(axis="y", labelrotation=0)
    return ax


@L.styled
def heatmap(summary: pd.DataFrame, *, size: str | None = None) -> Figure:
    """Success rate over depth x width (`heatmap_panel`), one panel per learning rate (and other
    swept axis, and sweep), side by side, with one colour bar."""
    facets = L.Facets.of(summary, overlay=False)
    widths = L.values(summary, "width")
    fig, axes = L.grid(
        1,
        len(facets.rows),
        size=size,
        panel_w=max(3.0, 0.55 * len(widths) + 1.2),
        panel_h=max(2.4, 0.5 * len(facets.depths) + 1.2),
        sharey=True,
    )
    for j, row in enumerate(facets.rows):
        ax = heatmap_panel(
            summary[facets.mask(summary, row)], ax=axes[0, j], depths=facets.depths, widths=widths
        )
        ax.set_title(L.label(facets.row_axes, row) if facets.row_axes else "all runs")
        if j:
            ax.set_ylabel("")
    fig.colorbar(
        axes[0, 0].collections[0],
        ax=axes.ravel().tolist(),
        label="success rate",
        format=mticker.PercentFormatter(1.0),
        shrink=0.9,
    )
    L.title(fig, "Success rate by depth and width")
    return fig


__all__ = ["capacity", "ert_panel", "heatmap", "heatmap_panel", "series", "success_panel"]
