"""Statistics on small hand-made tables with known answers, and pruning of built networks."""

import numpy as np
import pandas as pd
import pytest

from nnlab import analysis, init_network, loss_of, network_from_arrays, train
from nnlab.network import flat_params, network_from_flat
from nnlab.tasks import chain, xor


def test_wilson_interval_known_values():
    lo, hi = analysis.wilson([0, 5, 10], [10, 10, 10])
    # 0/10: [0, z^2 / (n + z^2)]; 5/10 and 10/10 from the closed form (published tables).
    np.testing.assert_allclose(lo, [0.0, 0.236593, 0.722467], atol=1e-6)
    np.testing.assert_allclose(hi, [0.277533, 0.763407, 1.0], atol=1e-6)
    assert np.isnan(analysis.wilson(0, 0)[0])


def test_iqm_cuts_a_quarter_at_each_end():
    assert analysis.iqm(np.arange(1, 9)) == 4.5
    assert analysis.iqm([100, 0, 1, 2, 3, 4, 100, 0]) == 2.5
    assert analysis.iqm([7.0]) == 7.0
    assert np.isnan(analysis.iqm([]))


def test_quantiles_allow_infinite_losses():
    x = [3.0, 1.0, 2.0, 4.0]
    np.testing.assert_allclose(analysis.quantiles(x, [0, 0.25, 0.5, 1]), np.quantile(x, [0, 0.25, 0.5, 1]))
    q = analysis.quantiles([1.0, 2.0, 3.0, np.inf], [0.5, 0.6, 2 / 3, 0.9])
    np.testing.assert_array_equal(q, [2.5, 2.8, 3.0, np.inf])


def test_ert_counts_failures_at_their_budget():
    assert analysis.ert([10, np.nan, 30, np.nan], 100) == (10 + 100 + 30 + 100) / 2
    assert analysis.ert(pd.array([10, None], dtype="Int64"), [50, 80]) == (10 + 80) / 1
    assert analysis.ert([np.nan, np.nan], 100) == np.inf


def test_optima_estimate_groups_stopped_runs_by_relative_loss():
    loss = [1e-5, 3e-4, 0.25, 0.26, 0.5, 0.54, 0.9, 0.7]
    stopped = [False, True, True, True, True, True, True, False]  # the last run still moves
    # zero-loss basin (solved runs count whether they stopped or not); 0.25 ~ 0.26; 0.5 ~ 0.54; 0.9
    assert analysis.optima_estimate(loss, stopped, 1e-3) == 4
    assert analysis.optima_estimate(loss, stopped, 1e-3, rtol=0.01) == 6
    assert analysis.optima_estimate(loss, [False] * 8, 1e-3) == 1
    assert analysis.optima_estimate([np.inf, np.nan], [True, True], 1e-3) == 0


def test_stopped_runs_need_a_small_gradient_and_a_flat_late_loss():
    runs = pd.DataFrame(
        {
            "run_id": ["flat", "falling", "steep", "diverged"],
            "epochs": 20,
            "final_loss": [0.2, 0.1, 0.2, np.inf],
            "final_grad_norm": [0.01, 0.01, 0.5, 0.0],
        }
    )
    np.testing.assert_array_equal(analysis.stopped_runs(runs), [True, True, False, False])
    # Epoch 18 is the last tenth's start: "falling" lost half its loss since, "flat" 5%.
    curves = pd.DataFrame(
        {
            "run_id": ["flat", "flat", "falling", "falling", "steep", "diverged"],
            "epoch": [18, 20, 18, 20, 18, 18],
            "loss": [0.21, 0.2, 0.2, 0.1, 0.2, 1.0],
        }
    )
    np.testing.assert_array_equal(analysis.stopped_runs(runs, curves), [True, False, False, False])


def runs_table() -> pd.DataFrame:
    """Two widths of 4 seeds: width 2 solves 1 of 4 (one seed diverged), width 8 all."""
    rows = []
    finals = {2: [1e-4, 0.2, 0.2, np.nan], 8: [1e-5, 2e-5, 3e-5, 4e-5]}
    epochs_to = {2: [40, None, None, None], 8: [10, 20, 30, 40]}
    for width in (8, 2):
        for seed in range(4):
            rows.append(
                {
                    "run_id": f"{width}-{seed}",
                    "depth": 1,
                    "width": width,
                    "hidden": "tanh",
                    "output": "tanh",
                    "bias": True,
                    "loss_fn": "half_squared",
                    "lr": 0.1,
                    "batch_size": 1,
                    "epochs": 100,
                    "seed": seed,
                    "n_params": 4 * width + 1,
                    "final_loss": finals[width][seed],
                    "epochs_to_threshold": epochs_to[width][seed],
                    "final_grad_norm": 1e-5,
                    "diverged": np.isnan(finals[width][seed]),
                }
            )
    runs = pd.DataFrame(rows)
    runs["epochs_to_threshold"] = runs["epochs_to_threshold"].astype("Int64")
    return runs


