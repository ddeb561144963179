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


def test_failed_runs_followed_into_their_escape_continuation():
    from nnlab.analysis import continued, survival_times, with_continuations

    runs = pd.concat([_runs(2, [5, None, None, None, None], 50), _runs(3, [1, None], 50)], ignore_index=True)
    runs["run_id"] = ["a0", "a1", "a2", "a3", "a4", "b0", "b1"]
    runs["optimizer"] = ["sgd"] * 4 + ["adam"] + ["sgd"] * 2
    # a1's first escape stream reached the threshold 10 epochs on; a2's ran 50 epochs without; a3
    # has no certified end point; a4 was trained by Adam (its continuation resumed plain SGD).
    endpoints = pd.DataFrame(
        {
            "run_id": ["a1", "a2", "a4", "b0", "b1"],
            "escape_first": [10.0, np.nan, 3.0, np.nan, 30.0],
            "escape_length": [50.0, 50.0, 50.0, np.nan, 50.0],
        }
    )
    assert with_continuations(runs, None) is runs
    assert with_continuations(runs, endpoints[["run_id"]]) is runs  # certified before the columns
    assert not continued(runs)
    joined = with_continuations(runs, endpoints)
    assert continued(joined) and list(joined["run_id"]) == list(runs["run_id"])
    time, observed = survival_times(joined)
    np.testing.assert_array_equal(time, [5, 60, 100, 50, 50, 1, 80])
    np.testing.assert_array_equal(observed, [1, 1, 0, 0, 0, 1, 1])
    # Recomputed for another threshold from the curves, the continuations (run to the experiment's)
    # do not count.
    curves = pd.DataFrame({"run_id": ["a0", "b0"], "epoch": [7, 2], "loss": [0.0, 0.0]})
    time, observed = survival_times(joined, 0.5, curves)
    np.testing.assert_array_equal(time, [7, 50, 50, 50, 50, 2, 50])
    np.testing.assert_array_equal(observed, [1, 0, 0, 0, 0, 1, 0])
    # By hand, width 2 (SGD's runs): events at 5 (4 at risk) and 60 (2 at risk: the runs followed
    # to 60 and 100; the one censored at 50 left): S = (3/4)(1/2), success 5/8 from epoch 60 on.
    joined = joined[joined["optimizer"] == "sgd"]
    curves = survival_curves(joined)
    narrow = curves[curves["width"] == 2]
    assert list(narrow["epoch"]) == [0, 5, 60, 100]
    assert list(narrow["at_risk"].iloc[1:3]) == [4, 2]
    np.testing.assert_allclose(narrow["success"], [0, 1 / 4, 5 / 8, 5 / 8], atol=1e-15)
    row = logrank_tests(joined).iloc[0]
    t_a, d_a = np.array([5, 60, 100, 50.0]), np.array([1, 1, 0, 0], bool)
    t_b, d_b = np.array([1, 80.0]), np.array([1, 1], bool)
    ref = logrank(
        CensoredData(uncensored=t_a[d_a], right=t_a[~d_a]), CensoredData(uncensored=t_b[d_b], right=t_b[~d_b])
    )
    assert row["p_logrank"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert (row["successes_a"], row["successes_b"]) == (2, 2)


def test_survival_figure_says_the_runs_were_followed():
    import matplotlib.pyplot as plt

    from nnlab import figures
    from nnlab.analysis import with_continuations
    from nnlab.figures import notes

    runs = pd.concat([_runs(2, [5, None, None], 50), _runs(3, [1, 2, None], 50)], ignore_index=True)
    runs["run_id"] = [f"r{i}" for i in range(6)]
    endpoints = pd.DataFrame({"run_id": ["r1", "r5"], "escape_first": [20.0, np.nan], "escape_length": 50.0})
    fig = figures.survival(with_continuations(runs, endpoints), 1e-3)
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert any("followed into the first stream" in n for n in notes(fig))
    assert any(list(line.get_xdata()) == [50.0, 50.0] for line in ax.lines)  # the budget, dotted
    steps = [line for line in ax.lines if line.get_drawstyle() == "steps-post"]
    # Width 2: r1 followed to an event at 70, the last at risk (r2 left at 50); width 3: r5 to 100.
    assert [line.get_xdata()[-1] for line in steps] == [70.0, 100.0]
    assert [line.get_ydata()[-1] for line in steps] == pytest.approx([1.0, 2 / 3])
    plain = figures.survival(runs, 1e-3)
    assert any("censored at its budget" in n for n in notes(plain))
    plt.close(fig), plt.close(plain)
    assert plt.get_fignums() == []
