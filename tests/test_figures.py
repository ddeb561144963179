"""Figures: built from small hand-made tables; every function returns a Figure with named, scaled
axes, something drawn, and widths in numeric order."""

import collections
import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from nnlab import analysis, figures

THRESHOLD = 1e-3
WIDTHS = (16, 2, 4)  # deliberately not sorted: the figures must sort them numerically
EPOCHS = 5


def make_runs(
    widths=WIDTHS, depths=(1, 2), lrs=(0.1,), seeds=3, batch_sizes=(1,), diverged=()
) -> pd.DataFrame:
    """A runs table: wider networks reach lower losses; every (depth, width) in ``diverged`` is all
    non-finite."""
    rows = []
    for depth, width, lr, batch, seed in itertools.product(depths, widths, lrs, batch_sizes, range(seeds)):
        loss = 10.0 ** (-width / 4) * (1 + seed) * depth
        bad = (depth, width) in diverged
        rows.append(
            dict(
                run_id=f"d{depth}w{width}lr{lr}b{batch}s{seed}",
                experiment="test",
                task="xor",
                depth=depth,
                width=width,
                hidden="tanh",
                output="tanh",
                bias=True,
                loss="half_squared",
                lr=lr,
                batch_size=batch,
                epochs=EPOCHS,
                seed=seed,
                n_params=depth * width * 3,
                final_loss=np.nan if bad else loss,
                best_loss=np.nan if bad else loss,
                epochs_to_threshold=EPOCHS - 1 if loss < THRESHOLD and not bad else pd.NA,
                final_grad_norm=np.nan if bad else 1e-4,
                diverged=bad,
                seconds=0.01,
            )
        )
    runs = pd.DataFrame(rows)
    runs["epochs_to_threshold"] = runs["epochs_to_threshold"].astype("Int64")
    return runs


