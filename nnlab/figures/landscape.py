"""Figures of what the end points are (`nnlab landscape`): their kinds per width (`endpoints`),
the Hessian spectra of those that did not solve the task (`spectra`), the loss barriers between
optima (`barriers`), pictures around a few of them (`landscape_slices`); and the gradient through
a tanh chain at initialization (`chain_gradients`)."""

from __future__ import annotations

import matplotlib.patches as mpatches
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nnlab.analysis import varying_axes
from nnlab.figures import layout as L
from nnlab.schema import BARRIER_COLUMNS

KIND_ORDER = ("solved", "minimum", "degenerate", "saddle", "valley", "unconverged")
MAX_PANELS = 12  # spectra and barriers draw at most this many configurations


def kind_colors() -> dict[str, tuple]:
    """One colour per end point kind from `PALETTE`, far apart where kinds sit side by side."""
    palette = sns.color_palette(L.PALETTE, 10)
    return dict(zip(KIND_ORDER, [palette[i] for i in (0, 2, 1, 3, 4, 7)], strict=True))


# -- endpoints ------------------------------------------------------------------------------------------


@L.panel
def endpoints_panel(summary: pd.DataFrame, *, ax: Axes, widths: list | None = None) -> Axes:
    """Stacked bars, one per width: the share of the certified end points of each kind
    (``end_<kind>`` / ``certified`` of the summary's rows), the number of distinct certified
    optima above each bar."""
    widths = widths if widths is not None else L.values(summary, "width")
    colors = kind_colors()
    sub = summary.set_index("width").reindex(widths)
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
    ax.set_xticks(x, [L.fmt(w) for w in widths])
    ax.set_ylim(0, 1.08)
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set_xlabel(L.axis_label("width", ax))
    ax.set_ylabel("certified end points")
    return ax


@L.styled
def endpoints(summary: pd.DataFrame, *, size: str | None = None) -> Figure:
    """What the end points are (`endpoints_panel`), in the facets of the other figures (columns
    depth, rows lr and the other swept axes, and the sweep)."""
    widths = L.values(summary, "width")

    def draw(ax, part, lane):
        endpoints_panel(part, ax=ax, widths=widths)

    fig, axes, _ = L.facet(
        summary, draw, overlay=False, size=size, panel_w=max(L.PANEL_W, 0.45 * len(widths) + 1.5), sharey=True
    )
    L.label_outer(axes, L.axis_label("width", axes[-1, 0]), "share of certified end points")
    colors = kind_colors()
    L.legend(
        fig, [mpatches.Patch(color=colors[k], label=k) for k in KIND_ORDER], KIND_ORDER, "end point", size
    )
    L.title(fig, "What the end points are, per width")
    L.note(fig, "number above a bar: distinct certified local minima (modulo permutation and sign)")
    return fig


# -- spectra and barriers: one panel per configuration ----------------------------------------------------


def _configurations(table: pd.DataFrame, axes: list[str], size: str | None, **kwargs):
    """The first `MAX_PANELS` configurations of ``table`` (groups of ``axes``) and a grid for them,
    filled evenly (`layout.wrap`), the unused panels hidden."""
    groups = list(table.groupby(axes, sort=True))[:MAX_PANELS]
    fig, grid = L.grid(*L.wrap(len(groups), 3), size=size, panel_w=4.2, panel_h=3.2, **kwargs)
    for ax in grid.flat[len(groups) :]:
        ax.set_visible(False)
    return groups, fig, grid


def _name(axes: list[str], key) -> str:
    return L.label(axes, key if isinstance(key, tuple) else (key,))


