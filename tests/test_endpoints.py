"""The landscape of a results folder: `nnlab landscape DIR` (nnlab.sweep.endpoints) and what summary,
report and figures make of its certificates.

One small sweep serves the module: a 4-unit tanh teacher on 32 points in 3 dimensions, students of width
1, 2 and 3 (16 seeds, 300 epochs, threshold 1e-4), certified with a small budget (OPTIONS): three jobs,
one per width. Its end points are strict minima (width 1: one optimum; width 2: two, a barrier between
them), valleys (width 2) and solved runs (all of width 3). The same runs certified again at a threshold
between the two optima of width 2 ("loosened") turn the lower one into solved runs: a barrier from the
other to the nearest solved network. Folders a test changes are copies.
The mathematics of the certificates is tested in tests/test_landscape.py; here, the pipeline.
"""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nnlab import analysis, figures, loss_of, report, sweep
from nnlab.cli import app
from nnlab.landscape import KINDS, Options
from nnlab.landscape.splitting import split_and_certify
from nnlab.network import network_from_flat
from nnlab.results import open_folder
from nnlab.schema import SPLIT_COLUMNS
from nnlab.sweep import endpoints
from nnlab.sweep.experiment import validate
from nnlab.sweep.runner import load_data
from tests.test_figures import THRESHOLD, data_axes, legend_labels, make_runs, tick_labels

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
OPTIONS = Options(lbfgs_iters=200, newton_iters=10)
BUDGET = ["--lbfgs-iters", "200", "--newton-iters", "10", "--quiet"]  # the CLI's spelling of OPTIONS
CONTRACT = [
    "run_id",
    "kind",
    "polished_loss",
    "grad_norm",
    "lambda_min",
    "lambda_max",
    "n_flat",
    "n_negative",
    "displacement",
    "optimum",
    "params",
]
OPTIMA = [
    "optimum",
    "polished_loss",
    "seeds",
    "run_id",
    "lambda_min",
    "lambda_max",
    "n_flat",
    "extent",
    "barrier_to_solved",
    "bezier_to_solved",
    "best_solved",
]


def experiment(save_networks=True, widths=(1, 2, 3), seeds=16, epochs=300):
    return validate(
        {
            "name": "landscape",
            "threshold": 1e-4,
            "save_networks": save_networks,
            "task": {"kind": "teacher", "n": 32, "dim": 3, "teacher_width": 4},
            "model": {"width": list(widths)},
            "train": {"lr": 0.1, "epochs": epochs, "seeds": seeds},
        }
    )


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The sweep's folder, not certified (tests copy it before certifying)."""
    out = tmp_path_factory.mktemp("swept") / "landscape"
    sweep.run(experiment(), out)
    return out


@pytest.fixture(scope="module")
def certified(swept, tmp_path_factory):
    """A copy of the sweep certified in process: (folder, what landscape() returned, progress calls)."""
    out = tmp_path_factory.mktemp("certified") / "landscape"
    shutil.copytree(swept, out)
    progress = []
    result = endpoints.landscape(out, options=OPTIONS, on_progress=lambda *a: progress.append(a))
    return out, result, progress


@pytest.fixture(scope="module")
def loosened(certified, tmp_path_factory):
    """The certified runs with a threshold between the losses of width 2's two optima, certified again."""
    out = tmp_path_factory.mktemp("loosened") / "landscape"
    shutil.copytree(certified[0], out)
    _, optima, _ = endpoints.read_endpoints(out)
    assert (optima["width"] == 2).sum() == 2, "the study changed: width 2 no longer has two optima"
    low, high = optima.loc[optima["width"] == 2, "polished_loss"]
    exp = dataclasses.replace(experiment(), threshold=float(np.sqrt(low * high)))
    assert sweep.run(exp, out)["sessions"][-1]["runs_trained"] == 0  # the runs are kept
    result = endpoints.landscape(out, options=OPTIONS)
    return out, result, None


@pytest.fixture(params=["certified", "loosened"])
def folder(request):
    return request.getfixturevalue(request.param)[0]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def copy(folder, tmp_path, name="copy"):
    out = tmp_path / name
    shutil.copytree(folder, out)
    return out


def assert_same_tables(a, b):
    """endpoints, optima and barriers of folders a and b are equal, to the last bit and in row order."""
    for x, y in zip(endpoints.read_endpoints(a), endpoints.read_endpoints(b), strict=True):
        assert x is not None and y is not None
        pd.testing.assert_frame_equal(x, y, check_exact=True)


def parts(out):
    return {p.name: p.stat().st_mtime_ns for p in (out / "landscape" / "parts").iterdir()}


def count_jobs(monkeypatch):
    """Make endpoints.certify_job record the configurations (widths) it certifies."""
    calls, real = [], endpoints.certify_job

    def counted(job, exp, options):
        calls.append(job.config.width)
        return real(job, exp, options)

    monkeypatch.setattr(endpoints, "certify_job", counted)
    return calls


def interrupt_second_write(monkeypatch):
    """The first part file is written, the second write is interrupted (Ctrl-C)."""
    real, written = endpoints.write_part, []

    def once(columns, path):
        if written:
            raise KeyboardInterrupt
        written.append(path.name)
        real(columns, path)

    monkeypatch.setattr(endpoints, "write_part", once)
    return written