def test_summarize_hand_table():
    s = analysis.summarize(runs_table(), 1e-3)
    assert list(s["width"]) == [2, 8]  # numeric order
    w2, w8 = s.iloc[0], s.iloc[1]
    assert (w2["runs"], w2["diverged"], w2["successes"]) == (4, 1, 1)
    assert w2["success"] == 0.25 and w8["success"] == 1.0
    assert w2["median"] == 0.2  # the diverged run counts as +inf
    assert w2["q90"] == np.inf
    assert w2["ert"] == (40 + 100 + 100 + 100) / 1 and w8["ert"] == (10 + 20 + 30 + 40) / 4
    assert w2["median_epochs"] == 40 and w8["median_epochs"] == 25
    assert w8["iqm"] == pytest.approx(2.5e-5)
    assert (w2["optima_estimate"], w8["optima_estimate"]) == (2, 1)  # zero loss and 0.2; zero loss only
    assert "optima" not in s.columns  # only certified minima are counted as optima
    assert (w2["stopped"], w8["stopped"]) == (3, 4)
    lo, hi = analysis.wilson(1, 4)
    assert (w2["success_lo"], w2["success_hi"]) == (lo, hi)
    # 1 of 4: the Wilson interval lies below 90%; 4 of 4: it straddles 90% (too few seeds to say).
    assert (w2["verdict"], w8["verdict"]) == ("critical", "undecided")


def test_summary_does_not_depend_on_the_order_runs_were_stored():
    rng = np.random.default_rng(3)
    row = runs_table().iloc[0]
    runs = pd.DataFrame([row] * 40).assign(
        seed=range(40), run_id=[f"r{i}" for i in range(40)], final_loss=rng.lognormal(-6, 1, 40)
    )
    shuffled = runs.iloc[rng.permutation(40)].reset_index(drop=True)
    pd.testing.assert_frame_equal(analysis.summarize(runs, 1e-3), analysis.summarize(shuffled, 1e-3))


def test_summarize_reads_epochs_to_threshold_from_the_curves():
    """With the curves, a threshold other than the stored one gives its own ERT and epochs."""
    runs = runs_table()
    epochs = np.arange(101)
    curves = pd.concat(
        [
            # Every run's loss falls 0.5 -> 0.5 * 0.9**100 (~1.3e-5): below 1e-3 from epoch 59.
            pd.DataFrame({"run_id": r, "epoch": epochs, "loss": 0.5 * 0.9**epochs})
            for r in runs["run_id"]
        ]
    )
    s = analysis.summarize(runs, 1e-3, curves=curves)
    w2, w8 = s.iloc[0], s.iloc[1]
    assert w8["median_epochs"] == 59 and w8["ert"] == 59
    # Hitting-based: every run of width 2 crossed the threshold at epoch 59, whatever its final
    # loss (three of them end above it, one diverged): all four succeed, at epoch 59.
    assert w2["median_epochs"] == 59 and w2["ert"] == 59 and w2["success"] == 1.0
    assert w2["success_final"] == 0.25


def test_a_run_that_crosses_and_comes_back_succeeds_when_it_first_crossed():
    """Success, ERT and median epochs all count the first crossing (COCO's rule); the final loss
    only decides success_final."""
    runs = pd.DataFrame(
        {
            "run_id": ["back", "never", "stays"],
            "depth": 1,
            "width": 2,
            "epochs": 10,
            "n_params": 9,
            "final_loss": [0.5, 0.4, 1e-4],
            "final_grad_norm": 1.0,
            "diverged": False,
            "epochs_to_threshold": pd.array([pd.NA, pd.NA, pd.NA], dtype="Int64"),
        }
    )
    loss = {
        "back": [1.0, 0.1, 1e-4, 1e-2, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],  # below 1e-3 at epoch 2 only
        "never": [1.0] * 10 + [0.4],
        "stays": [1.0, 1.0, 1.0, 1.0, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4],  # from epoch 4 on
    }
    curves = pd.concat(
        [pd.DataFrame({"run_id": r, "epoch": np.arange(11), "loss": v}) for r, v in loss.items()]
    )
    row = analysis.summarize(runs, 1e-3, curves=curves).iloc[0]
    assert (row["successes"], row["success_final"]) == (2, pytest.approx(1 / 3))
    assert row["ert"] == (2 + 10 + 4) / 2 and row["median_epochs"] == 3


