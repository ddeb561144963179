"""Kaplan-Meier curves and log-rank tests of the epochs to threshold, against scipy."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import CensoredData, ecdf, logrank

from nnlab.analysis import kaplan_meier, logrank_tests, survival_curves


def test_kaplan_meier_matches_scipy_ecdf_with_log_log_interval():
    rng = np.random.default_rng(3)
    t = rng.integers(0, 20, 40).astype(float)
    d = rng.random(40) < 0.6
    km = kaplan_meier(t, d)
    ref = ecdf(CensoredData(uncensored=t[d], right=t[~d]))
    ci = ref.sf.confidence_interval(method="log-log")
    np.testing.assert_allclose(km["survival"], ref.sf.evaluate(km["time"]), atol=1e-14)
    ok = km["lo"].notna().to_numpy()
    np.testing.assert_allclose(km["lo"][ok], ci.low.evaluate(km["time"][ok]), atol=1e-12)
    np.testing.assert_allclose(km["hi"][ok], ci.high.evaluate(km["time"][ok]), atol=1e-12)
    # A censoring before an event leaves fewer at risk: 1 - (5/6)(3/4) at epoch 40, not 2/6.
    two = kaplan_meier([5, 50, 20, 40, 50, 50], [1, 0, 0, 1, 0, 0])
    assert two["survival"].iloc[-1] == pytest.approx((5 / 6) * (3 / 4))
    with pytest.raises(ValueError, match="time"):
        kaplan_meier([1.0, np.nan], [True, False])


def _runs(width, hits, budget):
    return pd.DataFrame(
        {
            "depth": 1,
            "width": width,
            "lr": 0.1,
            "epochs": budget,
            "epochs_to_threshold": pd.array(hits, dtype="Int64"),
        }
    )


def test_survival_curves_censor_at_the_budget_and_logrank_matches_scipy():
    a = _runs(2, [5, None, None, 40, None, None], 50)
    b = _runs(3, [1, 2, 3, 4, 4, None], 50)
    runs = pd.concat([a, b], ignore_index=True)
    curves = survival_curves(runs)
    wide = curves[curves["width"] == 3]
    # Uncensored before the end: the curve is the share solved; 5 of 6 at epoch 4.
    assert wide["success"].iloc[-1] == pytest.approx(5 / 6)
    assert list(wide["epoch"]) == [0, 1, 2, 3, 4, 50]
    narrow = curves[curves["width"] == 2]
    # One budget per configuration: the Kaplan-Meier curve is the share solved.
    assert narrow["success"].iloc[-1] == pytest.approx(2 / 6)
    assert (curves["success_lo"] <= curves["success"] + 1e-15).all()
    assert (curves["success"] <= curves["success_hi"] + 1e-15).all()
    tests = logrank_tests(runs)
    assert len(tests) == 1
    row = tests.iloc[0]
    t_a, d_a = np.array([5, 50, 50, 40, 50, 50.0]), np.array([1, 0, 0, 1, 0, 0], bool)
    t_b, d_b = np.array([1, 2, 3, 4, 4, 50.0]), np.array([1, 1, 1, 1, 1, 0], bool)
    ref = logrank(
        CensoredData(uncensored=t_a[d_a], right=t_a[~d_a]), CensoredData(uncensored=t_b[d_b], right=t_b[~d_b])
    )
    assert row["p_logrank"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert row["statistic"] < 0 and row["significant_logrank"]  # width 2 succeeds later
    never = logrank_tests(pd.concat([_runs(2, [None] * 3, 50), _runs(3, [None] * 3, 50)]))
    assert np.isnan(never["p_logrank"].iloc[0]) and not never["significant_logrank"].iloc[0]


def test_survival_figure_steps_with_a_band_and_the_logrank_p():
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    from nnlab import figures

    runs = [_runs(2, [5, None, None, 40, None, None], 50), _runs(3, [1, 2, 3, 4, 4, None], 50)]
    runs = pd.concat(runs, ignore_index=True)
    runs["epochs_to_threshold"] = runs["epochs_to_threshold"].astype("Int64")
    fig = figures.survival(runs, 1e-3)
    (ax,) = [a for a in fig.axes if a.get_visible()]
    steps = [line for line in ax.lines if line.get_drawstyle() == "steps-post"]
    assert [line.get_ydata()[-1] for line in steps] == pytest.approx([2 / 6, 5 / 6])
    assert any(isinstance(c, PolyCollection) for c in ax.collections)
    p = logrank_tests(runs)["p_logrank"].iloc[0]
    assert any(f"2→3: p = {p:.2g}" in t.get_text() for t in ax.texts)
    assert figures.survival(runs[runs["width"] == 2], 1e-3) is None  # one width: nothing to compare
    assert plt.get_fignums() == []