@L.panel
def spectra_panel(endpoints: pd.DataFrame, *, ax: Axes, flat: float = 1e-6) -> Axes:
    """Each end point (sorted by polished loss) a column of its Hessian eigenvalues' sizes
    relative to the largest, |lambda| / max |lambda| (log, floored at 1e-16), coloured by kind; a
    negative eigenvalue an open marker; the flat tolerance ``flat`` a dashed line."""
    colors = kind_colors()
    g = endpoints.sort_values("polished_loss")
    # Each end point's filled markers, then its open ones, as before; but one scatter per run of
    # end points drawn alike (two per end point made hundreds of collections, each autoscaled),
    # so the stacking order is unchanged and an SVG still defines each marker once.
    runs: list[tuple[tuple, list, list]] = []
    for k, row in enumerate(g.itertuples(index=False)):
        lam = np.asarray(row.spectrum, dtype=np.float64)
        size = np.maximum(np.abs(lam) / max(np.abs(lam).max(initial=0.0), 1e-300), 1e-16)
        neg = lam < 0
        for key, mask in (((row.kind, False), ~neg), ((row.kind, True), neg)):
            if not mask.any():
                continue
            if not runs or runs[-1][0] != key:
                runs.append((key, [], []))
            runs[-1][1].extend([k] * int(mask.sum()))
            runs[-1][2].extend(size[mask].tolist())
    for (kind, hollow), x, y in runs:
        if hollow:
            ax.scatter(x, y, s=14, facecolors="none", edgecolors=colors[kind], lw=0.8)
        else:
            ax.scatter(x, y, s=8, lw=0, color=colors[kind])
    ax.set_yscale("log")
    ax.set_ylim(3e-17, 3)
    ax.axhline(flat, color="0.3", lw=0.8, ls="--")
    ax.set_xticks([])
    ax.set_xlabel(f"{len(g)} end points, by polished loss")
    ax.set_ylabel("|eigenvalue| / largest (log)")
    return ax


@L.styled
def spectra(
    endpoints: pd.DataFrame, runs: pd.DataFrame, flat: float = 1e-6, *, size: str | None = None
) -> Figure | None:
    """The Hessian spectra of the end points that did not solve the task (`spectra_panel`), one
    panel per configuration (the first `MAX_PANELS` in grid order). None when every end point
    solved.

    ``endpoints``: endpoints.parquet (``run_id``, ``kind``, ``polished_loss``, ``spectrum``,
    ``n_symmetry``); ``runs``: runs.parquet, for the configurations."""
    first = [L.SWEEP] if L.SWEEP in runs.columns else []  # several sweeps: each one's panels together
    names = list(
        dict.fromkeys(a for a in [*first, "depth", "width", *varying_axes(runs)] if a in runs.columns)
    )
    unsolved = endpoints[endpoints["kind"] != "solved"].drop(columns=first)
    table = unsolved.merge(runs[["run_id", *names]], on="run_id")
    if not len(table):
        return None
    groups, fig, grid = _configurations(table, names, size, sharey=True)
    for ax, (key, g) in zip(grid.flat, groups, strict=False):
        spectra_panel(g, ax=ax, flat=flat)
        ax.set_title(_name(names, key), fontsize="small")
    for ax in grid[:, 1:].flat:
        ax.set_ylabel("")
    colors = kind_colors()
    handles = [mpatches.Patch(color=colors[k], label=k) for k in KIND_ORDER[1:]]
    handles.append(Line2D([], [], ls="none", marker="o", mfc="none", mec="0.3", label="negative eigenvalue"))
    L.legend(fig, handles, [h.get_label() for h in handles], "end point", size)
    L.title(fig, "Hessian spectra of the end points that did not solve the task")
    symmetric = "n_symmetry" in table and (table["n_symmetry"] > 0).any()
    L.note(
        fig,
        f"dashed line: the flat tolerance {flat:g} of the largest eigenvalue",
        "the directions of the networks' rescaling symmetries left out" if symmetric else "",
    )
    return fig


@L.panel
def barriers_panel(table: pd.DataFrame, *, ax: Axes) -> Axes:
    """The loss along the paths from each optimum of one configuration to another or to the best
    network SGD solved, after alignment: the trained Bezier curve (``bezier_path``, solid, its
    barrier in the legend) and the straight line (``path``, dashed: an upper bound)."""
    colors = sns.color_palette(L.PALETTE, 10)
    for k, row in enumerate(table.itertuples(index=False)):
        target = "SGD's best solved" if row.to == "solved" else f"optimum {row.to}"
        label = f"{row.optimum} → {target}: {{:.2g}}"
        straight = np.asarray(row.path, dtype=np.float64)
        curve = getattr(row, "bezier_path", None)
        if curve is not None:
            curve = np.asarray(curve, dtype=np.float64)
            t = np.linspace(0, 1, len(curve))
            ax.plot(t, curve, color=colors[k % 10], lw=1.5, label=label.format(row.bezier))
            ax.plot(np.linspace(0, 1, len(straight)), straight, color=colors[k % 10], lw=1, ls="--")
        else:  # folders certified before the curves were trained
            t = np.linspace(0, 1, len(straight))
            ax.plot(t, straight, color=colors[k % 10], lw=1.5, label=label.format(row.barrier))
    ax.set_yscale("log")
    ax.set_xlabel("t along the path")
    ax.set_ylabel("training loss (log)")
    ax.legend(fontsize="x-small", title="optimum → end: barrier", title_fontsize="x-small")
    return ax


