"""What every figure shares, written once: the style and sizes, the palettes, the facets and the
faceting loop, the sweeps overlaid in one panel (`Lane`), loss and epoch axes, notes for the caption.

Figures are built on `matplotlib.figure.Figure` directly, never through pyplot, so they do not pile
up in pyplot's registry of open figures and are freed as soon as the caller drops them.

Facets follow one rule throughout. The compared axis is width (one colour per width, in numeric
order, from the sequential `SEQUENTIAL` palette), or depth when a single width was run and depth is
swept (the chain study). With width compared there is one column per depth; one row per learning
rate, with every other grid axis that varies (batch size, epochs, init, ...) folded into the row
label. Several sweeps (a ``sweep`` column, `nnlab compare`) are overlaid in each panel, one line style
and marker per sweep (`Lane`), where a figure's marks can be overlaid; otherwise they are rows.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import matplotlib as mpl
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nnlab.analysis import config_axes, varying_axes
from nnlab.errors import InputError

PALETTE = "colorblind"  # categorical: kinds, outcomes, sweeps, unordered axes (colour-blind safe)
SEQUENTIAL = "viridis"  # ordered axes (width, depth, lr, ...): dark to light as the value grows
SEQUENTIAL_SPAN = (0.0, 0.85)  # the part of it used: its last yellows are faint on white
SWEEP = "sweep"  # the column naming each sweep when several are drawn together
WIDTH_LABEL = "hidden units per layer"
DEPTH_LABEL = "hidden layers (depth)"
LOSS_LABEL = "final training loss"
AXIS_LABELS = {"width": WIDTH_LABEL, "depth": DEPTH_LABEL}
SIZES = {"single": 3.5, "double": 7.0}  # inches: a paper's single and double column
PANEL_W, PANEL_H = 3.6, 2.9  # inches per facet without a size: readable at 150 dpi
MAX_W = 15.0  # inches: wider grids shrink their panels instead
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")
SHOWN_MAX = 1e100  # a loss above this is drawn as diverged: no study's loss lives up there
LEGEND_RIGHT = 16  # characters: a legend with longer labels widens its figure
NOTES = "nnlab_notes"  # the Figure attribute holding what its caption adds (`note`, `notes`)

Threshold = float | Mapping[str, float] | None  # one, or one per sweep


# -- style, sizes, titles and notes ----------------------------------------------------------------


@contextmanager
def style(size: str | None = None) -> Iterator[None]:
    """seaborn's whitegrid style, at notebook scale or (with a paper ``size``) paper scale, without
    changing the caller's global rcParams."""
    if size is not None and size not in SIZES:
        raise InputError(f"size: expected one of {', '.join(SIZES)} or None, got {size!r}")
    with ExitStack() as stack:
        stack.enter_context(sns.axes_style("whitegrid"))
        if size is None:
            stack.enter_context(sns.plotting_context("notebook", font_scale=0.8))
        else:
            stack.enter_context(sns.plotting_context("paper", font_scale=0.85))
        # Titles at a fixed height: no figure puts tick labels on top, so matplotlib's search
        # for them (a fifth of every draw) would only ever confirm this position.
        stack.enter_context(mpl.rc_context({"axes.titley": 1.0, "legend.frameon": False}))
        # A panel whose points share one value (a single seed, say): matplotlib widens the axis
        # itself, and says so; nothing for the user to act on.
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", "Attempting to set identical low and high", UserWarning)
        yield


def styled(func: Callable[..., Figure | None]) -> Callable[..., Figure | None]:
    """A figure-level function drawn inside `style` (its ``size`` keyword picks the scale)."""

    @functools.wraps(func)
    def wrapper(*args, size: str | None = None, **kwargs):
        with style(size):
            return func(*args, size=size, **kwargs)

    return wrapper


def panel(func: Callable[..., Axes]) -> Callable[..., Axes]:
    """An axes-level function: draws into its ``ax``, or (``ax=None``) into a new figure's one
    Axes, drawn inside `style`."""
    params = inspect.signature(func).parameters
    assert "ax" in params and params["ax"].kind is inspect.Parameter.KEYWORD_ONLY, func

    @functools.wraps(func)
    def wrapper(*args, ax: Axes | None = None, **kwargs) -> Axes:
        if ax is not None:
            return func(*args, ax=ax, **kwargs)
        with style():
            ax = Figure(figsize=(PANEL_W + 1.2, PANEL_H + 0.4), layout="constrained").add_subplot()
            return func(*args, ax=ax, **kwargs)

    return wrapper