def test_bootstrap_interval_covers_the_truth_at_its_nominal_rate():
    """Percentile bootstrap of the median of 60 draws from an exponential distribution (true median
    ln 2), over 400 simulated data sets: covers the truth in about 95% of them."""
    rng = np.random.default_rng(1)
    covered = 0
    trials = 400
    for _ in range(trials):
        x = rng.exponential(size=60)
        lo, hi = analysis.bootstrap_ci(x[:, None], lambda r: np.median(r[..., 0], axis=1), rng=rng, reps=500)
        covered += lo <= np.log(2) <= hi
    # Binomial(400, 0.95) lies within 0.92..0.98 with probability > 0.99; percentile intervals of a
    # median at n = 60 run a little short of nominal, so allow 0.90.
    assert 0.90 <= covered / trials <= 0.985


def test_bootstrap_of_ert_with_infinite_resamples_and_the_generator_is_explicit():
    e = np.array([10.0, np.nan, np.nan, np.nan])  # one success in four, budget 100
    x = np.stack([e, np.full(4, 100.0)], axis=1)
    lo, hi = analysis.bootstrap_ci(x, analysis.intervals.rows_ert, rng=np.random.default_rng(0), reps=1000)
    # ERT = (10 + 3 * 100) / 1 = 310; resamples with more successes go as low as 10, and about
    # (3/4)^4 = 32% of them have none: the upper end is inf.
    assert 10.0 <= lo < analysis.ert(e, 100) and hi == np.inf
    again = analysis.bootstrap_ci(x, analysis.intervals.rows_ert, rng=np.random.default_rng(0), reps=1000)
    assert again == (lo, hi)
    assert np.isnan(analysis.bootstrap_ci(np.zeros((0, 1)), np.sum, rng=np.random.default_rng(0))[0])


def test_fisher_and_rank_tests_against_closed_forms():
    """Fisher's exact test of 3/3 against 0/3: the only tables as extreme, with margins 3, 3, 3, 3,
    are this one and its mirror, each with hypergeometric probability 1 / C(6, 3) = 1/20: p = 0.1."""

    def table(successes, n, e):
        return pd.DataFrame({"epochs_to_threshold": pd.array(e + [pd.NA] * (n - successes), dtype="Int64")})

    out = analysis.compare(table(3, 3, [1, 2, 3]), table(0, 3, []))
    assert out["p_success"] == pytest.approx(0.1)
    assert not out["significant_success"]
    # Mann-Whitney, exact without ties: 1, 2, 3 against 4, 5, 6 gives U = 0, and of the C(6, 3) = 20
    # equally likely splits only this one and its mirror are as extreme: p = 2 / 20.
    assert analysis.compare(table(3, 3, [1, 2, 3]), table(3, 3, [4, 5, 6]))["p_epochs"] == pytest.approx(0.1)
    out = analysis.compare(table(10, 10, list(range(10))), table(0, 10, []))
    assert out["p_success"] == pytest.approx(2 / 184756) and out["significant_success"]


def test_best_settings_choose_the_lowest_ert_per_architecture():
    summary = pd.DataFrame(
        {
            "depth": 1,
            "width": [2, 2, 4, 4],
            "lr": [0.1, 0.3, 0.1, 0.3],
            "ert": [50.0, 40.0, np.inf, 80.0],
            "success": [1.0, 0.9, 0.0, 0.5],
            "median": [1e-5, 1e-4, 0.3, 1e-3],
        }
    )
    best = analysis.best_settings(summary)
    assert list(best["lr"]) == [0.3, 0.3] and list(best["chosen_from"]) == [2, 2]
    assert analysis.best_settings(summary[summary["lr"] == 0.1]).empty  # nothing tuned


def test_median_test_loss_counts_a_nan_as_infinite():
    runs = runs_table().assign(test_loss=[0.1, 0.2, 0.3, 0.4, np.nan, np.nan, np.nan, 0.5])
    s = analysis.summarize(runs, 1e-3)
    assert s.iloc[1]["median_test_loss"] == 0.25
    assert s.iloc[0]["median_test_loss"] == np.inf  # three of width 2's four test losses are NaN