def sizes_of(width):
    return [3, int(width), 1]  # the teacher task's inputs, one hidden layer, one output


def one_line(stream: str) -> bool:
    return len(stream.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------
# The tables


def test_endpoints_table_one_certificate_per_run(certified):
    out, result, progress = certified
    runs = sweep.read_results(out, curves=False).runs
    e, optima, _ = endpoints.read_endpoints(out)
    assert result["total"] == result["done"] == len(runs) == 48
    assert result["failures"] == [] and result["without_networks"] == 0
    assert sum(result["kinds"].values()) == 48 and result["optima"] == len(optima)
    assert progress[0] == (0, 48) and progress[-1] == (48, 48) and len(progress) == 4  # one call per job
    assert [c for c in CONTRACT if c not in e.columns] == []
    assert e["run_id"].is_unique and set(e["run_id"]) == set(runs["run_id"])
    assert set(e["kind"]) <= set(KINDS)
    counts = e["kind"].value_counts()
    assert result["kinds"] == counts.to_dict()
    # The study needs these to mean anything: minima, solved runs and another kind.
    assert counts["minimum"] > 0 and counts["solved"] > 0 and len(counts) >= 3
    # optimum: an id for a minimum, missing for every other end point.
    assert e["optimum"].dtype == "Int64" and e["n_flat"].dtype == "Int64"
    np.testing.assert_array_equal(e["optimum"].notna(), e["kind"] == "minimum")

    threshold = sweep.read_results(out, curves=False).experiment.threshold
    X, Y, _, _ = sweep.load_data(experiment())
    stored = sweep.read_networks(out, runs)
    joined = e.merge(runs[["run_id", "width"]], on="run_id")
    for width, g in joined.groupby("width"):
        # params are flattened like networks.parquet: the same length, and the network they give has
        # the polished loss; displacement and norms are measured from the stored network.
        start = np.stack([stored[i] for i in g["run_id"]])
        polished = np.stack(g["params"].to_numpy())
        assert polished.shape == start.shape
        net = network_from_flat(polished, sizes_of(width), bias=True, hidden="tanh", output="tanh")
        np.testing.assert_allclose(loss_of(net, X, Y), g["polished_loss"], rtol=1e-9)
        np.testing.assert_allclose(g["displacement"], np.linalg.norm(polished - start, axis=1), rtol=1e-9)
        np.testing.assert_allclose(g["norm_end"], np.linalg.norm(polished, axis=1), rtol=1e-12)
        np.testing.assert_allclose(
            g["start_loss"],
            loss_of(network_from_flat(start, sizes_of(width), bias=True, hidden="tanh", output="tanh"), X, Y),
            rtol=1e-9,
        )
    # The end point is the run's: its loss is the run's final loss, and a run SGD solved is solved as is.
    final = runs.set_index("run_id").loc[e["run_id"], "final_loss"].to_numpy()
    np.testing.assert_allclose(e["start_loss"], final, rtol=1e-9)
    assert (e.loc[final < threshold, "kind"] == "solved").all()
    assert (e.loc[final < threshold, "displacement"] == 0).all()
    solved = e[e["kind"] == "solved"]
    assert (solved["polished_loss"] < threshold).all()
    assert solved["lambda_min"].isna().all() and solved["n_flat"].isna().all()
    assert all(len(s) == 0 for s in solved["spectrum"])
    rest = e[e["kind"] != "solved"]
    assert (rest["polished_loss"] >= threshold).all()
    n_params = {1: 6, 2: 11, 3: 16}
    for row in rest.merge(runs[["run_id", "width"]], on="run_id").itertuples():
        # The stored spectrum: every eigenvalue (but the symmetry directions: none for tanh), ascending.
        lam = np.asarray(row.spectrum)
        assert len(lam) == n_params[row.width] - row.n_symmetry and row.n_symmetry == 0
        assert np.all(np.diff(lam) >= 0) and (lam[0], lam[-1]) == (row.lambda_min, row.lambda_max)
        assert row.n_negative == np.count_nonzero(lam < -OPTIONS.negative * np.abs(lam).max())
    minima = e[e["kind"] == "minimum"]
    assert (minima["lambda_min"] > 0).all() and (minima["n_flat"] == 0).all()
    assert (minima["grad_norm"] <= OPTIONS.gtol * minima["lambda_max"]).all()
    # The escape test of each failure: its first stream (the run's continuation in the survival
    # curves) ran escape_budget times the 300 epochs, and reached the threshold only if some stream did.
    failed = final >= threshold
    assert (e.loc[~failed, "escape_length"].isna()).all() and e.loc[~failed, "escape_first"].isna().all()
    assert (e.loc[failed, "escape_length"] == round(OPTIONS.escape_budget * 300)).all()
    first = e.loc[failed, "escape_first"]
    assert first.dropna().between(1, 300).all()
    assert (first.isna() | (e.loc[failed, "escape"] > 0)).all()
    assert (first.notna() | (e.loc[failed, "escape"] < 1)).all()


def test_optima_table_groups_the_minima(folder):
    out = folder
    runs = sweep.read_results(out, curves=False).runs
    e, optima, _ = endpoints.read_endpoints(out)
    axes = analysis.config_axes(runs)
    assert list(optima.columns) == [*axes, *OPTIMA]
    minima = e[e["kind"] == "minimum"].merge(runs[["run_id", *axes]], on="run_id")
    threshold = sweep.read_results(out, curves=False).experiment.threshold
    solved = runs[runs["final_loss"] < threshold]  # what SGD itself solved (all networks are saved)
    if out.parent.name.startswith("certified"):
        assert optima.groupby("width").size().max() >= 2  # a configuration with two distinct optima
    assert set(optima["width"]) == set(minima["width"])  # one row per distinct optimum and configuration
    for width, g in minima.groupby("width"):
        mine = optima[optima["width"] == width].sort_values("optimum")
        k = len(mine)
        assert set(g["optimum"]) == set(range(k))
        assert mine["optimum"].tolist() == list(range(k))
        assert mine["polished_loss"].is_monotonic_increasing  # ids in order of loss
        for o in mine.itertuples():
            members = g[g["optimum"] == o.optimum]
            assert o.seeds == len(members)
            # One optimum, one loss; its row is its lowest member.
            np.testing.assert_allclose(members["polished_loss"], o.polished_loss, rtol=1e-6)
            rep = members.loc[members["polished_loss"].idxmin()]
            assert o.run_id == rep["run_id"] and o.polished_loss == rep["polished_loss"]
            assert (o.lambda_min, o.lambda_max, o.n_flat) == (rep["lambda_min"], rep["lambda_max"], 0)
            mine_solved = solved[solved["width"] == width]
            assert np.isfinite(o.barrier_to_solved) == (len(mine_solved) > 0)
            assert np.isfinite(o.bezier_to_solved) == (len(mine_solved) > 0)
            if len(mine_solved):
                # The best network SGD reached: the lowest final loss below the threshold.
                assert o.best_solved == mine_solved.loc[mine_solved["final_loss"].idxmin(), "run_id"]
                # The optimized curve never rises above the straight line's bound.
                assert o.bezier_to_solved <= o.barrier_to_solved + 1e-12
            else:
                assert pd.isna(o.best_solved)


def test_barriers_table_is_consistent_with_the_optima(folder):
    out = folder
    e, optima, barriers = endpoints.read_endpoints(out)
    final_of_run = sweep.read_results(out, curves=False).runs.set_index("run_id")["final_loss"]
    assert {"barrier", "path", "bezier", "to", "to_run_id", "optimum", "width"} <= set(barriers.columns)
    expected = 0
    for _, mine in optima.groupby("width"):
        k = len(mine)
        expected += k * (k - 1) // 2 + k * int(mine["barrier_to_solved"].notna().all())
    assert len(barriers) == expected
    for row in barriers.itertuples():
        path = np.asarray(row.path)
        assert len(path) == endpoints.BARRIER_POINTS
        o = optima[(optima["width"] == row.width) & (optima["optimum"] == row.optimum)].iloc[0]
        if row.to == "solved":
            end = final_of_run[row.to_run_id]  # the network as SGD left it, not polished
            assert row.to_run_id == o.best_solved and row.barrier == o.barrier_to_solved
            assert row.bezier == o.bezier_to_solved
        else:
            other = optima[(optima["width"] == row.width) & (optima["optimum"] == int(row.to))].iloc[0]
            assert int(row.to) > row.optimum and row.to_run_id == other.run_id
            end = other.polished_loss
        # The straight path runs from the optimum to the other end (aligned: the same losses).
        np.testing.assert_allclose([path[0], path[-1]], [o.polished_loss, end], rtol=1e-9)
        assert row.barrier >= 0
        assert row.barrier == pytest.approx(path.max() - max(path[0], path[-1]), abs=1e-15)
        curve = np.asarray(row.bezier_path)
        np.testing.assert_allclose([curve[0], curve[-1]], [path[0], path[-1]], rtol=1e-9)
        assert 0 <= row.bezier <= row.barrier + 1e-12 and 0 <= row.bezier_t <= 1


def test_a_new_threshold_makes_new_jobs(certified, loosened):
    """The threshold is part of a job's key: the loosened folder was certified again, and the runs of
    width 2's lower optimum are solved there, those of the higher one still its minima."""
    (before, _, _), (after, result, _) = certified, loosened
    assert not set(parts(before)) & set(parts(after)) and len(parts(after)) == 3
    assert result["done"] == 48 and result["failures"] == []
    threshold = sweep.read_results(after, curves=False).experiment.threshold
    runs = sweep.read_results(after, curves=False).runs
    old, new = (
        endpoints.read_endpoints(f)[0].merge(runs[["run_id", "width"]]).set_index("run_id")
        for f in (before, after)
    )
    width2 = old[old["optimum"].notna() & (old["width"] == 2)]
    low = width2["optimum"] == 0
    assert low.any() and (~low).any()
    assert (new.loc[width2.index[low], "kind"] == "solved").all()
    assert (new.loc[width2.index[low], "polished_loss"] < threshold).all()
    assert (new.loc[width2.index[~low], "kind"] == "minimum").all()
    assert (new.loc[width2.index[~low], "optimum"] == 0).all()


# ------------------------------------------------------------------------------------------------
# Resuming, options, parallel jobs


def test_a_second_run_recomputes_nothing(certified, tmp_path, monkeypatch):
    out = copy(certified[0], tmp_path)
    before = parts(out)
    assert len(before) == 3 and all(re.fullmatch(r"job-[0-9a-f]{16}\.arrow", p) for p in before)

    def fail(*args):
        raise AssertionError("certified again")

    monkeypatch.setattr(endpoints, "certify_job", fail)
    progress = []
    result = endpoints.landscape(out, options=OPTIONS, on_progress=lambda *a: progress.append(a))
    assert result["done"] == result["total"] == 48 and result["failures"] == []
    assert progress == [(48, 48)]
    assert parts(out) == before
    assert_same_tables(out, certified[0])


def test_an_interrupted_run_resumes_to_the_same_tables(swept, certified, tmp_path, monkeypatch):
    out = copy(swept, tmp_path)
    written = interrupt_second_write(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        endpoints.landscape(out, options=OPTIONS)
    monkeypatch.undo()
    assert list(parts(out)) == written and endpoints.read_endpoints(out) == (None, None, None)
    # What a kill during a write leaves: a temporary file, never read, removed at the end.
    stray = out / "landscape" / "parts" / ".job-0123456789abcdef.arrow.999.tmp"
    stray.write_bytes(b"half a part")
    calls = count_jobs(monkeypatch)
    progress = []
    result = endpoints.landscape(out, options=OPTIONS, on_progress=lambda *a: progress.append(a))
    assert len(calls) == 2 and result["done"] == 48
    assert progress[0][0] == 16 and progress[-1] == (48, 48)
    assert len(parts(out)) == 3 and not stray.exists()
    assert_same_tables(out, certified[0])


def test_sigkill_then_rerun_gives_the_same_tables(swept, certified, tmp_path):
    """`nnlab landscape` killed with SIGKILL after its first part (the command is held there, so the
    kill always lands mid-way: jobs take a fraction of a second), then run again."""
    out = copy(swept, tmp_path)
    held = (
        "import sys, time\n"
        "from nnlab.sweep import endpoints\n"
        "from nnlab.cli import app\n"
        "real = endpoints.write_part\n"
        "def write_then_wait(columns, path):\n"
        "    real(columns, path)\n"
        "    time.sleep(120)\n"
        "endpoints.write_part = write_then_wait\n"
        "app(sys.argv[1:], prog_name='nnlab')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["landscape", str(out), *BUDGET]
    proc = subprocess.Popen([sys.executable, "-c", held, *args], env=env, cwd=tmp_path)
    folder = out / "landscape" / "parts"
    deadline = time.monotonic() + 60
    try:
        while not (folder.is_dir() and list(folder.glob("job-*.arrow"))):
            assert proc.poll() is None and time.monotonic() < deadline, "no part written"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert len(list(folder.glob("job-*.arrow"))) == 1 and not (out / "endpoints.parquet").exists()
    done = subprocess.run(
        [sys.executable, "-m", "nnlab", *args], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert one_line(done.stdout) and done.stdout.startswith("48/48 end points certified")
    assert_same_tables(out, certified[0])


def test_other_options_make_new_jobs_and_retire_the_old_parts(certified, tmp_path, monkeypatch):
    out = copy(certified[0], tmp_path)
    old = set(parts(out))
    recorded = json.loads((out / "landscape" / "options.json").read_text())
    assert recorded == {**dataclasses.asdict(OPTIONS), "threshold": experiment().threshold}
    stricter = dataclasses.replace(OPTIONS, gtol=1e-9)
    # Interrupted: the old parts and tables stay until the new run completes.
    interrupt_second_write(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        endpoints.landscape(out, options=stricter)
    monkeypatch.undo()
    assert len(set(parts(out)) - old) == 1 and old <= set(parts(out))
    assert_same_tables(out, certified[0])
    calls = count_jobs(monkeypatch)
    endpoints.landscape(out, options=stricter)
    assert len(calls) == 2
    assert len(parts(out)) == 3 and not set(parts(out)) & old
    recorded = json.loads((out / "landscape" / "options.json").read_text())
    assert recorded == {**dataclasses.asdict(stricter), "threshold": experiment().threshold}
    # Back to the first options: their jobs again (their parts were removed), to the same tables.
    calls.clear()
    endpoints.landscape(out, options=OPTIONS)
    assert sorted(calls) == [1, 2, 3] and set(parts(out)) == old
    assert_same_tables(out, certified[0])


def test_fresh_discards_the_stored_certificates(certified, tmp_path, monkeypatch):
    out = copy(certified[0], tmp_path)
    calls = count_jobs(monkeypatch)
    result = runner.invoke(app, ["landscape", str(out), *BUDGET])
    assert result.exit_code == 0 and calls == []
    result = runner.invoke(app, ["landscape", str(out), "--fresh", *BUDGET])
    assert result.exit_code == 0, result.output
    assert sorted(calls) == [1, 2, 3]
    assert_same_tables(out, certified[0])


def test_two_loky_workers_give_the_same_tables(swept, certified, tmp_path):
    out = copy(swept, tmp_path)
    result = runner.invoke(app, ["landscape", str(out), "--jobs", "2", *BUDGET])
    assert result.exit_code == 0, result.output
    assert_same_tables(out, certified[0])


# ------------------------------------------------------------------------------------------------
# The command line


def test_cli_prints_one_summary_line(certified, tmp_path):
    out = copy(certified[0], tmp_path)
    e, optima, _ = endpoints.read_endpoints(out)
    result = runner.invoke(app, ["landscape", str(out), *BUDGET])
    assert result.exit_code == 0 and result.stderr == ""
    assert one_line(result.stdout)
    line = result.stdout.strip()
    assert line.startswith(f"48/48 end points certified in {out}/ (")
    assert line.endswith(
        "endpoints.parquet, optima.parquet, barriers.parquet, splits.parquet; "
        "this session: 0 certified, 48 reused, 0 failed"
    )
    for kind, n in e["kind"].value_counts().items():
        assert f"{kind} {n}" in line
    assert f"; {len(optima)} distinct optima)" in line


def test_a_failing_job_is_reported_and_the_others_are_kept(swept, certified, tmp_path, monkeypatch):
    out = copy(swept, tmp_path)
    real = endpoints.certify_job

    def flaky(job, exp, options):
        if job.config.width == 2:
            raise RuntimeError("boom")
        return real(job, exp, options)

    monkeypatch.setattr(endpoints, "certify_job", flaky)
    result = runner.invoke(app, ["landscape", str(out), *BUDGET])
    assert result.exit_code == 1
    assert result.stderr.strip() == "nnlab: job failed: depth=1 width=2 lr=0.1 (16 runs): RuntimeError: boom"
    assert one_line(result.stdout) and result.stdout.startswith("32/48 end points certified")
    e = endpoints.read_endpoints(out)[0]
    assert len(e) == 32 and len(parts(out)) == 2
    # The summary says what is missing; a rerun certifies only the failed job's end points.
    s = open_folder(out)
    assert s.warnings == ("16 runs have no certified end point yet; rerun `nnlab landscape` on the folder",)
    assert s.summary.loc[s.summary["width"] == 2, "certified"].tolist() == [0]
    monkeypatch.setattr(endpoints, "certify_job", real)
    calls = count_jobs(monkeypatch)
    assert runner.invoke(app, ["landscape", str(out), *BUDGET]).exit_code == 0
    assert calls == [2]
    assert_same_tables(out, certified[0])


def test_cli_without_saved_networks_says_how_to_get_them(tmp_path):
    out = tmp_path / "bare"
    sweep.run(experiment(save_networks=False, widths=(2,), seeds=2, epochs=5), out)
    result = runner.invoke(app, ["landscape", str(out), "--quiet"])
    assert result.exit_code == 2 and result.stdout == ""
    assert one_line(result.stderr) and "Traceback" not in result.output
    assert (
        result.stderr.startswith(f"nnlab: {out}: no saved networks")
        and "save_networks = true" in result.stderr
    )
    assert not (out / "landscape").exists()


def test_cli_bad_input_gets_one_line_and_exit_2(tmp_path):
    missing = str(tmp_path / "nope")  # an option check that let a bad value through would fail here
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "thesis.tex").write_text("x")
    cases = [
        ([missing], f"nnlab: {missing}: no such results folder"),
        ([str(tmp_path / "thesis")], "nnlab: "),
        ([missing, "--gtol", "-1"], "nnlab: --gtol: expected a number > 0"),
        ([missing, "--flat", "nan"], "nnlab: --flat: expected a number > 0"),
        ([missing, "--negative", "inf"], "nnlab: --negative: expected a number > 0"),
        ([missing, "--valley", "0"], "nnlab: --valley: expected a number > 0"),
        ([missing, "--lbfgs-iters", "0"], "nnlab landscape: Invalid value for '--lbfgs-iters'"),
        ([missing, "--newton-iters", "x"], "nnlab landscape: Invalid value for '--newton-iters'"),
        ([missing, "--jobs", "0"], "nnlab landscape: Invalid value for '--jobs'"),
        ([missing, "--scheduler", "tcp://127.0.0.1:9"], "nnlab: --scheduler: only with --backend dask"),
        ([], "nnlab landscape: Missing argument"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["landscape", *args])
        assert result.exit_code == 2, (args, result.output)
        assert one_line(result.stderr) and result.stdout == "", (args, result.output)
        assert result.stderr.startswith(message) and "Traceback" not in result.output, (args, result.stderr)
    foreign = runner.invoke(app, ["landscape", str(tmp_path / "thesis")])
    assert "holds no nnlab results" in foreign.stderr
    assert not (tmp_path / "thesis" / "landscape").exists()


def test_cli_ctrl_c_says_what_is_kept(tmp_path, monkeypatch):
    def interrupted(out, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(endpoints, "landscape", interrupted)
    result = runner.invoke(app, ["landscape", str(tmp_path), "--quiet"])
    assert result.exit_code != 0 and one_line(result.stderr)
    assert result.stderr.startswith("nnlab: interrupted: ") and "rerun to resume" in result.stderr


def test_cli_help_lists_the_options():
    result = runner.invoke(app, ["landscape", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in (
        "--jobs",
        "--backend",
        "--scheduler",
        "--fresh",
        "--quiet",
        "--lbfgs-iters",
        "--newton-iters",
        "--gtol",
        "--flat",
        "--negative",
        "--valley",
    ):
        assert option in result.output, option
    assert "endpoints.parquet" in result.output
    assert "landscape" in runner.invoke(app, ["--help"], terminal_width=200).output


# ------------------------------------------------------------------------------------------------
# Summary, report and figures


def per_width(e, runs):
    return e.merge(runs[["run_id", "width"]], on="run_id").groupby("width")


def test_summary_counts_the_certified_end_points(certified, swept):
    out = certified[0]
    e, optima, _ = endpoints.read_endpoints(out)
    runs = sweep.read_results(out, curves=False).runs
    result = runner.invoke(app, ["summary", str(out), "--format", "csv"])
    assert result.exit_code == 0 and result.stderr == ""
    table = pd.read_csv(StringIO(result.stdout))
    ends = [f"end_{k}" for k in KINDS]
    assert {"certified", *ends, "optima"} <= set(table.columns) and "optima_estimate" not in table
    assert ends == [c for c in table.columns if c.startswith("end_")]
    for width, g in per_width(e, runs):
        row = table[table["width"] == width].iloc[0]
        assert row["certified"] == len(g) == row[ends].sum() == row["runs"]
        assert [row[f"end_{k}"] for k in KINDS] == [int((g["kind"] == k).sum()) for k in KINDS]
        assert row["optima"] == (optima["width"] == width).sum() == g["optimum"].nunique()
        assert row["successes"] <= row["end_solved"]  # solved by SGD: solved (polishing only helps)
    text = runner.invoke(app, ["summary", str(out), "--wide"]).stdout
    assert "certified" in text and "estimated" not in text
    assert "end points: solved/min/degen/saddle/valley/unconv" in text
    md = runner.invoke(app, ["summary", str(out), "--format", "markdown", "--wide"]).stdout
    assert "| optima |" in md and " certified |" in md
    # Not certified: the old grouping, labelled as an estimate.
    plain = pd.read_csv(StringIO(runner.invoke(app, ["summary", str(swept), "--format", "csv"]).stdout))
    assert "optima_estimate" in plain and "certified" not in plain and "end_minimum" not in plain
    wide = runner.invoke(app, ["summary", str(swept), "--wide"]).stdout
    assert "estimated" in wide and "certified" not in wide


# The report's words for the kinds, singular or plural.
WORDS = {
    "solved": "solved",
    "strict local minimum": "minimum",
    "strict local minima": "minimum",
    "degenerate": "degenerate",
    "saddle": "saddle",
    "saddles": "saddle",
    "valley": "valley",
    "valleys": "valley",
    "unconverged": "unconverged",
}


def test_report_says_what_the_end_points_are(certified, swept, tmp_path):
    out = copy(certified[0], tmp_path)
    e, optima, _ = endpoints.read_endpoints(out)
    runs = sweep.read_results(out, curves=False).runs
    result = runner.invoke(app, ["report", str(out), "--figure-format", "png"])
    assert result.exit_code == 0, result.output
    text = (out / "report.md").read_text()
    assert text.index("## Summary") < text.index("## What the end points are") < text.index("## Verdicts")
    whole = text.split("## What the end points are")[1].split("## Verdicts")[0]
    section, more = whole.split("### One more unit")
    # One line per optimum split, saying what one more unit does.
    splits = [line for line in more.splitlines() if line.startswith("- ")]
    assert len(splits) == len(optima) and all("split: " in line for line in splits)
    assert all(("way down" in line) or ("keeps it" in line) for line in splits)
    assert "200 L-BFGS iterations" in section and "1e-08" in section  # options.json quoted
    lines = [line for line in section.splitlines() if line.startswith("- ")]
    groups = dict(list(per_width(e, runs)))
    assert len(lines) == len(groups)
    for line, (width, g) in zip(lines, groups.items(), strict=True):
        assert line.startswith(f"- depth 1, width {width}: ")
        if (g["kind"] == "solved").all():
            said = {"solved": len(g)} if f"all {len(g)} end points solved" in line else {}
        else:
            head = line.split(" distinct optim")[0]
            pattern = rf"(\d+) ({'|'.join(sorted(WORDS, key=len, reverse=True))})\b"
            said = {WORDS[w]: int(n) for n, w in re.findall(pattern, head)}
            assert f": {len(g)} end points: " in line
        assert said == g["kind"].value_counts().to_dict(), line
        k = int((optima["width"] == width).sum())
        named = {0: "distinct optim", 1: " 1 distinct optimum: "}.get(k, f" {k} distinct optima: ")
        assert (named in line) == bool(k), line
    for stem in ("endpoints", "spectra", "barriers"):
        assert (out / "figures" / f"{stem}.png").is_file(), stem
        assert f"![{stem}](figures/{stem}.png)" in text
    # The failures' SGD continuations count in the survival curves, and the report says so.
    assert "followed into its continuation" in text.split("## Success over time")[1]
    # Without certificates: no such section, and the estimate is called one.
    plain = report.report(open_folder(swept), [])
    assert "## What the end points are" not in plain and "optima (uncertified estimate)" in plain


def test_figures_command_draws_the_landscape_figures(certified, tmp_path):
    out = copy(certified[0], tmp_path)
    result = runner.invoke(app, ["figures", str(out), "--figure-format", "svg"])
    assert result.exit_code == 0, result.output
    stems = sorted(p.stem for p in (out / "figures").glob("*.svg"))
    assert {"endpoints", "spectra", "barriers"} <= set(stems)
    plain = ["spread", "ecdf", "convergence", "seed_curves", "solved", "survival", "capacity"]
    assert stems == sorted([*plain, "endpoints", "spectra", "barriers", "landscape_slices"])


def test_figures_for_draws_spectra_and_barriers_only_when_they_apply(certified):
    out = certified[0]
    s = open_folder(out)
    runs, e, optima, barriers = s.runs, s.endpoints, s.optima, s.barriers
    threshold = s.experiment.threshold

    def keys(kinds):
        ep = e[e["kind"].isin(kinds)]
        sub = runs[runs["run_id"].isin(ep["run_id"])]
        mine = optima[optima["run_id"].isin(ep["run_id"])] if "minimum" in kinds else optima.iloc[:0]
        bars = barriers if "minimum" in kinds else barriers.iloc[:0]
        summary = analysis.summarize(sub, threshold, endpoints=ep)
        figs = figures.figures_for(sub, None, summary, threshold, landscape=(ep, mine, bars))
        return [k for k in figs if k in ("endpoints", "spectra", "barriers")]

    others = sorted(set(e["kind"]) - {"solved", "minimum"})  # unsolved, and no optimum among them
    assert others and "minimum" in set(e["kind"])
    assert keys(["solved"]) == ["endpoints"]
    assert keys(["solved", *others]) == ["endpoints", "spectra"]
    assert keys(list(KINDS)) == ["endpoints", "spectra", "barriers"]
    # Without certificates, none of them.
    plain = figures.figures_for(runs, None, analysis.summarize(runs, threshold), threshold)
    assert not {"endpoints", "spectra", "barriers"} & set(plain)


def test_endpoints_figure_stacks_the_kinds_per_width():
    runs = make_runs(depths=(1, 2), seeds=12)  # widths 16, 2, 4 (unsorted), two depths
    kinds = np.random.default_rng(0).choice(KINDS, size=len(runs), p=[0.3, 0.3, 0.1, 0.1, 0.1, 0.1])
    ep = pd.DataFrame({"run_id": runs["run_id"], "kind": kinds})
    optimum = [s % 2 if k == "minimum" else pd.NA for k, s in zip(kinds, runs["seed"], strict=True)]
    ep["optimum"] = pd.array(optimum, dtype="Int64")
    # Depth 2, width 16 not certified at all: its bars are empty, not a failure.
    uncertified = runs.loc[(runs["depth"] == 2) & (runs["width"] == 16), "run_id"]
    ep = ep[~ep["run_id"].isin(uncertified)]
    summary = analysis.summarize(runs, THRESHOLD, endpoints=ep)
    fig = figures.endpoints(summary)
    axes = data_axes(fig)
    assert [ax.get_title() for ax in axes] == ["depth 1", "depth 2"]
    assert legend_labels(fig) == list(KINDS)
    for ax, depth in zip(axes, (1, 2), strict=True):
        assert tick_labels(ax) == ["2", "4", "16"]
        assert len(ax.containers) == len(KINDS) and all(len(c) == 3 for c in ax.containers)
        assert len(ax.patches) == 3 * len(KINDS)
        lo, hi = ax.get_ylim()
        assert lo == 0 and 1 <= hi <= 1.1
        rows = summary[summary["depth"] == depth].set_index("width").loc[[2, 4, 16]]
        heights = np.array([[p.get_height() for p in c] for c in ax.containers])  # (kind, width)
        for k, kind in enumerate(KINDS):
            with np.errstate(invalid="ignore"):
                share = np.nan_to_num(rows[f"end_{kind}"] / rows["certified"])
            np.testing.assert_allclose(heights[k], share)
        stacked = heights.sum(axis=0)
        np.testing.assert_allclose(stacked, [1, 1, 0 if depth == 2 else 1])
        # The distinct optima above the bars that have any.
        assert [t.get_text() for t in ax.texts] == [str(int(n)) for n in rows["optima"] if n > 0]


def test_spectra_one_panel_per_configuration_not_solved(certified):
    out = certified[0]
    e, _, _ = endpoints.read_endpoints(out)
    runs = sweep.read_results(out, curves=False).runs
    assert figures.spectra(e[e["kind"] == "solved"], runs) is None
    fig = figures.spectra(e, runs)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    unsolved = e[e["kind"] != "solved"].merge(runs[["run_id", "width"]], on="run_id")
    assert len(shown) == unsolved["width"].nunique()
    for ax, (width, g) in zip(shown, unsolved.groupby("width"), strict=True):
        assert f"width {width}" in ax.get_title()
        assert ax.get_yscale() == "log"
        points = sum(len(c.get_offsets()) for c in ax.collections)
        assert points == sum(len(s) for s in g["spectrum"])  # every eigenvalue of every end point


def test_barriers_figure_one_panel_per_configuration(certified):
    _, optima, barriers = endpoints.read_endpoints(certified[0])
    assert figures.barriers(barriers.iloc[:0], optima) is None
    fig = figures.barriers(barriers, optima)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == barriers["width"].nunique()
    for ax, (_, g) in zip(shown, barriers.groupby("width"), strict=True):
        # Each path twice: the trained Bezier curve (solid), then the straight line (dashed).
        assert len(ax.lines) == 2 * len(g)
        for k, (curve, path) in enumerate(zip(g["bezier_path"], g["path"], strict=True)):
            np.testing.assert_array_equal(ax.lines[2 * k].get_ydata(), curve)
            np.testing.assert_array_equal(ax.lines[2 * k + 1].get_ydata(), path)
            assert ax.lines[2 * k + 1].get_linestyle() == "--"


def test_endpoint_counts_of_one_configuration():
    e = pd.DataFrame(
        {
            "kind": ["minimum", "minimum", "solved", "valley", "minimum", "saddle"],
            "optimum": pd.array([0, 1, None, None, 0, None], dtype="Int64"),
        }
    )
    counts = analysis.endpoint_counts(e)
    assert counts == {
        "certified": 6,
        "end_solved": 1,
        "end_minimum": 3,
        "end_degenerate": 0,
        "end_saddle": 1,
        "end_valley": 1,
        "end_unconverged": 0,
        "optima": 2,
    }


# ------------------------------------------------------------------------------------------------
# Certificates that no longer describe the folder's runs


def test_certificates_of_another_threshold_are_not_reported_silently(certified, tmp_path):
    out = copy(certified[0], tmp_path)
    runs = sweep.read_results(out, curves=False).runs
    looser = dataclasses.replace(experiment(), threshold=float(1.01 * runs["final_loss"].max()))
    assert sweep.run(looser, out)["sessions"][-1]["runs_trained"] == 0
    s = open_folder(out)
    # Every run solved at the new threshold; the certificates, classified at the old one, are left
    # out rather than mixed in, and the user is told why.
    assert (s.summary["successes"] == s.summary["runs"]).all()
    assert "certified" not in s.summary and "optima_estimate" in s.summary
    assert any("certified at threshold" in w and "nnlab landscape" in w for w in s.warnings)


def test_certificates_of_discarded_runs_are_not_reported(certified, tmp_path):
    out = copy(certified[0], tmp_path)
    sweep.run(experiment(epochs=20), out, fresh=True)  # other runs: their ids differ
    s = open_folder(out)
    assert "certified" not in s.summary and "optima_estimate" in s.summary
    assert "## What the end points are" not in report.report(s, [])


def test_splits_table_splits_every_unit_of_each_optimum(certified):
    out = certified[0]
    _, optima, _ = endpoints.read_endpoints(out)
    splits = pd.read_parquet(out / "splits.parquet")
    axes = analysis.config_axes(optima)
    assert list(splits.columns) == [*axes, *SPLIT_COLUMNS]
    # One row per hidden unit of each optimum (depth 1 here), the embedding at the optimum's loss.
    assert len(splits) == sum(min(int(w), endpoints.SPLIT_UNITS) for w in optima["width"])
    merged = splits.merge(optima[["width", "optimum", "polished_loss"]], on=["width", "optimum"])
    np.testing.assert_array_equal(merged["loss"], merged["polished_loss_y"])
    assert set(splits["kind"]) <= set(analysis.KINDS) and (splits["a"] == endpoints.SPLIT_A).all()
    # Polishing never climbs; a saddle says its order.
    assert (splits["polished_loss"] <= splits["loss"] * (1 + 1e-9)).all()
    saddles = splits[splits["kind"] == "saddle"]
    assert (saddles["saddle_order"] != 0).all()
    # The table's row is split_and_certify of the representative's polished point.
    row = splits.iloc[0]
    e = endpoints.read_endpoints(out)[0].set_index("run_id")
    sizes = [3, int(row["width"]), 1]
    net = network_from_flat(np.asarray(e.loc[row["run_id"], "params"])[None, :], sizes)
    X, Y, _, _ = load_data(sweep.read_results(out, curves=False).experiment)
    again = split_and_certify(net, X, Y, threshold=1e-4, unit=int(row["unit"]), a=0.5, options=OPTIONS)
    assert again.kind[0] == row["kind"]


def test_slices_start_at_the_initial_network_and_centre_on_the_certified_point(certified):
    from nnlab.landscape import slices as pictures

    out = certified[0]
    s = open_folder(out)
    table = endpoints.slices(s.experiment, s.runs, s.endpoints)
    # One per kind per configuration, the lowest loss of each.
    kinds = s.endpoints.merge(s.runs[["run_id", "width"]], on="run_id").groupby("width")["kind"].nunique()
    assert len(table) == min(endpoints.SLICES, int(kinds.sum())) and table["drawn"].all()
    initial = s.runs.set_index("run_id")["initial_loss"]
    for r in table.itertuples():
        # t = 0 is the run's initial network, reproduced from its seed; t = 1 its certified point.
        assert r.line[0] == pytest.approx(initial[r.run_id], rel=1e-12)
        assert r.line[-1] == pytest.approx(r.polished_loss, rel=1e-9)
        n = len(r.alpha)
        assert n == 21 and r.plane.reshape(n, n)[n // 2, n // 2] == pytest.approx(r.polished_loss, rel=1e-9)
    # Filter normalization: each unit's direction has the norm of its own incoming weights; biases 0.
    wide = s.runs.loc[s.runs["width"] == 3, "run_id"]
    flat = np.asarray(s.endpoints.set_index("run_id").loc[wide.iloc[0], "params"])
    net = network_from_flat(flat[None, :], [3, 3, 1])
    d = network_from_flat(pictures.filter_normalized(net, np.random.default_rng(0))[None, :], [3, 3, 1])
    for W, D in zip(net.weights, d.weights, strict=True):
        np.testing.assert_allclose(np.linalg.norm(D, axis=1), np.linalg.norm(W, axis=1), rtol=1e-12)
    assert all(not b.any() for b in d.biases)
    fig = figures.landscape_slices(table)
    panels = [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    assert len(panels) == 2 * len(table) and all(a.get_xlabel() for a in panels)
    assert figures.landscape_slices(table.assign(drawn=False)) is None