def make_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Losses falling geometrically from 0.5 to each run's final loss (inf after a divergence)."""
    frames = []
    for run_id, final in zip(runs["run_id"], runs["final_loss"], strict=True):
        epoch = np.arange(EPOCHS + 1)
        end = final if np.isfinite(final) else np.inf
        loss = 0.5 * (end / 0.5) ** (epoch / EPOCHS) if np.isfinite(end) else np.r_[0.5, [np.inf] * EPOCHS]
        frames.append(pd.DataFrame({"run_id": run_id, "epoch": epoch, "loss": loss}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def data_axes(fig: Figure) -> list:
    """The panels (colour bars and hidden, unused grid cells excluded)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_visible()]


def with_losses(runs: pd.DataFrame, losses) -> pd.DataFrame:
    """``runs`` with these final losses (and the epochs to threshold that go with them)."""
    runs = runs.copy()
    runs["final_loss"] = np.asarray(losses, dtype=np.float64)
    hit = [EPOCHS - 1 if loss < THRESHOLD else pd.NA for loss in runs["final_loss"]]
    runs["epochs_to_threshold"] = pd.array(hit, dtype="Int64")
    return runs


def overlaps(fig: Figure, texts) -> list[tuple[str, str]]:
    """The pairs of these (visible, non-empty) texts whose boxes overlap once the figure is drawn."""
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    shown = [t for t in texts if t.get_visible() and t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in shown]
    return [
        (shown[i].get_text(), shown[j].get_text())
        for i, j in itertools.combinations(range(len(shown)), 2)
        if boxes[i].overlaps(boxes[j])
    ]


def tick_labels(ax, axis: str = "x") -> list[str]:
    """The tick labels as the formatter writes them (shared axes hide their own text labels)."""
    axis = ax.xaxis if axis == "x" else ax.yaxis
    return [t for t in axis.get_major_formatter().format_ticks(axis.get_majorticklocs()) if t]


def suptitle(fig: Figure) -> str:
    """The title: one line."""
    assert "\n" not in fig.get_suptitle()
    return fig.get_suptitle()


def notes(fig: Figure) -> str:
    """What the figure adds to its caption about these data."""
    return " ".join(figures.notes(fig))


def legend_labels(fig: Figure) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def check_labels(fig: Figure, panel_titles: bool = True) -> None:
    assert isinstance(fig, Figure)
    assert fig.get_suptitle()
    for ax in data_axes(fig) if panel_titles else ():
        assert ax.get_title()
    assert any(ax.get_xlabel() for ax in fig.axes)
    assert any(ax.get_ylabel() for ax in fig.axes)


def test_spread_facets_log_scale_and_numeric_width_order():
    runs = make_runs(lrs=(0.1, 0.3))
    fig = figures.spread(runs, THRESHOLD)
    check_labels(fig)
    axes = data_axes(fig)
    assert len(axes) == 4  # 2 lr rows x 2 depth columns
    titles = {ax.get_title() for ax in axes}
    assert titles == {"depth 1 | lr 0.1", "depth 2 | lr 0.1", "depth 1 | lr 0.3", "depth 2 | lr 0.3"}
    for ax in axes:
        assert ax.get_yscale() == "log"
        assert tick_labels(ax) == ["2", "4", "16"]
        assert ax.collections  # the seeds' points
        assert ax.patches or ax.lines  # the boxes
        assert any(line.get_linestyle() == "--" for line in ax.lines)  # the threshold
    assert axes[-1].get_xlabel() == figures.WIDTH_LABEL
    assert "log" in axes[0].get_ylabel()
    assert suptitle(fig) == "Final loss per width"


def test_spread_counts_diverged_runs_and_folds_other_axes_into_rows():
    runs = make_runs(depths=(1,), batch_sizes=(1, 4), diverged={(1, 2)})
    fig = figures.spread(runs)
    axes = data_axes(fig)
    assert len(axes) == 2
    assert {ax.get_title() for ax in axes} == {"depth 1 | batch size 1", "depth 1 | batch size 4"}
    assert "6 of 18 runs diverged" in notes(fig)
    assert any("diverged" in t.get_text() for t in axes[0].texts)
    assert not any(line.get_linestyle() == "--" for ax in axes for line in ax.lines)  # no threshold


def test_ecdf_log_x_and_width_legend_in_order():
    runs = make_runs(diverged={(2, 16)})
    fig = figures.ecdf(runs, THRESHOLD)
    check_labels(fig)
    axes = data_axes(fig)
    assert len(axes) == 2
    for ax in axes:
        assert ax.get_xscale() == "log"
        assert ax.lines
    assert legend_labels(fig)[:3] == ["2", "4", "16"]
    assert "never reaching" in notes(fig)
    # Fractions are of all seeds: every curve ends at 1 (no divergence at depth 1).
    assert max(line.get_ydata()[-1] for line in axes[0].lines if len(line.get_ydata()) > 2) == 1.0


def test_convergence_median_and_band_per_width():
    runs = make_runs(diverged={(2, 4)})
    curves = make_curves(runs)
    fig = figures.convergence(runs, curves, THRESHOLD)
    check_labels(fig)
    axes = data_axes(fig)
    assert len(axes) == 2
    for ax in axes:
        assert ax.get_yscale() == "log"
        assert sum(isinstance(c, PolyCollection) for c in ax.collections) >= 2  # the bands
    assert legend_labels(fig) == ["2", "4", "16"]
    assert axes[0].get_xlabel() == "epoch"
    # Depth 1, width 2: the median falls from 0.5 to the median final loss over seeds.
    median = [line for line in axes[0].lines if line.get_linestyle() == "-"][0].get_ydata()
    assert median[0] == pytest.approx(0.5)
    assert median[-1] == pytest.approx(np.median(10.0 ** (-2 / 4) * np.arange(1, 4)))
    # The caption says how many seeds a line summarizes.
    assert "3 seeds per configuration" in notes(fig)
    # All seeds of depth 2, width 4 diverged: its median line is NaN after epoch 0.
    diverged = axes[1].lines[1].get_ydata()
    assert np.isfinite(diverged[0]) and np.isnan(diverged[1:]).all()


def test_curve_quantiles_ignores_curves_of_unknown_runs():
    runs = make_runs(widths=(2,), depths=(1,), seeds=2)
    curves = make_curves(runs)
    stray = curves.assign(run_id="not-a-run", loss=1e9)
    stats = figures.curve_quantiles(runs, pd.concat([curves, stray]), ["depth", "width"])
    assert len(stats) == EPOCHS + 1
    assert stats["q75"].max() < 1


def test_curve_quantiles_equal_pandas_quantiles_with_missing_epochs_and_divergence(rng):
    """The dense block's quantiles against pandas' groupby quantiles (an independent computation),
    on curves with epochs missing (thinned) and non-finite losses (counted as the worst)."""
    runs = make_runs(widths=(2, 4), depths=(1,), seeds=7)
    curves = make_curves(runs)
    curves["loss"] *= rng.uniform(0.5, 2.0, len(curves))
    curves.loc[rng.random(len(curves)) < 0.05, "loss"] = np.inf
    curves = curves[rng.random(len(curves)) > 0.2].reset_index(drop=True)
    stats = figures.curve_quantiles(runs, curves, ["depth", "width"])
    table = curves.merge(runs[["run_id", "depth", "width"]], on="run_id")
    finite = np.isfinite(table["loss"])
    table["loss"] = table["loss"].where(finite, np.finfo(np.float64).max / 4)
    want = table.groupby(["depth", "width", "epoch"])["loss"].quantile([0.25, 0.5, 0.75]).unstack()
    want = want.where(want <= curves.loc[np.isfinite(curves["loss"]), "loss"].max())
    got = stats.set_index(["depth", "width", "epoch"])[["q25", "median", "q75"]]
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)


def test_figures_read_only_the_curves_they_draw(monkeypatch):
    """With a reader for curves, convergence asks for each configuration's first QUANTILE_SEEDS seeds
    and seed_curves for the seeds it draws, and they draw what the whole table gives."""
    monkeypatch.setattr(figures.losses, "QUANTILE_SEEDS", 2)
    runs = make_runs(widths=(2, 4, 16), depths=(1,), seeds=6)
    curves = make_curves(runs)
    asked = []

    def reader(ids):
        asked.append(set(ids))
        return curves[curves["run_id"].isin(ids)].reset_index(drop=True)

    streamed = figures.convergence(runs, reader, THRESHOLD)
    assert asked[-1] == set(runs.loc[runs["seed"] < 2, "run_id"])
    whole = figures.convergence(runs, curves, THRESHOLD)
    lines = [[line.get_ydata() for line in ax.lines] for ax in (streamed.axes[0], whole.axes[0])]
    for a, b in zip(*lines, strict=True):
        np.testing.assert_array_equal(a, b)
    assert "first 2 seeds" in notes(streamed)
    figures.seed_curves(runs, reader, THRESHOLD, cap=3)
    assert len(asked[-1]) == 3 * 3 and asked[-1] <= set(runs["run_id"])


def test_capacity_success_and_ert_panels():
    runs = make_runs(lrs=(0.1, 0.3), diverged={(2, 2)})
    summary = analysis.summarize(runs, THRESHOLD)
    assert np.isinf(summary["ert"]).any()
    fig = figures.capacity(summary)
    check_labels(fig, panel_titles=False)
    ax_s, ax_e = data_axes(fig)
    assert ax_e.get_yscale() == "log"
    assert ax_s.get_xscale() == ax_e.get_xscale() == "log"
    assert tick_labels(ax_s) == tick_labels(ax_e) == ["2", "4", "16"]
    assert "success" in ax_s.get_ylabel() and "ERT" in ax_e.get_ylabel()
    assert ax_s.collections  # the Wilson error bars
    assert any(line.get_marker() == "^" for line in ax_e.lines)  # an infinite ERT, pinned on top
    assert "∞" in notes(fig)
    assert legend_labels(fig) == ["depth 1, lr 0.1", "depth 1, lr 0.3", "depth 2, lr 0.1", "depth 2, lr 0.3"]


def test_capacity_when_no_configuration_succeeds():
    runs = make_runs(widths=(1,), depths=(1,), seeds=1)  # loss 10^-0.25: never below the threshold
    summary = analysis.summarize(runs, THRESHOLD)
    fig = figures.capacity(summary)
    (ax_s,) = data_axes(fig)  # every ERT is infinite: no ERT panel
    assert tick_labels(ax_s) == ["1"] and "success" in ax_s.get_ylabel()
    assert "no ERT panel" in notes(fig)


def test_heatmap_one_panel_per_lr_with_percentages():
    runs = make_runs(lrs=(0.1, 0.3), diverged={(2, 16)})
    fig = figures.heatmap(analysis.summarize(runs, THRESHOLD))
    check_labels(fig)
    axes = data_axes(fig)
    assert len(axes) == 2 and len(fig.axes) == 3  # two panels and a shared colour bar
    assert [ax.get_title() for ax in axes] == ["lr 0.1", "lr 0.3"]
    for ax in axes:
        assert tick_labels(ax) == ["2", "4", "16"]
        assert tick_labels(axes[0], "y") == ["1", "2"]
        texts = [t.get_text() for t in ax.texts]
        assert len(texts) == 6 and all(t.endswith("%") for t in texts)
        assert "0%" in texts  # the diverged configuration


def test_chain_gradients_points_and_median():
    X = np.linspace(-1, 1, 8)[:, None]
    table = analysis.chain_gradients(range(1, 5), range(6), X, 0.5 * X)
    fig = figures.chain_gradients(table)
    check_labels(fig, panel_titles=False)
    (ax,) = data_axes(fig)
    assert ax.get_yscale() == "log"
    assert ax.collections and ax.lines
    assert tick_labels(ax) == ["1", "2", "3", "4"]
    assert "(1 − fᵢ²)·wᵢ₊₁" in notes(fig)


def test_single_width_single_seed():
    runs = make_runs(widths=(8,), depths=(1,), seeds=1)
    summary = analysis.summarize(runs, THRESHOLD)
    figs = figures.figures_for(runs, make_curves(runs), summary, THRESHOLD)
    assert list(figs) == ["spread", "ecdf", "convergence", "seed_curves", "capacity"]  # no seed solved
    assert tick_labels(data_axes(figs["spread"])[0]) == ["8"]
    assert legend_labels(figs["ecdf"]) == ["8"]


def test_all_runs_diverged():
    runs = make_runs(widths=(2, 4), depths=(1,), seeds=2, diverged={(1, 2), (1, 4)})
    summary = analysis.summarize(runs, THRESHOLD)
    figs = figures.figures_for(runs, make_curves(runs), summary, THRESHOLD)
    assert list(figs) == ["convergence", "seed_curves", "capacity"]  # no final loss left to spread
    assert "4 of 4 runs diverged" in notes(figs["convergence"])
    texts = [t.get_text() for ax in figs["convergence"].axes for t in ax.texts]
    assert "median diverged: width 2, 4" in texts
    for fig in figs.values():
        FigureCanvasAgg(fig).draw()  # renders without error


def test_a_loss_exploding_towards_inf_counts_as_diverged():
    """A run stopped at 1e290 (on its way to inf) would break log ticks: drawn as diverged."""
    runs = make_runs(widths=(2, 4), depths=(1,), seeds=3)
    runs.loc[0, "final_loss"] = 1e290
    curves = make_curves(runs)
    curves.loc[curves["run_id"] == runs.loc[0, "run_id"], "loss"] = np.logspace(0, 290, EPOCHS + 1)
    summary = analysis.summarize(runs, THRESHOLD)
    figs = figures.figures_for(runs, curves, summary, THRESHOLD)
    assert "1 of 6 runs diverged (loss inf, NaN or > 1e100)" in notes(figs["spread"])
    for fig in figs.values():
        FigureCanvasAgg(fig).draw()


def test_figures_for_keys_and_no_pyplot_figures():
    runs = make_runs(depths=(1,))
    summary = analysis.summarize(runs, THRESHOLD)
    # Without curves: solved from the stored epochs to threshold, no loss curves.
    assert list(figures.figures_for(runs, None, summary, THRESHOLD)) == [
        "spread",
        "ecdf",
        "solved",
        "survival",
        "capacity",
    ]
    runs = make_runs(depths=(1, 2))
    summary = analysis.summarize(runs, THRESHOLD)
    X = np.linspace(-1, 1, 4)[:, None]
    chain = analysis.chain_gradients(range(1, 3), range(2), X, 0.5 * X)
    figs = figures.figures_for(runs, make_curves(runs), summary, THRESHOLD, chain=chain)
    assert list(figs) == [
        "spread",
        "ecdf",
        "convergence",
        "seed_curves",
        "solved",
        "survival",
        "capacity",
        "heatmap",
        "chain_gradients",
    ]
    assert all(isinstance(f, Figure) for f in figs.values())
    assert plt.get_fignums() == []  # nothing left open in pyplot's registry


# -- spread and ecdf: the solved seeds in one bar, the others as points ------------------------------

# Width 2: three seeds solved at very different depths (1e-12 to 1e-5) and two failures; width 4: all
# five solved. Drawn one by one, the solved seeds would spread over seven decades.
LOSSES = [1e-12, 1e-8, 1e-5, 0.2, 0.3, 1e-9, 1e-10, 1e-7, 1e-6, 1e-4]


def two_widths(losses=LOSSES) -> pd.DataFrame:
    return with_losses(make_runs(widths=(2, 4), depths=(1,), seeds=len(losses) // 2), losses)


def test_spread_counts_the_solved_seeds_in_a_bar_and_draws_only_failures():
    fig = figures.spread(two_widths(), THRESHOLD)
    check_labels(fig)
    (ax,) = data_axes(fig)
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert sorted(points[:, 1]) == [0.2, 0.3]  # only the failures are points
    texts = [t.get_text() for t in ax.texts]
    assert {"3/5", "5/5"} <= set(texts) and tick_labels(ax, "y")[0] == f"< {THRESHOLD:g}"  # the bar's tick
    # 0.2 and 0.3 span less than a decade: a linear axis, on which the threshold does not fit.
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == figures.LOSS_LABEL + " (linear)"
    lo, hi = ax.get_ylim()
    assert THRESHOLD < lo < 0.2 and 0.3 < hi
    assert not any(line.get_linestyle() == "--" for line in ax.lines)
    assert (
        "threshold 0.001 is below the losses shown" in notes(fig) and "linear loss axis" in notes(fig).lower()
    )
    # No other tick beside the bar: every tick is a loss shown.
    assert all(float(t) >= 0.2 for t in tick_labels(ax, "y")[1:])


def test_spread_goes_log_over_a_decade_and_is_left_out_when_every_seed_solved():
    fig = figures.spread(two_widths([*LOSSES[:3], 2e-3, 0.3, *LOSSES[5:]]), THRESHOLD)
    (ax,) = data_axes(fig)
    assert ax.get_yscale() == "log" and "(log)" in ax.get_ylabel()
    assert any(line.get_linestyle() == "--" for line in ax.lines)  # the threshold is on the axis
    solved = two_widths([loss if loss < THRESHOLD else 1e-5 for loss in LOSSES])
    assert figures.spread(solved, THRESHOLD) is None and figures.ecdf(solved, THRESHOLD) is None
    summary = analysis.summarize(solved, THRESHOLD)
    assert not {"spread", "ecdf"} & set(figures.figures_for(solved, None, summary, THRESHOLD))


def test_ecdf_starts_each_curve_at_its_solved_share():
    fig = figures.ecdf(two_widths(), THRESHOLD)
    check_labels(fig)
    (ax,) = data_axes(fig)
    assert ax.get_xscale() == "linear"
    steps = [line for line in ax.lines if line.get_drawstyle() == "steps-post"]
    points = [line for line in ax.lines if line.get_linestyle() == "None"]
    assert [s.get_ydata()[0] for s in steps] == [0.6, 1.0]  # the shares solved of widths 2 and 4
    assert steps[0].get_ydata()[-1] == 1.0
    assert list(points[0].get_xdata()) == [0.2, 0.3] and len(points[1].get_xdata()) == 0
    bars = sorted(p.get_height() for p in ax.patches)
    assert bars[:2] == [0.6, 1.0]  # the bars, beside the grey ground (height 1)
    assert tick_labels(ax)[0] == f"< {THRESHOLD:g}"


@pytest.mark.parametrize(
    ("low", "high", "scale"),
    [
        (0.0345, 0.0352, "linear"),  # 2% apart
        (2e-3, 1.5e-2, "linear"),  # under a decade, the threshold below it
        (1.1e-3, 2e-2, "log"),  # 1.3 decades
        (1e-3, 5e2, "log"),  # 5.7 decades
    ],
)
def test_loss_tick_labels_never_overlap(low, high, scale):
    losses = np.r_[np.geomspace(low, high, 7), 1e-6, np.geomspace(low, high, 7)[::-1], 1e-7]
    runs = two_widths(losses)
    ecdf = figures.ecdf(runs, THRESHOLD)
    (ax,) = data_axes(ecdf)
    assert ax.get_xscale() == scale
    labels = ax.xaxis.get_ticklabels()
    assert len([t for t in labels if t.get_text()]) >= 2 or len(tick_labels(ax)) >= 2
    assert overlaps(ecdf, [*labels, *ax.texts]) == []  # the bar's "< 0.001" included
    spread = figures.spread(runs, THRESHOLD)
    (ax,) = data_axes(spread)
    assert ax.get_yscale() == scale
    assert overlaps(spread, [*ax.yaxis.get_ticklabels(), *ax.texts]) == []


# -- solved against epoch, and each seed's curve ------------------------------------------------------


def test_solved_counts_a_seed_from_its_first_hit_with_a_wilson_band():
    runs = make_runs(widths=(2, 16), depths=(1,), seeds=4)  # width 2 never solves, width 16 always
    curves = make_curves(runs)
    # Seed 0 of width 2 dips below the threshold at epoch 2 and comes back up: it still counts.
    dip = runs.loc[(runs["width"] == 2) & (runs["seed"] == 0), "run_id"].item()
    curves.loc[(curves["run_id"] == dip) & (curves["epoch"] == 2), "loss"] = THRESHOLD / 2
    fig = figures.solved(runs, curves, THRESHOLD)
    check_labels(fig)
    (ax,) = data_axes(fig)
    lines = [line for line in ax.lines if line.get_drawstyle() == "steps-post"]
    assert list(lines[0].get_ydata()) == [0, 0, 0.25, 0.25, 0.25, 0.25]
    summary = analysis.summarize(runs, THRESHOLD, curves=curves)
    assert [line.get_ydata()[-1] for line in lines] == list(summary["success"])  # hitting-based
    assert legend_labels(fig) == ["2", "16"] and ax.get_xlabel() == "epoch"
    # The Wilson interval of 1 of 4 as the band of width 2, from its first hit on.
    band = [c for c in ax.collections if isinstance(c, PolyCollection)][0].get_paths()[0].vertices
    lo, hi = analysis.wilson(1, 4)
    assert band[:, 1].max() == pytest.approx(hi) and band[:, 1].min() == pytest.approx(lo)
    assert band[:, 0].min() == 2
    # Without curves, from the stored epochs to threshold; nothing to draw without a threshold or a hit.
    assert figures.solved(runs, None, THRESHOLD) is not None
    assert figures.solved(runs, curves, None) is None
    assert figures.solved(runs[runs["width"] == 2], None, THRESHOLD) is None


def seed_curves_tables():
    """Width 2: 40 seeds that never reach the threshold, seed 0 diverged at epoch 1; width 16: 9
    solved, seed 20 reached the threshold at epoch 3 and ended above, 30 never reached it."""
    runs = make_runs(widths=(2, 16), depths=(1,), seeds=40)
    runs.loc[(runs["width"] == 2) & (runs["seed"] == 0), "final_loss"] = np.inf
    curves = make_curves(runs)
    left = runs.loc[(runs["width"] == 16) & (runs["seed"] == 20), "run_id"].item()
    curves.loc[(curves["run_id"] == left) & (curves["epoch"] == 3), "loss"] = THRESHOLD / 2
    return runs, curves


def test_seed_curves_colour_each_seed_by_outcome_in_a_fixed_sample():
    runs, curves = seed_curves_tables()
    fig = figures.seed_curves(runs, curves, THRESHOLD)
    check_labels(fig)
    axes = data_axes(fig)
    assert [ax.get_title() for ax in axes] == ["depth 1, width 2", "depth 1, width 16"]
    palette = sns.color_palette(figures.PALETTE, 10)

    def drawn(ax):
        out = collections.Counter()
        for c in ax.collections:
            if isinstance(c, LineCollection):
                kind = [
                    k
                    for k, (i, _) in figures.OUTCOMES.items()
                    if np.allclose(c.get_color()[0][:3], palette[i])
                ]
                out[kind[0]] += len(c.get_segments())
        return out

    # 30 of 40 seeds drawn, the outcomes in proportion (largest remainders), each at least once.
    assert drawn(axes[1]) == {"solved": 7, "left": 1, "never": 22}
    assert sum(drawn(axes[0]).values()) == 30 and drawn(axes[0])["diverged"] == 1
    assert any(line.get_marker() == "x" for line in axes[0].lines)  # where the diverged seed left
    texts = [t.get_text() for t in axes[1].texts]
    assert texts == ["of 40 seeds:", "9 solved", "1 reached, ended above", "30 never reached"]
    assert legend_labels(fig) == [text for _, text in figures.OUTCOMES.values()]
    assert "At most 30 seeds drawn per configuration" in notes(fig)
    assert axes[0].get_yscale() == "log" and axes[0].get_ylim()[0] >= THRESHOLD / 100 / 1.5
    # The same sample every time.
    again = data_axes(figures.seed_curves(runs, curves, THRESHOLD))[1]
    segments = [s for c in axes[1].collections if isinstance(c, LineCollection) for s in c.get_segments()]
    same = [s for c in again.collections if isinstance(c, LineCollection) for s in c.get_segments()]
    assert all(np.array_equal(a, b) for a, b in zip(segments, same, strict=True))
    assert figures.seed_curves(runs, None, THRESHOLD) is None
    assert figures.seed_curves(runs, curves, None) is None


def test_sample_keeps_outcomes_in_proportion_and_each_at_least_once():
    outcome = np.array(["solved"] * 95 + ["never"] * 4 + ["diverged"])
    pick = figures.sample(outcome, 30, np.random.default_rng(0))
    assert len(set(pick)) == 30 and list(pick) == sorted(pick)
    assert collections.Counter(outcome[pick]) == {"solved": 28, "never": 1, "diverged": 1}
    assert list(figures.sample(outcome[:20], 30, np.random.default_rng(0))) == list(range(20))


# -- capacity: intervals, infinite ends, panels with something to say ----------------------------------


def hand_summary(success, ert, ert_lo, ert_hi, n=20) -> pd.DataFrame:
    """A summary of one depth and widths 2, 4, 8 with these rates and ERTs."""
    k = np.round(np.asarray(success) * n)
    lo, hi = analysis.wilson(k, n)
    return pd.DataFrame(
        dict(depth=1, width=[2, 4, 8], runs=n, successes=k, success=success, success_lo=lo, success_hi=hi)
        | dict(ert=ert, ert_lo=ert_lo, ert_hi=ert_hi, epochs=100)
    )


def test_capacity_draws_the_ert_interval_and_its_infinite_ends():
    inf = np.inf
    summary = hand_summary([0.0, 0.05, 0.9], [inf, 1500.0, 60.0], [inf, 700.0, 40.0], [inf, inf, 90.0])
    fig = figures.capacity(summary)
    ax_s, ax_e = data_axes(fig)
    segments = [s for c in ax_e.collections if isinstance(c, LineCollection) for s in c.get_segments()]
    spans = {tuple(np.round(s[:, 1], 6)) for s in segments}
    assert (40.0, 90.0) in spans and (700.0, 1500.0) in spans  # the bootstrap intervals
    arrows = [t for t in ax_e.texts if isinstance(t, Annotation)]
    assert len(arrows) == 1 and arrows[0].xyann[1] == 1500.0  # width 4: upper end infinite
    assert any(line.get_marker() == "^" for line in ax_e.lines)  # width 2: no seed solved it
    assert tick_labels(ax_e, "y")[-1] == "∞"
    assert [c.has_yerr for c in ax_s.containers] == [True]  # the Wilson bars


def test_capacity_leaves_out_the_success_panel_when_every_seed_solved():
    summary = hand_summary([1.0, 1.0, 1.0], [300.0, 90.0, 50.0], [200.0, 70.0, 40.0], [500.0, 120.0, 60.0])
    fig = figures.capacity(summary)
    (ax,) = data_axes(fig)
    assert "ERT" in ax.get_ylabel() and "∞" not in tick_labels(ax, "y")
    assert "no success-rate panel" in notes(fig)
    assert suptitle(fig) == "ERT against width"


# -- one width, several depths (the chain study): depth is compared ------------------------------------


def test_one_width_and_several_depths_compare_the_depths():
    runs = make_runs(widths=(1,), depths=(1, 2, 3), seeds=4)
    runs = with_losses(runs, np.where(runs["seed"] < 4 - runs["depth"], 1e-4, runs["final_loss"]))
    summary = analysis.summarize(runs, THRESHOLD)
    figs = figures.figures_for(runs, make_curves(runs), summary, THRESHOLD)
    assert list(figs) == ["spread", "ecdf", "convergence", "seed_curves", "solved", "capacity"]  # no heatmap
    for stem in ("spread", "ecdf", "convergence", "solved"):
        (ax,) = data_axes(figs[stem])  # one panel, named by its width, not one per depth
        assert ax.get_title() == "width 1", stem
        assert "per depth" in suptitle(figs[stem]) or "each depth" in suptitle(figs[stem]), stem
    assert tick_labels(data_axes(figs["spread"])[0]) == ["1", "2", "3"]
    assert data_axes(figs["spread"])[0].get_xlabel() == figures.DEPTH_LABEL
    assert figs["ecdf"].legends[0].get_title().get_text() == "depth"
    assert legend_labels(figs["ecdf"]) == ["1", "2", "3"]
    for ax in data_axes(figs["capacity"]):
        assert ax.get_xscale() == "linear" and tick_labels(ax) == ["1", "2", "3"]
        assert ax.get_xlabel() == figures.DEPTH_LABEL
    assert legend_labels(figs["capacity"]) == ["width 1"]
    assert [ax.get_title() for ax in data_axes(figs["seed_curves"])] == ["depth 1", "depth 2", "depth 3"]


def test_heatmap_only_when_the_success_rate_varies_over_depth_and_width():
    runs = make_runs(widths=(1, 2), depths=(1, 2), seeds=2)  # never below the threshold
    summary = analysis.summarize(runs, THRESHOLD)
    figs = figures.figures_for(runs, None, summary, THRESHOLD)
    assert list(figs) == ["spread", "ecdf", "capacity"]  # nobody solved: no heatmap, solved or ERT
    runs = make_runs(widths=(2, 16), depths=(1, 2), seeds=2)
    assert "heatmap" in figures.figures_for(runs, None, analysis.summarize(runs, THRESHOLD), THRESHOLD)


def test_solved_seeds_are_points_where_their_losses_lie_within_a_decade():
    """A task whose losses cannot reach 0 (digits): every seed below the threshold, within a factor
    2 of each other. Their spread is the point: figures_for draws every seed (a box and points), no
    bar; with solved losses over many decades the solved seeds are one bar."""
    runs = make_runs(widths=(2, 4), depths=(1,), seeds=4).assign(
        final_loss=lambda t: 0.04 + 0.001 * t["seed"]
    )
    summary = analysis.summarize(runs, 0.05)
    figs = figures.figures_for(runs, None, summary, 0.05)
    points = sum(len(c.get_offsets()) for ax in figs["spread"].axes for c in ax.collections)
    assert points == len(runs) and "box plot" in notes(figs["spread"])
    deep = make_runs(widths=(4, 16, 32), depths=(1,), seeds=4)  # solved losses from 4e-4 to 1e-8
    figs = figures.figures_for(deep, None, analysis.summarize(deep, THRESHOLD), THRESHOLD)
    assert "box plot" not in notes(figs["spread"])


def test_capacity_at_each_architectures_best_setting_when_lr_is_swept():
    runs = make_runs(widths=(2, 4), depths=(1,), lrs=(0.1, 0.3), seeds=3)
    summary = analysis.summarize(runs, THRESHOLD)
    figs = figures.figures_for(runs, None, summary, THRESHOLD)
    assert "capacity_best" in figs and "best setting of lr" in notes(figs["capacity_best"])
    single = runs[runs["lr"] == 0.1]
    assert "capacity_best" not in figures.figures_for(
        single, None, analysis.summarize(single, THRESHOLD), THRESHOLD
    )


# -- axes-level panels, one-line titles, palettes, paper sizes -------------------------------------------


def test_every_panel_draws_into_the_axes_it_is_given():
    runs = make_runs(depths=(1,), seeds=4)
    curves = make_curves(runs)
    summary = analysis.summarize(runs, THRESHOLD)
    X = np.linspace(-1, 1, 8)[:, None]
    chain = analysis.chain_gradients(range(1, 4), range(4), X, 0.5 * X)
    one = runs[runs["width"] == 2]
    panels = [
        (figures.spread_panel, (runs, THRESHOLD)),
        (figures.ecdf_panel, (runs, THRESHOLD)),
        (figures.convergence_panel, (figures.curve_quantiles(runs, curves, ["depth", "width"]), THRESHOLD)),
        (figures.solved_panel, (runs, curves, THRESHOLD)),
        (figures.seed_curves_panel, (one, curves, THRESHOLD)),
        (figures.success_panel, (summary,)),
        (figures.ert_panel, (summary,)),
        (figures.heatmap_panel, (summary,)),
        (figures.chain_gradients_panel, (chain,)),
    ]
    mine = Figure()
    grid = mine.subplots(3, 3).ravel()
    for (panel, args), ax in zip(panels, grid, strict=True):
        assert panel(*args, ax=ax) is ax, panel.__name__
        assert ax.lines or ax.collections or ax.patches, panel.__name__
        assert ax.get_xlabel() and ax.get_ylabel(), panel.__name__
    assert len(mine.axes) == 9  # nothing added to the caller's figure
    alone = figures.spread_panel(runs, THRESHOLD)  # without ax: a new figure's one Axes
    assert isinstance(alone.figure, Figure) and alone.figure.axes == [alone]
    assert plt.get_fignums() == []


def test_titles_are_one_line_and_ordered_axes_take_a_sequential_palette():
    runs = make_runs(depths=(1,), widths=(2, 4, 16), lrs=(0.01, 0.1, 1.0), seeds=3)
    summary = analysis.summarize(runs, THRESHOLD)
    figs = figures.figures_for(runs, make_curves(runs), summary, THRESHOLD)
    for stem, fig in figs.items():
        assert fig.get_suptitle() and "\n" not in fig.get_suptitle(), stem
    # capacity: one colour per learning rate, dark to light as lr grows (viridis), not one blue.
    lines = [(line.get_label(), line.get_color()) for line in figs["capacity"].legends[0].get_lines()]
    colors = [np.asarray(to_rgb(c)) for _, c in lines]
    assert len({tuple(c) for c in colors}) == 3
    luminance = [c @ [0.2126, 0.7152, 0.0722] for c in colors]
    assert luminance == sorted(luminance)  # lr 0.01, 0.1, 1 in order
    assert colors[0] == pytest.approx(to_rgb(plt.get_cmap(figures.SEQUENTIAL)(0.0)))
    # Widths too: the ECDF's legend runs through the same palette.
    ecdf = [np.asarray(to_rgb(line.get_color())) for line in figs["ecdf"].legends[0].get_lines()]
    assert ecdf[0] == pytest.approx(colors[0]) and len({tuple(c) for c in ecdf}) == 3


def test_paper_sizes_and_seed_curves_without_a_lone_panel():
    runs = make_runs(depths=(1,), widths=(1, 2, 3, 4, 6, 10, 20), seeds=2)
    summary = analysis.summarize(runs, THRESHOLD)
    curves = make_curves(runs)
    for size, inches in figures.SIZES.items():
        figs = figures.figures_for(runs, curves, summary, THRESHOLD, size=size)
        assert {stem: fig.get_figwidth() for stem, fig in figs.items()} == dict.fromkeys(figs, inches)
    with pytest.raises(ValueError, match="size: expected one of single, double"):
        figures.spread(runs, THRESHOLD, size="a4")
    # Seven widths: two rows of four and three, not five and a lone two.
    fig = figures.seed_curves(runs, curves, THRESHOLD)
    rows = collections.Counter(ax.get_subplotspec().rowspan.start for ax in data_axes(fig))
    assert sorted(rows.values()) == [3, 4]


def test_loss_curves_stop_two_decades_below_the_threshold_and_epochs_go_log():
    runs = make_runs(widths=(2, 32), depths=(1,), seeds=3)  # width 32 ends near 1e-8
    curves = make_curves(runs)
    curves = curves.assign(epoch=curves["epoch"] * 100)  # 0..500 epochs: more than a decade
    runs = runs.assign(epochs=EPOCHS * 100)
    fig = figures.convergence(runs, curves, THRESHOLD)
    (ax,) = data_axes(fig)
    assert ax.get_ylim()[0] == pytest.approx(THRESHOLD / 100)  # not down to 1e-4 x 16 decades
    assert tick_labels(ax, "y")[0].startswith("≤")
    assert ax.get_xscale() == "symlog" and ax.get_xlabel() == "epoch (log)"
    assert "Losses below 1e-05 drawn at 1e-05" in notes(fig)
    # Losses that stay above the threshold / 100: the axis stops at their decade, unmarked.
    shallow = runs[runs["width"] == 2]
    (ax,) = data_axes(figures.convergence(shallow, curves, THRESHOLD))
    assert ax.get_ylim()[0] == pytest.approx(0.1) and not tick_labels(ax, "y")[0].startswith("≤")