def test_median_accuracies_of_classification_runs():
    runs = runs_table().assign(
        train_accuracy=[1.0, 0.9, 0.8, 0.7, 0.5, 0.6, 0.7, 0.8], test_accuracy=[0.9, 0.8, 0.7, 0.6] * 2
    )
    s = analysis.summarize(runs, 1e-3)
    by_width = runs.groupby("width")
    np.testing.assert_allclose(s["median_accuracy"], by_width["train_accuracy"].median())
    np.testing.assert_allclose(s["median_test_accuracy"], by_width["test_accuracy"].median())
    assert s["median_accuracy"].nunique() == 2
    assert "median_accuracy" not in analysis.summarize(runs_table(), 1e-3)


def verdict_row(**kw):
    row = dict(runs=100, successes=0, success_lo=0.0, success_hi=0.0, diverged=0, descending=0)
    return {**row, **kw}


def test_verdicts_from_intervals_and_behaviour():
    assert analysis.verdict(verdict_row(successes=100, success_lo=0.963, success_hi=1.0)) == "over-capacity"
    # 95 of 100: Wilson [0.89, 0.98] straddles 90%: not called over-capacity.
    assert analysis.verdict(verdict_row(successes=95, success_lo=0.888, success_hi=0.978)) == "undecided"
    assert analysis.verdict(verdict_row(successes=50, success_lo=0.40, success_hi=0.60)) == "critical"
    assert analysis.verdict(verdict_row(diverged=50)) == "diverged"  # the lr failed: no verdict on width
    assert analysis.verdict(verdict_row(descending=60)) == "unsolved within budget"
    assert analysis.verdict(verdict_row(descending=40)) == "stuck"
    certified = dict(certified=100, end_solved=0, end_minimum=30, end_degenerate=20, end_valley=50)
    assert analysis.verdict(verdict_row(**certified)) == "under-capacity"
    # An end point the polish did not settle is no evidence: stuck, not under-capacity.
    loose = {**certified, "end_valley": 49}
    assert analysis.verdict(verdict_row(**loose, end_unconverged=1)) == "stuck"
    assert analysis.verdict(verdict_row(**{**certified, "certified": 90})) == "stuck"  # not every run
    # Half the runs ended above their initial loss: the learning rate failed, whatever the certificates
    # say of the saturated end points.
    assert analysis.verdict(verdict_row(worse=50, descending=60)) == "worse than at start"
    assert analysis.verdict(verdict_row(worse=50, **certified)) == "worse than at start"
    assert analysis.verdict(verdict_row(worse=49)) == "stuck"


def test_smallest_widths_and_monotonicity():
    runs = runs_table()
    never = runs[runs["width"] == 2].assign(width=1, final_loss=0.3, epochs_to_threshold=pd.NA)
    deeper = runs.assign(depth=2, final_loss=0.3, epochs_to_threshold=pd.NA)
    s = analysis.summarize(pd.concat([runs, never, deeper]), 1e-3)
    assert list(s["verdict"][s["depth"] == 1]) == ["stuck", "critical", "undecided"]
    c = analysis.capacity(s)
    assert list(c["depth"]) == [1, 2]
    assert c["min_width_solves"][0] == 2 and np.isnan(c["min_width_reliable"][0])  # 4 of 4 is not enough
    assert np.isnan(c["min_width_solves"][1]) and np.isnan(c["min_width_reliable"][1])
    assert c["monotone"].all()
    # A wider network that solves significantly less often: 30 of 30 against 2 of 30.
    table = pd.DataFrame(
        {"depth": 1, "width": [2, 4], "successes": [30, 2], "runs": [30, 30], "success_lo": [0.89, 0.02]}
    )
    assert not analysis.capacity(table)["monotone"][0]


def solved_xor_networks(width: int) -> tuple:
    X, Y = xor()
    result = train(init_network([2, width, 1], seeds=range(16)), X, Y, lr=0.3, epochs=600)
    solved = np.flatnonzero(result.loss_curve[:, -1] < 1e-3)
    assert len(solved) >= 2
    return result.network.replica(list(solved[:2])), X, Y