@L.styled
def barriers(table: pd.DataFrame, optima: pd.DataFrame, *, size: str | None = None) -> Figure | None:
    """The loss along the paths between distinct optima of a configuration, and from each to the
    best network SGD solved (`barriers_panel`), one panel per configuration (at most
    `MAX_PANELS`); None when there is no barrier. ``table``: barriers.parquet; ``optima``:
    optima.parquet."""
    if table is None or not len(table):
        return None
    names = [a for a in table.columns if a not in BARRIER_COLUMNS]
    names = sorted(names, key=lambda a: a != L.SWEEP)  # several sweeps: each one's panels together
    shown = [a for a in names if a in ("depth", "width") or table[a].nunique() > 1]
    groups, fig, grid = _configurations(table, names, size)
    for ax, (key, g) in zip(grid.flat, groups, strict=False):
        barriers_panel(g, ax=ax)
        where = dict(zip(names, key, strict=True))
        ax.set_title(L.label(shown, [where[a] for a in shown]), fontsize="small")
    for ax in grid[:, 1:].flat:
        ax.set_ylabel("")
    L.title(fig, "Loss barriers between optima and to the best network SGD solved")
    L.note(
        fig,
        "hidden units aligned first; solid: a quadratic Bezier curve trained on the loss, dashed: the "
        "straight line (an upper bound); barrier = highest loss on the curve minus the higher end",
    )
    return fig


# -- the chain's gradient at initialization ---------------------------------------------------------------


@L.panel
def chain_gradients_panel(table: pd.DataFrame, *, ax: Axes, lane: L.Lane | None = None) -> Axes:
    """|dLoss/dw_1| at initialization against the chain's length L: one jittered point per seed
    and the median per L (log y). ``table``: `nnlab.analysis.chain_gradients` output (``L``,
    ``seed``, ``grad_w1``)."""
    lane = lane or L.Lane()
    colors = sns.color_palette(L.PALETTE)
    point, line = (
        (colors[0], colors[1]) if lane.name is None else (colors[2 * lane.k % 10], colors[2 * lane.k % 10])
    )
    shown = table[L.finite_positive(table["grad_w1"])]
    suffix = f" ({lane.name})" if lane.name else ""
    if len(shown):
        L.strip(
            ax,
            shown["L"].to_numpy() + lane.dodge(0.5),
            shown["grad_w1"].to_numpy(),
            color=point,
            s=6,
            alpha=0.45,
            marker=lane.marker,
            jitter=0.25 / lane.n,
        )
        ax.scatter([], [], color=point, s=6, alpha=0.45, marker=lane.marker, label="one seed" + suffix)
        med = shown.groupby("L")["grad_w1"].median()
        ax.plot(
            med.index,
            med.to_numpy(),
            color=line,
            marker="o",
            lw=2,
            ls=lane.ls,
            label="median over seeds" + suffix,
        )
    lengths = sorted(table["L"].unique().tolist())
    ax.set_yscale("log")
    ax.set_xticks(lengths, [L.fmt(n) for n in lengths])
    ax.set_xlabel("chain length L (tanh units)")
    ax.set_ylabel(r"$|\partial\, \mathrm{loss} / \partial w_1|$ at initialization (log)")
    ax.legend(loc="lower left")
    return ax


@L.styled
def chain_gradients(table: pd.DataFrame, *, size: str | None = None) -> Figure:
    """|dLoss/dw_1| at initialization of a single-unit tanh chain against its length L
    (`chain_gradients_panel`; with a ``sweep`` column, each sweep's points and median side by
    side)."""
    fig, axes = L.grid(1, 1, size=size, panel_w=5.6, panel_h=3.8, legend=False)
    ax = axes[0, 0]
    for lane, part in L.split(table, L.lanes(table)):
        chain_gradients_panel(part, ax=ax, lane=lane)
    L.title(fig, "Gradient through a tanh chain at initialization")
    hidden = int(np.count_nonzero(~L.finite_positive(table["grad_w1"])))
    L.note(
        fig,
        "|∂loss/∂w₁| is a product of one (1 − fᵢ²)·wᵢ₊₁ factor per unit, so it shrinks or explodes with L",
        f"{hidden} zero or non-finite gradients not shown" if hidden else "",
    )
    return fig


__all__ = [
    "KIND_ORDER",
    "barriers",
    "barriers_panel",
    "chain_gradients",
    "chain_gradients_panel",
    "endpoints",
    "endpoints_panel",
    "spectra",
    "spectra_panel",
]


