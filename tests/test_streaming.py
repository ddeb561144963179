"""Analysis at scale: the per-run statistics stored with the runs give the summary the curves would
(hand-made tables, a trained sweep), thinned curves keep the hitting statistics, and 10^5-run folders
round-trip: one built directly with pyarrow through load, summary and a sample of its curves; one
written by the store's own writer (part files, merge) through load, summary and figures."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nnlab
from nnlab import analysis, sweep
from nnlab.results import open_folder
from nnlab.schema import AXES, COLUMN_OF, RUN_STATISTICS
from nnlab.sweep.experiment import load
from nnlab.sweep.store import curve_statistics, recorded_epochs, scan_curves

STATS = ["epochs_to_threshold", *RUN_STATISTICS]


def hand_tables(rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs of two budgets (20 and 37 epochs) whose curves fall, flatten, cross the threshold and come
    back, diverge (inf, NaN) or saturate above their start: every branch of the statistics."""
    rows, curves = [], []
    for k in range(24):
        epochs = (20, 37)[k % 2]
        t = np.arange(epochs + 1)
        kind = k % 6
        loss = {
            0: 0.5 * 0.7**t,  # falls through the threshold, keeps falling
            1: 0.2 + 0.3 * 0.5**t,  # flat well above it
            2: np.where((t > 5) & (t < 9), 1e-4, 0.3),  # crosses and comes back
            3: np.where(t < 12, 0.4, np.inf),  # diverges
            4: np.where(t < 15, 0.1, np.nan),
            5: 0.05 + 0.02 * t,  # ends worse than it began
        }[kind] * (1 + 0.01 * rng.standard_normal(epochs + 1))
        run_id = f"r{k:02d}"
        curves.append(pd.DataFrame({"run_id": run_id, "epoch": t, "loss": loss}))
        rows.append(
            {
                "run_id": run_id,
                "depth": 1,
                "width": 2 + k % 3,
                "hidden": "tanh",
                "output": "tanh",
                "lr": 0.1,
                "batch_size": 1,
                "epochs": epochs,
                "seed": k,
                "n_params": 9,
                "final_loss": loss[-1],
                "final_grad_norm": (1e-3, 1.0)[k % 4 == 3],
                "diverged": not np.isfinite(loss[-1]),
            }
        )
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def with_job_statistics(runs: pd.DataFrame, curves: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """``runs`` with the statistics a job stores (curve_statistics on each whole curve)."""
    out = runs.copy()
    for k in STATS:
        out[k] = np.nan
    for run_id, g in curves.groupby("run_id"):
        stats = curve_statistics(g.sort_values("epoch")["loss"].to_numpy()[None, :], threshold)
        for k, v in stats.items():
            out.loc[out["run_id"] == run_id, k] = v[0]
    out["epochs_to_threshold"] = out["epochs_to_threshold"].astype("Int64")
    return out


def test_stored_and_streamed_statistics_give_the_summary_of_the_curves(rng, tmp_path):
    runs, curves = hand_tables(rng)
    threshold = 1e-3
    today = analysis.summarize(runs, threshold, curves=curves)  # every statistic from the curves
    stored = with_job_statistics(runs, curves, threshold)
    pd.testing.assert_frame_equal(analysis.summarize(stored, threshold), today)
    # Streamed: row groups of 50 rows, shuffled, so that runs straddle them.
    path = tmp_path / "curves.parquet"
    pq.write_table(pa.Table.from_pandas(curves.sample(frac=1, random_state=0)), path, row_group_size=50)
    scanned = scan_curves(path, runs, threshold)
    assert (scanned.pop("points") == runs["epochs"] + 1).all()
    for k, v in scanned.items():
        np.testing.assert_array_equal(v, stored[k].to_numpy(dtype=np.float64), err_msg=k)
    assert (today["descending"] > 0).any() and (today["worse"] > 0).any() and (today["stopped"] > 0).any()


TOML = """name = "thin"
threshold = {threshold}
[task]
kind = "xor"
[model]
width = [2, 3]
[train]
lr = 0.3
epochs = 60
seeds = 6
record = {record}
"""


def sweep_into(tmp_path, name, record, threshold=1e-2):
    path = tmp_path / f"{name}.toml"
    path.write_text(TOML.format(record=record, threshold=threshold))
    sweep.run(load(path), tmp_path / name)
    return tmp_path / name


def test_thinned_curves_keep_the_hitting_statistics_and_the_run_ids(tmp_path):
    full = sweep_into(tmp_path, "all", '"all"')
    runs = pd.read_parquet(full / "runs.parquet").drop(columns="seconds")
    curves = pd.read_parquet(full / "curves.parquet")
    summary = nnlab.load(full).summary
    for record in ("5", '"log"'):
        thin = sweep_into(tmp_path, f"r{record.strip(chr(34))}", record)
        thin_runs = pd.read_parquet(thin / "runs.parquet").drop(columns="seconds")
        pd.testing.assert_frame_equal(thin_runs, runs)  # run ids and statistics alike
        kept = pd.read_parquet(thin / "curves.parquet")
        epochs = recorded_epochs(60, 5 if record == "5" else "log")
        assert len(kept) == len(runs) * len(epochs) < len(curves)
        merged = kept.merge(curves, on=["run_id", "epoch"], suffixes=("", "_all"))
        assert len(merged) == len(kept) and (merged["loss"] == merged["loss_all"]).all()
        pd.testing.assert_frame_equal(nnlab.load(thin).summary, summary)
    assert list(recorded_epochs(60, 25)) == [0, 25, 50, 60]


def test_a_new_threshold_trains_thinned_runs_again(tmp_path):
    """Thinned curves cannot be searched for another threshold: a rerun trains their runs again, to
    the numbers a whole curve gives."""
    thin = sweep_into(tmp_path, "thin", "7")
    full = sweep_into(tmp_path, "all", '"all"', threshold=0.1)
    thin = sweep_into(tmp_path, "thin", "7", threshold=0.1)
    expected = pd.read_parquet(full / "runs.parquet").drop(columns="seconds")
    got = pd.read_parquet(thin / "runs.parquet").drop(columns="seconds")
    pd.testing.assert_frame_equal(got, expected)


def test_a_hundred_thousand_runs_round_trip(tmp_path):
    """10^5 runs (100 configurations x 1,000 seeds, 12 epochs), tables written directly: load and
    its summary read no curve; a fixed sample of seeds reads only its own curves."""
    out = tmp_path / "big"
    out.mkdir()
    (out / "experiment.toml").write_text(
        'name = "big"\nthreshold = 0.01\n[task]\nkind = "xor"\n[model]\n'
        f"width = {list(range(1, 11))}\n[train]\nlr = {[0.01 * k for k in range(1, 11)]}\n"
        "epochs = 12\nseeds = 1000\n"
    )
    exp = load(out / "experiment.toml")
    configs = exp.configs()
    n, E = len(configs) * 1000, 12
    seeds = np.tile(np.arange(1000), len(configs))
    rate = np.random.default_rng(0).uniform(0.3, 0.9, n)
    curve = np.power.outer(rate, np.arange(E + 1))  # (n, E + 1)
    ids = [c.run_id(s) for c in configs for s in range(1000)]
    runs = pd.DataFrame(
        {
            "run_id": ids,
            "experiment": "big",
            "task": "xor",
            **{a: np.repeat([getattr(c, a) for c in configs], 1000) for a in ("depth", "width", "lr")},
            "hidden": "tanh",
            "output": "tanh",
            "bias": True,
            "init": "auto",
            "init_scale": 1.0,
            "loss_fn": "half_squared",
            "batch_size": 1,
            "epochs": E,
            "seed": seeds,
            "n_params": 9,
            "final_loss": curve[:, -1],
            "best_loss": curve[:, -1],
            "final_grad_norm": 1e-3,
            "diverged": False,
            **curve_statistics(curve, exp.threshold),
        }
    )
    runs["epochs_to_threshold"] = runs["epochs_to_threshold"].astype("Int64")
    runs.to_parquet(out / "runs.parquet", index=False)
    pq.write_table(
        pa.table(
            {
                "run_id": np.repeat(np.array(ids, dtype=object), E + 1),
                "epoch": np.tile(np.arange(E + 1), n),
                "loss": curve.ravel(),
            }
        ),
        out / "curves.parquet",
        row_group_size=1 << 18,
    )
    (out / "curves.parquet").chmod(0)  # load and summary must not read it
    folder = open_folder(out, reps=50)  # nnlab.load's folder, with fewer bootstrap resamples
    assert len(folder.runs) == n and len(folder.summary) == 100 and (folder.summary["runs"] == 1000).all()
    assert folder.summary["successes"].sum() == int(
        np.isfinite(runs["epochs_to_threshold"].astype(float)).sum()
    )
    (out / "curves.parquet").chmod(0o644)
    sample = folder.curves_of(seeds=3)
    assert len(sample) == 100 * 3 * (E + 1)
    assert set(sample["run_id"]) == set(runs.loc[runs["seed"] < 3, "run_id"])
    first = sample[sample["run_id"] == ids[0]]["loss"].to_numpy()
    np.testing.assert_array_equal(first, curve[0])


@pytest.mark.parametrize("record", ["0", '"some"', "[1, 2]"])
def test_record_refuses_what_it_cannot_keep(tmp_path, record):
    path = tmp_path / "bad.toml"
    path.write_text(TOML.format(record=record, threshold=0.01))
    with pytest.raises(nnlab.sweep.experiment.ExperimentError, match="train.record"):
        load(path)


def test_the_bootstrap_by_ranks_gives_the_sorted_resamples_values(rng):
    from nnlab.analysis.intervals import ranks_of, rows_median, rows_spread
    from nnlab.analysis.summary import _median, _spread

    x = np.concatenate([rng.random(40), [np.inf, np.inf, 0.5, 0.5]])  # diverged runs and ties
    ordered, rank = ranks_of(x)
    idx = rng.integers(0, len(x), size=(300, len(x)))
    np.testing.assert_array_equal(_median(ordered, rank[idx]), rows_median(x[idx]))
    np.testing.assert_array_equal(_spread(ordered, rank[idx]), rows_spread(x[idx]))


def test_a_hundred_thousand_runs_stored_by_the_store_round_trip_through_figures(tmp_path):
    """10^5 runs written as part files by the store's writer and merged (a real results folder, 12
    epochs each): load, summary and figures read it; the figures read only the curves they draw."""
    from nnlab.schema import QUANTILE_SEEDS
    from nnlab.sweep.store import PART, merge, record_tables, write_part

    out = tmp_path / "big"
    out.mkdir()
    (out / "experiment.toml").write_text(
        'name = "big"\nthreshold = 0.01\n[task]\nkind = "xor"\n[model]\nwidth = [2, 3, 4, 8]\n'
        "[train]\nlr = [0.03, 0.1, 0.3, 1.0, 3.0]\nepochs = 12\nseeds = 5000\n"
    )
    exp = load(out / "experiment.toml")
    E, S = 12, 5000
    rng = np.random.default_rng(1)
    (out / "parts").mkdir()
    for k, c in enumerate(exp.configs()):  # one part per configuration (a job of 5,000 seeds)
        curve = 0.5 * np.power.outer(rng.uniform(0.3, 0.95, S), np.arange(E + 1))
        curve[rng.random(S) < 0.01, 6:] = np.inf  # a few diverge
        columns = {
            "run_id": [c.run_id(s) for s in range(S)],
            "experiment": ["big"] * S,
            "task": ["xor"] * S,
            **{COLUMN_OF.get(a, a): [getattr(c, a)] * S for a in AXES},
            "seed": np.arange(S, dtype=np.int64),
            "n_params": np.full(S, 9),
            "final_loss": curve[:, -1],
            "best_loss": np.nanmin(np.where(np.isfinite(curve), curve, np.nan), axis=1),
            "final_grad_norm": np.full(S, 1e-3),
            "diverged": ~np.isfinite(curve[:, -1]),
            "seconds": np.full(S, 1e-3),
            **curve_statistics(curve, exp.threshold),
            "curve": curve,
        }
        write_part(columns, out / "parts" / f"job-{k}{PART}")
    record_tables(out, merge(out, exp.threshold))
    folder = open_folder(out, reps=50)  # nnlab.load's folder, with fewer bootstrap resamples
    assert len(folder.runs) == 20 * S and not folder.partial and not folder.warnings
    assert (folder.summary["runs"] == S).all()
    hits = np.isfinite(folder.runs["epochs_to_threshold"].astype(float))
    assert folder.summary["successes"].sum() == hits.sum() > 0
    asked = []
    reader = folder.curves_of
    object.__setattr__(folder, "curves_of", lambda ids: asked.append(len(ids)) or reader(ids))
    figs = folder.figures
    assert {"spread", "convergence", "seed_curves", "solved", "capacity"} <= set(figs)
    assert max(asked) == 20 * QUANTILE_SEEDS  # never every run's curve
    assert f"first {QUANTILE_SEEDS} seeds" in " ".join(nnlab.figures.notes(figs["convergence"]))