def test_pruning_removes_duplicated_and_constant_units():
    net, X, Y = solved_xor_networks(3)
    base = analysis.redundant_units(net, X, Y, 1e-3)
    assert np.all(base >= 0) and np.all(base <= 2)
    W1, W2 = net.weights
    b1, b2 = net.biases
    # Every unit twice, each copy with half the outgoing weight: the same function, width 6.
    twice = network_from_arrays(
        [np.concatenate([W1, W1], axis=2), np.concatenate([W2, W2], axis=1) / 2],
        [np.concatenate([b1, b1], axis=1), b2],
    )
    np.testing.assert_allclose(loss_of(twice, X, Y), loss_of(net, X, Y), rtol=1e-9)
    np.testing.assert_array_equal(analysis.redundant_units(twice, X, Y, 1e-3), base + 3)
    # Plus a unit that is constant on the data (no input weights) with a large outgoing weight.
    R = net.n_replicas
    const = network_from_arrays(
        [
            np.concatenate([W1, np.zeros((R, 2, 1))], axis=2),
            np.concatenate([W2, np.full((R, 1, 1), 5.0)], axis=1),
        ],
        [np.concatenate([b1, np.full((R, 1), 2.0)], axis=1), b2 - 5.0 * np.tanh(2.0)],
    )
    np.testing.assert_allclose(loss_of(const, X, Y), loss_of(net, X, Y), rtol=1e-9)
    np.testing.assert_array_equal(analysis.redundant_units(const, X, Y, 1e-3), base + 1)


def test_pruning_refits_the_next_layer_over_all_remaining_units():
    """A unit that is a combination of two others (f_3 = 2 f_1 - f_2 on the data, here with an
    identity hidden layer) goes exactly: only a refit over all remaining units can absorb it, no
    single other unit can."""
    X = np.random.default_rng(0).normal(size=(8, 2))
    W1 = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]])  # f_3 = 2 f_1 - f_2
    W2 = np.array([[0.3], [-0.2], [0.5]])
    net = network_from_arrays([W1, W2], hidden="identity", output="identity")
    Y = X @ W1 @ W2  # the network's own output: loss 0
    f = (X, X @ W1, X @ W1 @ W2)
    W, b = analysis.pruning.refit_without([W1, W2], None, f, 0, 2)
    np.testing.assert_allclose(W[1], [[0.3 + 2 * 0.5], [-0.2 - 0.5]], atol=1e-12)
    assert analysis.redundant_units(net, X, Y, 1e-6)[0] == 1  # the third unit; two are needed for rank 2


def test_pruning_keeps_the_loss_close_to_the_trained_networks_own():
    """A network solved far below the threshold is not degraded to it: removals are kept only while
    the loss stays within loss_0 (1 + PRUNE_RTOL) + PRUNE_ATOL * threshold."""
    net, X, Y = solved_xor_networks(3)
    strict = analysis.redundant_units(net, X, Y, 1e-3)
    loose = analysis.redundant_units(net, X, Y, 1e3)  # "solved" below 1000: anything goes
    assert np.all(loose >= strict)
    assert np.all(loose == 2)  # every hidden layer keeps one unit


def test_pruning_of_an_unsolved_network_is_nan_and_keeps_one_unit_per_layer():
    X, Y = xor()
    net = init_network([2, 2, 1], seeds=[0])
    assert np.isnan(analysis.redundant_units(net, X, Y, 1e-9)).all()
    # A loss threshold so high that any degradation is allowed: one unit per layer is kept.
    deep = init_network([2, 3, 3, 1], seeds=[1])
    assert analysis.redundant_units(deep, X, Y, 1e3)[0] == 4  # 6 hidden units, one kept per layer


def test_redundancy_maps_saved_parameters_to_runs():
    net, X, Y = solved_xor_networks(4)
    flat = flat_params(net)
    again = network_from_flat(flat, [2, 4, 1])
    for a, b in zip(again.weights + again.biases, net.weights + net.biases, strict=True):
        np.testing.assert_array_equal(a, b)
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "depth": 1,
            "width": 4,
            "bias": True,
            "hidden": "tanh",
            "output": "tanh",
            "loss_fn": "half_squared",
        }
    )
    red = analysis.redundancy(runs, {"a": flat[0], "b": flat[1]}, X, Y, 1e-3)
    assert list(red["run_id"]) == ["a", "b"]
    np.testing.assert_array_equal(red["redundant_units"], analysis.redundant_units(net, X, Y, 1e-3))
    np.testing.assert_array_equal(red["kept_units"], 4 - red["redundant_units"])
    # A layer wider than PRUNE_MAX_UNITS is not searched (n w^4): NaN, at once.
    w = analysis.PRUNE_MAX_UNITS + 1
    wide = flat_params(init_network([2, w, 1], seeds=[0]))[0]
    red = analysis.redundancy(runs.assign(width=w).iloc[:1], {"a": wide}, X, Y, 1e3)
    assert list(red["run_id"]) == ["a"] and np.isnan(red["redundant_units"]).all()