# -- landscape_slices: the loss along the line from the start and on a plane around the end -----------


def _row(table, row):
    """One end point's row of `nnlab.sweep.endpoints.slices`: a Series, or the one row of a table."""
    return table.iloc[row] if isinstance(table, pd.DataFrame) else table


@L.panel
def interpolation_panel(table, row: int = 0, *, ax: Axes) -> Axes:
    """The full-data loss along the straight line from the run's initial network (t = 0) to its
    certified point (t = 1, marked in its kind's colour) of one end point (row ``row`` of
    `nnlab.sweep.endpoints.slices`, or that row); a log loss axis where it spans over a decade."""
    r = _row(table, row)
    t, loss = np.asarray(r["t"]), np.asarray(r["line"])
    ax.plot(t, loss, color="0.2", lw=1.5)
    ax.plot(
        [1.0], [loss[-1]], marker="*", ms=11, color=kind_colors()[r["kind"]], ls="none", mec="0.1", mew=0.5
    )
    positive = loss[np.isfinite(loss) & (loss > 0)]
    if len(positive) and positive.max() > 10 * positive.min():
        ax.set_yscale("log")
    ax.set_xlabel("t: initial network → certified point")
    ax.set_ylabel("training loss")
    return ax


@L.panel
def slice_panel(table, row: int = 0, *, ax: Axes) -> Axes:
    """The full-data loss (log10, filled contours) on the plane through one certified point along
    two filter-normalized random directions (Li et al. 2018), the point a star in its kind's colour
    at the centre (row ``row`` of `nnlab.sweep.endpoints.slices`, or that row)."""
    r = _row(table, row)
    alpha = np.asarray(r["alpha"])
    n = len(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log10(np.asarray(r["plane"], dtype=np.float64).reshape(n, n))
    finite = z[np.isfinite(z)]
    z = np.where(np.isfinite(z), z, finite.max() if len(finite) else 0.0)
    shown = ax.contourf(alpha, alpha, z, levels=14, cmap="viridis")
    ax.contour(alpha, alpha, z, levels=shown.levels, colors="white", linewidths=0.3, alpha=0.5)
    ax.plot([0], [0], marker="*", ms=12, color=kind_colors()[r["kind"]], mec="white", mew=0.8, ls="none")
    bar = ax.figure.colorbar(shown, ax=ax, shrink=0.9)
    bar.set_label("log10 loss")
    ax.set_aspect("equal")
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    return ax


@L.styled
def landscape_slices(table: pd.DataFrame | None, *, size: str | None = None) -> Figure | None:
    """For each end point drawn by `nnlab.sweep.endpoints.slices` (one per kind per configuration,
    capped), two panels side by side: the loss from the initial network to the certified point
    (`interpolation_panel`) and on a plane around it (`slice_panel`); two end points a row. None
    when no end point was drawn."""
    if table is None or not len(table) or not table["drawn"].any():
        return None
    drawn = table[table["drawn"]].reset_index(drop=True)
    axes = [a for a in varying_axes(drawn) if a != "kind"] or ["width"]
    per_row = 2 if len(drawn) > 1 else 1
    rows = -(-len(drawn) // per_row)
    fig, grid = L.grid(rows, 2 * per_row, size=size, panel_w=3.3, panel_h=2.9, legend=False)
    for ax in grid.flat[2 * len(drawn) :]:
        ax.set_visible(False)
    for k in range(len(drawn)):
        r = drawn.iloc[k]
        where = f"{_name(axes, tuple(r[a] for a in axes))}: {r['kind']}"
        line_ax, plane_ax = grid.flat[2 * k], grid.flat[2 * k + 1]
        interpolation_panel(r, ax=line_ax)
        slice_panel(r, ax=plane_ax)
        line_ax.set_title(where)
        plane_ax.set_title(f"around it (loss {r['polished_loss']:.2g})")
    L.title(fig, "The loss from the start to the certified point, and around it")
    skipped = table[~table["drawn"]]
    L.note(
        fig,
        f"{len(drawn)} end points, one per kind per configuration (the lowest loss of each kind)",
        "plane: [-1, 1]^2 along two filter-normalized random directions (biases fixed), 21 x 21 full-data "
        "losses; the star is the certified (polished) point",
        f"{len(skipped)} larger end points not drawn (parameters x samples above the cap)"
        if len(skipped)
        else "",
    )
    return fig