def grid(
    nrows: int,
    ncols: int,
    *,
    size: str | None = None,
    panel_w: float = PANEL_W,
    panel_h: float = PANEL_H,
    legend: bool = True,
    **kwargs,
) -> tuple[Figure, np.ndarray]:
    """A Figure (outside pyplot) with an (nrows, ncols) array of axes. Without ``size``, each panel
    ``panel_w`` x ``panel_h`` inches (and room at the right for a legend); with a paper ``size``
    the figure is that wide and its panels share the width, keeping their aspect."""
    if size is None:
        width = min(MAX_W, max(4.5, ncols * panel_w + (1.4 if legend else 0.3)))
        height = nrows * panel_h + 0.5
    else:
        width = SIZES[size]
        w = width / ncols
        height = nrows * max(1.2, min(w * panel_h / panel_w, 2.6)) + 0.3
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def wrap(n: int, most: int) -> tuple[int, int]:
    """(rows, columns) for ``n`` panels, at most ``most`` a row, rows filled evenly so that no last
    row holds a lone panel (7 -> 2 x 4, 12 -> 3 x 4, 10 -> 2 x 5)."""
    rows = -(-n // most)
    return rows, -(-n // rows)


def title(fig: Figure, text: str) -> None:
    """The figure's one-line title (what a caption says at more length is in its `notes`)."""
    fig.suptitle(text, fontsize=mpl.rcParams["axes.titlesize"])


def note(fig: Figure, *notes: str) -> None:
    """Add sentences for the figure's caption (the report prints them under it, and `nnlab
    figures` writes them into NAME.txt beside it); empty ones are skipped."""
    kept = getattr(fig, NOTES, [])
    kept += [n[0].upper() + n[1:] for n in notes if n]
    setattr(fig, NOTES, kept)


def notes(fig: Figure) -> list[str]:
    """What `note` added to the figure's caption (about these data: counts, what is not shown)."""
    return list(getattr(fig, NOTES, []))


def legend(
    fig: Figure, handles: Sequence, labels: Sequence[str], title: str | None, size: str | None
) -> None:
    """One legend for all panels: at the right, or below the panels at a paper size (whose width is
    fixed)."""
    if not handles:
        return
    points = mpl.font_manager.FontProperties(size=mpl.rcParams["legend.fontsize"]).get_size_in_points()
    char, line = 0.55 * points / 72, 1.5 * points / 72  # inches: a character's width, a row's height
    longest = max(len(t) for t in labels)
    if size is None:
        # At the right; long labels widen the figure rather than squeeze the panels.
        fig.set_figwidth(fig.get_figwidth() + max(0, longest - LEGEND_RIGHT) * char)
        fig.legend(handles, labels, title=title, loc="outside right center")
        return
    # Below, in as many columns as the paper's column holds; the figure grows by its height.
    ncols = max(1, min(len(labels), int(fig.get_figwidth() // (longest * char + 0.5))))
    rows = -(-len(labels) // ncols) + (1 if title else 0)
    fig.set_figheight(fig.get_figheight() + rows * line + 0.1)
    fig.legend(handles, labels, title=title, loc="outside lower center", ncols=ncols)


def axis_label(axis: str, ax: Axes) -> str:
    """The name of the width or depth axis: in words ("hidden units per layer"), or the short
    column name on a narrow panel (under 2.5 inches: a paper's column) where the words would not fit."""
    narrow = ax.get_position().width * ax.figure.get_figwidth() < 2.5
    return axis if narrow else AXIS_LABELS[axis]


def label_outer(axes: np.ndarray, xlabel: str, ylabel: str) -> None:
    """Axis names on the bottom row and left column only (shared axes need them once)."""
    nrows, ncols = axes.shape
    for (i, j), ax in np.ndenumerate(axes):
        ax.set_xlabel(xlabel if i == nrows - 1 else "")
        ax.set_ylabel(ylabel if j == 0 else "")


# -- values, palettes, facets ------------------------------------------------------------------------


def fmt(value) -> str:
    """A facet or legend value: 0.1 rather than 0.10000000000000001, 8 rather than 8.0."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def axis_name(axis: str) -> str:
    """An axis's column name as words ("batch_size" -> "batch size")."""
    return axis.replace("_", " ")


def label(axes: Sequence[str], values: Sequence) -> str:
    """A configuration in words: "depth 1, lr 0.1"."""
    return ", ".join(f"{axis_name(a)} {fmt(v)}" for a, v in zip(axes, values, strict=True))


def ordered(values: Sequence) -> bool:
    """Whether values are ordered quantities (numbers, not names or flags): a sequential palette."""
    return len(values) > 0 and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
        for v in values
    )


def palette(values: Sequence) -> dict[str, tuple]:
    """Value (as its label) -> colour: sequential (`SEQUENTIAL`, dark to light) for ordered values,
    categorical (`PALETTE`) otherwise; keyed by string so categorical plots keep numeric order."""
    n = len(values)
    if ordered(values):
        cmap = mpl.colormaps[SEQUENTIAL]
        at = np.linspace(*SEQUENTIAL_SPAN, n) if n > 1 else [0.45]
        colors = [tuple(cmap(x)[:3]) for x in at]
    else:
        colors = sns.color_palette(PALETTE, n)
    return {fmt(v): c for v, c in zip(values, colors, strict=True)}


def compared(table: pd.DataFrame) -> str:
    """The axis a figure compares (its colours, or its x-axis): width, or depth when a single width
    was run and depth is swept."""
    if table["width"].nunique() == 1 and table["depth"].nunique() > 1:
        return "depth"
    return "width"


def values(table: pd.DataFrame, axis: str = "width") -> list:
    """The values of ``axis`` in ``table``, sorted."""
    return sorted(table[axis].unique().tolist())


@dataclass(frozen=True)
class Hue:
    """The compared axis of a figure: its name, its values in order and their colours."""

    axis: str
    values: list
    colors: dict[str, tuple]

    @classmethod
    def of(cls, table: pd.DataFrame, axis: str | None = None) -> Hue:
        """The compared axis of ``table`` (`compared`, unless ``axis`` is given) and its colours."""
        axis = axis or compared(table)
        v = values(table, axis)
        return cls(axis, v, palette(v))

    def color(self, value) -> tuple:
        """The colour of one value."""
        return self.colors[fmt(value)]

    def index(self, column: pd.Series) -> np.ndarray:
        """Each row's position among the values (the x of a categorical axis)."""
        return column.map({v: k for k, v in enumerate(self.values)}).to_numpy(dtype=int)

    def legend(self, fig: Figure, size: str | None, lanes: Sequence[Lane] = ()) -> None:
        """One legend: the values in their colours, then (several sweeps) each sweep's line style
        under a heading of its own."""
        handles = [Line2D([], [], color=c, lw=2) for c in self.colors.values()]
        sweeps = lane_handles(lanes)
        heading = [Line2D([], [], color="none")] if sweeps else []
        legend(
            fig,
            [*handles, *heading, *sweeps],
            [*self.colors, *(["sweep"] if sweeps else []), *lane_labels(lanes)],
            axis_name(self.axis),
            size,
        )


def row_axes(table: pd.DataFrame, overlay: bool = True) -> list[str]:
    """The varying axes that go into the row facets: lr first, then the rest in grid order; the
    sweep last when sweeps are not overlaid."""
    rest = [a for a in varying_axes(table) if a not in ("depth", "width")]
    if SWEEP in table.columns:
        # An axis fixed within each sweep (one sweep's lr against another's) is part of what the
        # sweeps are, named by the sweep: not a facet that would keep them apart.
        within = table.groupby(SWEEP, sort=False)[rest].nunique() if rest else None
        rest = [a for a in rest if (within[a] > 1).any()]
    rest = sorted(rest, key=lambda a: a != "lr")
    if not overlay and SWEEP in table.columns and table[SWEEP].nunique() > 1:
        rest.append(SWEEP)
    return rest


@dataclass(frozen=True)
class Facets:
    """Columns = depths (a single column when depth is the compared axis: its panels are then titled
    by the one width), rows = combinations of the other varying axes."""

    depths: list
    row_axes: list[str]
    rows: list[tuple]
    fixed: str = ""

    @classmethod
    def of(cls, table: pd.DataFrame, hue: str = "width", overlay: bool = True) -> Facets:
        """The facets of ``table`` comparing ``hue``; without ``overlay`` the sweeps are rows."""
        axes = row_axes(table, overlay)
        if axes:
            keys = table[axes].drop_duplicates().sort_values(axes)
            rows = [tuple(r) for r in keys.itertuples(index=False)]
        else:
            rows = [()]
        if hue == "depth":
            return cls([None], axes, rows, label(["width"], [table["width"].iloc[0]]))
        return cls(sorted(table["depth"].unique().tolist()), axes, rows)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid."""
        return len(self.rows), len(self.depths)

    def title(self, row: tuple, depth) -> str:
        """A panel's title: "depth 2 | lr 0.1"."""
        parts = [self.fixed if depth is None else f"depth {fmt(depth)}"]
        if self.row_axes:
            parts.append(label(self.row_axes, row))
        return " | ".join(p for p in parts if p)

    def mask(self, table: pd.DataFrame, row: tuple) -> np.ndarray:
        """Which rows of ``table`` belong to the facet row ``row``."""
        mask = np.ones(len(table), dtype=bool)
        for a, v in zip(self.row_axes, row, strict=True):
            mask &= (table[a] == v).to_numpy()
        return mask

    def panels(self, table: pd.DataFrame) -> Iterator[tuple[int, int, str, pd.DataFrame]]:
        """(row index, column index, panel title, the panel's rows of ``table``)."""
        for i, row in enumerate(self.rows):
            mask = self.mask(table, row)
            for j, depth in enumerate(self.depths):
                cell = mask if depth is None else mask & (table["depth"] == depth).to_numpy()
                yield i, j, self.title(row, depth), table[cell]


# -- sweeps overlaid: one lane each ---------------------------------------------------------------------


@dataclass(frozen=True)
class Lane:
    """One sweep's marks in a panel it shares: its name (None for a lone study), its threshold,
    its line style and marker, and its place ``k`` of ``n`` side by side on a categorical axis."""

    name: str | None = None
    threshold: float | None = None
    k: int = 0
    n: int = 1

    @property
    def ls(self) -> str:
        """The sweep's line style."""
        return LINESTYLES[self.k % len(LINESTYLES)]

    @property
    def marker(self) -> str:
        """The sweep's marker."""
        return MARKERS[self.k % len(MARKERS)]

    def dodge(self, width: float = 0.8) -> float:
        """The offset of this lane's marks from their category's centre."""
        return (self.k - (self.n - 1) / 2) * width / self.n


def threshold_of(threshold: Threshold, name: str | None) -> float | None:
    """The threshold of the sweep ``name`` (the one threshold of a lone study)."""
    if isinstance(threshold, Mapping):
        return threshold.get(name)
    return threshold


def lanes(table: pd.DataFrame, threshold: Threshold = None) -> list[Lane]:
    """The sweeps of ``table`` (its ``sweep`` column, in order of appearance), or one lane."""
    if SWEEP not in table.columns:
        return [Lane(None, threshold_of(threshold, None))]
    names = list(dict.fromkeys(table[SWEEP]))
    return [Lane(n, threshold_of(threshold, n), k, len(names)) for k, n in enumerate(names)]


def split(table: pd.DataFrame, all_lanes: Sequence[Lane]) -> Iterator[tuple[Lane, pd.DataFrame]]:
    """Each lane's rows of ``table`` (every row for a lone study)."""
    for lane in all_lanes:
        yield lane, table if lane.name is None else table[table[SWEEP] == lane.name]


def lane_handles(all_lanes: Sequence[Lane]) -> list[Line2D]:
    """Legend entries naming the sweeps by their line style and marker (none for a lone study)."""
    return [
        Line2D([], [], color="0.3", ls=ln.ls, marker=ln.marker, ms=4, lw=1.5) for ln in all_lanes if ln.name
    ]


def lane_labels(all_lanes: Sequence[Lane]) -> list[str]:
    """The sweeps' names for `lane_handles`, each with its threshold where they differ."""
    named = [ln for ln in all_lanes if ln.name]
    differ = len({ln.threshold for ln in named}) > 1
    return [
        f"{ln.name} (threshold {ln.threshold:g})" if differ and ln.threshold is not None else ln.name
        for ln in named
    ]


def thresholds(table: pd.DataFrame, threshold: Threshold) -> np.ndarray | None:
    """Each row's threshold (NaN: none), or None when no row has one."""
    if threshold is None:
        return None
    if isinstance(threshold, Mapping):
        t = table[SWEEP].map(threshold).to_numpy(dtype=np.float64)
    else:
        t = np.full(len(table), float(threshold))
    return None if np.isnan(t).all() else t


def lowest(threshold: Threshold) -> float | None:
    """The lowest threshold of the sweeps (the one a shared loss axis must show)."""
    if isinstance(threshold, Mapping):
        return min((t for t in threshold.values() if t is not None), default=None)
    return threshold


def facet(
    table: pd.DataFrame,
    draw: Callable[[Axes, pd.DataFrame, Lane], object],
    *,
    threshold: Threshold = None,
    hue: str = "width",
    overlay: bool = True,
    size: str | None = None,
    panel_w: float = PANEL_W,
    panel_h: float = PANEL_H,
    legend: bool = True,
    **kwargs,
) -> tuple[Figure, np.ndarray, Facets]:
    """The faceting loop every faceted figure uses: the grid of `Facets` (sweeps overlaid, one
    `Lane` each), and ``draw(ax, rows, lane)`` for each panel and sweep; the panel titled."""
    facets = Facets.of(table, hue, overlay)
    all_lanes = lanes(table, threshold) if overlay else [Lane(None, None)]
    fig, axes = grid(*facets.shape, size=size, panel_w=panel_w, panel_h=panel_h, legend=legend, **kwargs)
    for i, j, name, cell in facets.panels(table):
        ax = axes[i, j]
        if overlay:
            for lane, part in split(cell, all_lanes):
                if len(part) or len(all_lanes) == 1:
                    draw(ax, part, lane)
        else:
            draw(ax, cell, Lane())  # the sweeps are rows: a panel holds one
        ax.set_title(name)
    return fig, axes, facets


# -- counts for the notes -----------------------------------------------------------------------------


def diverged(values) -> np.ndarray:
    """Which losses count as diverged in a figure: inf, NaN, or above `SHOWN_MAX` (on the way to
    inf; such a value would break a log axis's scale and ticks)."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(v) & (v <= SHOWN_MAX))


def finite_positive(values) -> np.ndarray:
    """Which values a log axis can show: not diverged, and above zero."""
    v = np.asarray(values, dtype=np.float64)
    return ~diverged(v) & (v > 0)


def seeds_note(runs: pd.DataFrame) -> str:
    """How many seeds each configuration has: "64 seeds per configuration" (or a range)."""
    keys = config_axes(runs) + ([SWEEP] if SWEEP in runs.columns else [])
    n = runs.groupby(keys).size()
    if not len(n):
        return ""
    if n.min() == n.max():
        return f"{n.iloc[0]} seeds per configuration"
    return f"{n.min()} to {n.max()} seeds per configuration"


def diverged_note(runs: pd.DataFrame, fate: str = "are not shown") -> str:
    """How many runs diverged and what the figure does with them ("" when none did)."""
    hidden = int(np.count_nonzero(diverged(runs["final_loss"])))
    if not hidden:
        return ""
    loss = runs["final_loss"].to_numpy(dtype=np.float64)
    why = (
        "non-finite loss"
        if not (np.isfinite(loss) & (loss > SHOWN_MAX)).any()
        else "loss inf, NaN or > 1e100"
    )
    return f"{hidden} of {len(runs)} runs diverged ({why}) and {fate}"


def strip(ax: Axes, x: np.ndarray, y: np.ndarray, **kwargs) -> None:
    """One point per seed at x, jittered sideways by up to 0.25 (less when sweeps share the
    category). The jitter comes from a fixed Generator, so regenerated figures are identical."""
    spread = kwargs.pop("jitter", 0.25)
    jitter = np.random.default_rng(0).uniform(-spread, spread, size=len(x))
    ax.scatter(np.asarray(x, dtype=np.float64) + jitter, y, lw=0, **kwargs)


# -- loss and epoch axes ---------------------------------------------------------------------------------


def ticks(log: bool, lo: float, hi: float, axis: str) -> tuple[np.ndarray, mticker.Formatter]:
    """Ticks in [lo, hi] and their formatter, few enough that the labels never overlap: at most
    5 (x) or 6 (y) on a linear axis; on a log axis its decades (every second or third when
    there are many), or 1, 2, 5 (y) or 1, 3 (x) in each decade when it spans less than two."""
    room = 5 if axis == "x" else 6
    if not log:
        found = mticker.MaxNLocator(nbins=room - 1, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        formatter = mticker.FuncFormatter(lambda v, _: f"{v:.6g}")
    elif math.log10(hi / lo) >= 2:
        k0, k1 = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
        found = 10.0 ** np.arange(k0, k1 + 1, max(1, math.ceil((k1 - k0 + 1) / room)))
        formatter = mticker.FuncFormatter(lambda v, _: f"$10^{{{round(math.log10(v))}}}$")
    else:
        subs = (1, 2, 5) if axis == "y" else (1, 3)
        k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        found = np.array([m * 10.0**k for k in range(k0, k1 + 1) for m in subs])
        formatter = mticker.FuncFormatter(lambda v, _: f"{v:g}")
    tol = 1e-9 * (hi - lo)
    return found[(found >= lo - tol) & (found <= hi + tol)], formatter


def floor_of(losses, threshold: float | None) -> float:
    """Where a log loss axis of these ``losses`` stops, at a decade: at the lowest loss, but no
    lower than the threshold / 100 (how far below it a run converged says nothing about where it
    ended), or without a threshold than the 1st percentile of the losses."""
    x = np.asarray(losses, dtype=np.float64).ravel()
    x = x[finite_positive(x)]
    if threshold is not None:
        clip = threshold / 100
    else:
        clip = float(np.percentile(x, 1)) if len(x) else 1e-3
    low = max(clip, float(x.min())) if len(x) else clip
    return 10.0 ** math.floor(math.log10(low) + 1e-9)


def clipped(losses, floor: float) -> bool:
    """Whether some of these losses are below ``floor`` (drawn on it)."""
    x = np.asarray(losses, dtype=np.float64).ravel()
    return bool((x[finite_positive(x)] < floor * (1 - 1e-9)).any())


def clipped_loss_axis(ax: Axes, floor: float, top: float, clip: bool = True) -> None:
    """A log loss axis from ``floor`` to ``top``; with ``clip`` (losses below the floor are drawn
    on it) its lowest tick is written "≤ floor"."""
    top = max(top, floor * 10)
    ax.set_yscale("log")
    ax.set_ylim(floor, top * 1.5)
    found, formatter = ticks(True, floor, top * 1.5, "y")
    names = [formatter(t) for t in found]
    if clip and len(found) and math.isclose(found[0], floor):
        names[0] = "≤" + names[0]
    ax.set_yticks(found, names)
    ax.yaxis.set_minor_locator(mticker.NullLocator())


def log_epochs(first: float, last: float) -> bool:
    """Whether an epoch axis is logarithmic: the epochs of interest, ``first`` (at least 1) to
    ``last``, span more than a decade."""
    return last >= 10 * max(first, 1.0)


def epoch_axis(ax: Axes, last: float, log: bool, first: float = 0.0) -> None:
    """An epoch axis to ``last``: linear from 0, or logarithmic (symlog: 0 on a short linear stretch
    before epoch 1, so that the start of training stays in view) from the decade below ``first``
    (the first epoch of interest; 0: from the start)."""
    if log:
        ax.set_xscale("symlog", linthresh=1.0, linscale=0.4)
        k0 = math.floor(math.log10(first) + 1e-9) if first >= 1 else -1
        k1 = math.floor(math.log10(last) + 1e-9)
        ax.set_xlim(0 if k0 < 0 else 10.0**k0, last * 1.05)
        found = [10.0**k for k in range(max(k0, 0), k1 + 1)]
        ax.set_xticks(
            [*([0] if k0 < 0 else []), *found], [*(["0"] if k0 < 0 else []), *(f"{t:g}" for t in found)]
        )
        ax.xaxis.set_minor_locator(mticker.NullLocator())
    else:
        ax.set_xlim(0, last)
    ax.set_xlabel("epoch (log)" if log else "epoch")
