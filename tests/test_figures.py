"""Figures: built from small hand-made tables; every function returns a Figure with named, scaled
axes, something drawn, and widths in numeric order."""

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

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
    """The panels (colour bars excluded)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def tick_labels(ax, axis: str = "x") -> list[str]:
    """The tick labels as the formatter writes them (shared axes hide their own text labels)."""
    axis = ax.xaxis if axis == "x" else ax.yaxis
    return [t for t in axis.get_major_formatter().format_ticks(axis.get_majorticklocs()) if t]


def suptitle(fig: Figure) -> str:
    """The suptitle on one line (it is wrapped to the figure's width)."""
    return " ".join(fig.get_suptitle().split())


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
    assert "threshold" in suptitle(fig)


def test_spread_counts_diverged_runs_and_folds_other_axes_into_rows():
    runs = make_runs(depths=(1,), batch_sizes=(1, 4), diverged={(1, 2)})
    fig = figures.spread(runs)
    axes = data_axes(fig)
    assert len(axes) == 2
    assert {ax.get_title() for ax in axes} == {"depth 1 | batch size 1", "depth 1 | batch size 4"}
    assert "6 of 18 runs diverged" in suptitle(fig)
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
    assert "never reaching" in suptitle(fig)
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
    # All seeds of depth 2, width 4 diverged: its median line is NaN after epoch 0.
    diverged = axes[1].lines[1].get_ydata()
    assert np.isfinite(diverged[0]) and np.isnan(diverged[1:]).all()


def test_curve_quantiles_ignores_curves_of_unknown_runs():
    runs = make_runs(widths=(2,), depths=(1,), seeds=2)
    curves = make_curves(runs)
    stray = curves.assign(run_id="not-a-run", loss=1e9)
    stats = figures._curve_quantiles(runs, pd.concat([curves, stray]), ["depth", "width"])
    assert len(stats) == EPOCHS + 1
    assert stats["q75"].max() < 1


def test_capacity_success_and_ert_panels():
    runs = make_runs(lrs=(0.1, 0.3), diverged={(2, 2)})
    summary = analysis.summarize(runs, THRESHOLD)
    assert np.isinf(summary["ert"]).any()
    fig = figures.capacity(summary)
    check_labels(fig)
    ax_s, ax_e = data_axes(fig)
    assert ax_e.get_yscale() == "log"
    assert ax_s.get_xscale() == ax_e.get_xscale() == "log"
    assert tick_labels(ax_s) == tick_labels(ax_e) == ["2", "4", "16"]
    assert "success" in ax_s.get_ylabel() and "ERT" in ax_e.get_ylabel()
    assert ax_s.collections  # the Wilson error bars
    assert any(line.get_marker() == "^" for line in ax_e.lines)  # an infinite ERT, pinned on top
    assert "∞" in ax_e.get_title()
    assert legend_labels(fig) == ["depth 1, lr 0.1", "depth 1, lr 0.3", "depth 2, lr 0.1", "depth 2, lr 0.3"]


def test_capacity_when_no_configuration_succeeds():
    runs = make_runs(widths=(1,), depths=(1,), seeds=1)  # loss 10^-0.25: never below the threshold
    summary = analysis.summarize(runs, THRESHOLD)
    fig = figures.capacity(summary)
    ax_s, ax_e = data_axes(fig)
    assert tick_labels(ax_s) == ["1"]
    lo, hi = ax_e.get_ylim()
    assert 0 < lo < hi and np.isfinite(hi)


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
    assert "(1 − fᵢ²)·wᵢ₊₁" in suptitle(fig)


def test_single_width_single_seed():
    runs = make_runs(widths=(8,), depths=(1,), seeds=1)
    summary = analysis.summarize(runs, THRESHOLD)
    figs = figures.figures_for(runs, make_curves(runs), summary, THRESHOLD)
    assert list(figs) == ["spread", "ecdf", "convergence", "capacity"]
    assert tick_labels(data_axes(figs["spread"])[0]) == ["8"]
    assert legend_labels(figs["ecdf"]) == ["8"]


def test_all_runs_diverged():
    runs = make_runs(widths=(2, 4), depths=(1,), seeds=2, diverged={(1, 2), (1, 4)})
    summary = analysis.summarize(runs, THRESHOLD)
    figs = figures.figures_for(runs, make_curves(runs), summary, THRESHOLD)
    assert "4 of 4 runs diverged" in suptitle(figs["spread"])
    texts = [t.get_text() for ax in figs["convergence"].axes for t in ax.texts]
    assert "median diverged: width 2, 4" in texts
    for fig in figs.values():
        fig.canvas.draw()  # renders without error


def test_a_loss_exploding_towards_inf_counts_as_diverged():
    """A run stopped at 1e290 (on its way to inf) would break log ticks: drawn as diverged."""
    runs = make_runs(widths=(2, 4), depths=(1,), seeds=3)
    runs.loc[0, "final_loss"] = 1e290
    curves = make_curves(runs)
    curves.loc[curves["run_id"] == runs.loc[0, "run_id"], "loss"] = np.logspace(0, 290, EPOCHS + 1)
    summary = analysis.summarize(runs, THRESHOLD)
    figs = figures.figures_for(runs, curves, summary, THRESHOLD)
    assert "1 of 6 runs diverged (loss inf, NaN or > 1e100)" in suptitle(figs["spread"])
    for fig in figs.values():
        fig.canvas.draw()


def test_figures_for_keys_and_no_pyplot_figures():
    runs = make_runs(depths=(1,))
    summary = analysis.summarize(runs, THRESHOLD)
    assert list(figures.figures_for(runs, None, summary, THRESHOLD)) == ["spread", "ecdf", "capacity"]
    runs = make_runs(depths=(1, 2))
    summary = analysis.summarize(runs, THRESHOLD)
    X = np.linspace(-1, 1, 4)[:, None]
    chain = analysis.chain_gradients(range(1, 3), range(2), X, 0.5 * X)
    figs = figures.figures_for(runs, make_curves(runs), summary, THRESHOLD, chain=chain)
    assert list(figs) == ["spread", "ecdf", "convergence", "capacity", "heatmap", "chain_gradients"]
    assert all(isinstance(f, Figure) for f in figs.values())
    assert plt.get_fignums() == []  # nothing left open in pyplot's registry