def test_chain_gradients_match_the_closed_form():
    X, Y = chain(n=8)
    table = analysis.chain_gradients([1, 2, 3], range(5), X, Y)
    assert list(table.columns) == ["L", "seed", "grad_w1", "loss"] and len(table) == 15
    for L in (1, 2, 3):
        net = init_network([1] * (L + 1), seeds=range(5), bias=False)
        w = [W[:, 0, 0] for W in net.weights]
        f = [X[:, 0][None, :] * np.ones((5, 1))]
        for wi in w:
            f.append(np.tanh(f[-1] * wi[:, None]))
        # dL/dw_1 = mean_n (f_L - y) prod_{i=1..L} (1 - f_i^2) * prod_{i=2..L} w_i * x
        g = (f[-1] - Y[:, 0]) * X[:, 0]
        for i in range(1, L + 1):
            g = g * (1 - f[i] ** 2)
        for i in range(1, L):
            g = g * w[i][:, None]
        np.testing.assert_allclose(table.loc[table["L"] == L, "grad_w1"], np.abs(g.mean(axis=1)), rtol=1e-12)


def test_descending_compares_the_means_of_the_last_two_twentieths():
    """A loss falling 2% per twentieth of the epochs is still descending; one flat but jittering by
    +-5% from epoch to epoch (SGD's noise) is not, though its last epoch may sit 10% below another."""
    epochs = np.arange(201)
    falling = 0.3 * 0.98 ** (epochs / 10)
    jitter = 0.3 * (1 + 0.05 * np.where(epochs % 2 == 0, 1, -1))
    runs = pd.DataFrame({"run_id": ["falling", "jitter"], "epochs": 200})
    curves = pd.concat(
        [
            pd.DataFrame({"run_id": "falling", "epoch": epochs, "loss": falling}),
            pd.DataFrame({"run_id": "jitter", "epoch": epochs, "loss": jitter}),
        ]
    )
    np.testing.assert_array_equal(analysis.descending_runs(runs, curves), [True, False])
    assert not analysis.descending_runs(runs, None).any()  # without curves nothing is known


def test_decide_seeds_is_where_the_wilson_bound_first_decides():
    """The closed form against the Wilson interval itself: at n = decide_seeds the same rate is
    decisive, one seed fewer it is not (30/30 needs 35: 35 / (35 + 1.96^2) >= 90% > 34 / (34 + 1.96^2))."""
    assert analysis.decide_seeds(30, 30) == 35 and analysis.decide_seeds(32, 32) == 35
    assert analysis.decide_seeds(9, 10) == np.inf  # exactly 90%: no number of seeds decides
    for k, n in [(30, 30), (31, 32), (26, 32), (95, 100), (7, 8)]:
        m = analysis.decide_seeds(k, n)
        rate = k / n

        def decisive(m, rate=rate):
            lo, hi = analysis.wilson(rate * m, m)
            return lo >= analysis.RELIABLE or hi < analysis.RELIABLE

        assert decisive(m) and not decisive(m - 1), (k, n, m)


def test_paired_tests_against_closed_forms():
    """Seeds pair (the same seeds, in any order): McNemar's exact test on the 5 seeds solved by a
    alone (none by b alone) is a binomial test, p = 2 / 2^5; Wilcoxon's signed-rank test with 8
    differences of one sign and no ties, p = 2 / 2^8 (b's failures counted at its budget + 1)."""
    a = pd.DataFrame({"seed": range(8), "epochs": 100, "epochs_to_threshold": [1, 2, 3, 4, 5, 6, 7, 8]})
    b = pd.DataFrame(
        {"seed": range(7, -1, -1), "epochs": 100, "epochs_to_threshold": [np.nan] * 5 + [10, 11, 12]}
    )
    out = analysis.compare(a, b)
    assert out["paired"] and (out["test_success"], out["test_epochs"]) == analysis.comparisons.PAIRED
    assert out["p_success"] == pytest.approx(2 / 2**5)
    assert out["p_epochs"] == pytest.approx(2 / 2**8) and out["significant_epochs"]
    # Other seeds: unpaired, Fisher and Mann-Whitney as before.
    out = analysis.compare(a, b.assign(seed=b["seed"] + 1))
    assert not out["paired"] and out["test_success"] == "Fisher exact"
    with pytest.raises(ValueError, match="paired"):
        analysis.compare(a, b.assign(seed=b["seed"] + 1), paired=True)
