"""The sweep runner: tables, resume after SIGKILL, determinism across --jobs, refusals, CLI errors."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nnlab import sweep
from nnlab.cli import app
from nnlab.sweep.experiment import ExperimentError, load
from tests.conftest import write_file_experiment

ROOT = Path(__file__).resolve().parent.parent
TOML = """name = "tiny"
threshold = 1e-3
[task]
kind = "xor"
[model]
width = [2, 4]
[train]
lr = [0.1, 0.3]
epochs = {epochs}
seeds = {seeds}
"""


def write(tmp_path, epochs=30, seeds=40):
    path = tmp_path / "tiny.toml"
    path.write_text(TOML.format(epochs=epochs, seeds=seeds))
    return path


def table(out):
    runs = pd.read_parquet(out / "runs.parquet").drop(columns="seconds")
    curves = pd.read_parquet(out / "curves.parquet")
    return runs.sort_values("run_id").reset_index(drop=True), curves.sort_values(
        ["run_id", "epoch"]
    ).reset_index(drop=True)


def test_run_writes_the_contract_tables(tmp_path):
    exp = load(write(tmp_path))
    manifest = sweep.run(exp, tmp_path / "out")
    runs, curves = table(tmp_path / "out")
    assert manifest["runs_done"] == manifest["runs_total"] == 160
    assert runs["run_id"].is_unique and len(runs) == 160
    for column in [
        "run_id",
        "experiment",
        "task",
        "depth",
        "width",
        "hidden",
        "output",
        "lr",
        "batch_size",
        "epochs",
        "seed",
        "n_params",
        "final_loss",
        "best_loss",
        "epochs_to_threshold",
        "final_grad_norm",
        "diverged",
    ]:
        assert column in runs.columns, column
    assert len(curves) == 160 * 31 and set(curves.columns) == {"run_id", "epoch", "loss"}
    assert (runs["best_loss"] <= runs["final_loss"]).all()
    for name in ("experiment.toml", "manifest.json"):
        assert (tmp_path / "out" / name).is_file()


def test_rerun_resumes_and_jobs_do_not_change_numbers(tmp_path):
    exp = load(write(tmp_path))
    sweep.run(exp, tmp_path / "a")
    parts = sorted((tmp_path / "a" / "parts").iterdir())
    again = sweep.run(exp, tmp_path / "a")
    assert again["runs_done"] == 160 and sorted((tmp_path / "a" / "parts").iterdir()) == parts
    assert [x["runs_trained"] for x in again["sessions"]] == [160, 0]
    sweep.run(exp, tmp_path / "b", jobs=2)
    for x, y in zip(table(tmp_path / "a"), table(tmp_path / "b"), strict=True):
        pd.testing.assert_frame_equal(x, y)
    # More seeds: only the new runs are trained; the old ones keep their numbers.
    bigger = load(write(tmp_path, seeds=50))
    sweep.run(bigger, tmp_path / "a")
    runs, _ = table(tmp_path / "a")
    old, _ = table(tmp_path / "b")
    assert len(runs) == 200
    pd.testing.assert_frame_equal(runs[runs["run_id"].isin(old["run_id"])].reset_index(drop=True), old)


def test_changed_experiment_is_refused_unless_fresh(tmp_path):
    sweep.run(load(write(tmp_path)), tmp_path / "out")
    changed = load(write(tmp_path, epochs=31))
    with pytest.raises(ExperimentError, match="no longer defines"):
        sweep.run(changed, tmp_path / "out")
    assert sweep.run(changed, tmp_path / "out", fresh=True)["runs_done"] == 160


def test_foreign_folder_is_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(ExperimentError, match="holds no nnlab results"):
        sweep.run(load(write(tmp_path)), tmp_path / "mine")


def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path):
    path = write(tmp_path, epochs=400, seeds=96)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "nnlab", "run", str(path), "--quiet", "--out"]
    proc = subprocess.Popen([*cmd, str(tmp_path / "killed")], env=env, cwd=tmp_path)
    parts = tmp_path / "killed" / "parts"
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline and len(list(parts.glob("job-*.arrow"))) < 2 if parts.exists() else True
    ):
        if proc.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    killed_early = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = len(list(parts.glob("job-*.arrow")))
    assert stored >= 1
    subprocess.run([*cmd, str(tmp_path / "killed")], env=env, cwd=tmp_path, check=True)
    subprocess.run([*cmd, str(tmp_path / "whole")], env=env, cwd=tmp_path, check=True)
    for x, y in zip(table(tmp_path / "killed"), table(tmp_path / "whole"), strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert killed_early or stored == 12  # the run was really interrupted, or had already finished


def test_cli_run_and_its_errors(tmp_path):
    runner = CliRunner()
    path = write(tmp_path)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "o"), "--set", "train.epochs=5"])
    assert result.exit_code == 0, result.output
    assert "160/160 runs" in result.output
    cases = [
        (["run", str(tmp_path / "missing.toml")], "experiment: no such file"),
        (
            ["run", str(path), "--set", "model.width=0", "--out", str(tmp_path / "p")],
            "model.width: expected an int",
        ),
        (["run", str(path), "--set", "epochs=5"], "did you mean 'train.epochs'"),
        (["run", str(path), "--scheduler", "tcp://127.0.0.1:9"], "--scheduler: only with --backend dask"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output


def test_dask_local_cluster_gives_the_same_tables(tmp_path):
    pytest.importorskip("distributed")
    exp = load(write(tmp_path, epochs=10))
    sweep.run(exp, tmp_path / "local")
    manifest = sweep.run(exp, tmp_path / "dask", jobs=2, backend="dask")
    assert manifest["backend"] == "dask" and manifest["runs_done"] == 160
    for x, y in zip(table(tmp_path / "local"), table(tmp_path / "dask"), strict=True):
        pd.testing.assert_frame_equal(x, y)


def test_unreachable_scheduler_exits_2(tmp_path):
    pytest.importorskip("distributed")
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(write(tmp_path)),
            "--backend",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "--scheduler: cannot reach tcp://127.0.0.1:9" in result.output
    assert not (tmp_path / "o").exists()  # a failed connection leaves no folder behind


def test_a_failing_job_is_reported_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = sweep.run_job

    def flaky(job, exp, threads):
        if job.config.width == 4 and job.config.lr == 0.3:
            raise RuntimeError("boom")
        return real(job, exp, threads)

    monkeypatch.setattr(sweep.runner, "run_job", flaky)
    manifest = sweep.run(load(write(tmp_path, epochs=5)), tmp_path / "out")
    assert len(manifest["failures"]) == 2  # 40 seeds: two jobs of that configuration
    assert "width=4 lr=0.3" in manifest["failures"][0] and "RuntimeError: boom" in manifest["failures"][0]
    assert manifest["runs_done"] == 120
    # The CLI exits 1 when a job failed; a rerun then trains only the missing runs.
    monkeypatch.setattr(sweep.runner, "run_job", real)
    again = sweep.run(load(write(tmp_path, epochs=5)), tmp_path / "out")
    assert again["runs_done"] == 160 and [x["runs_trained"] for x in again["sessions"]] == [120, 40]


def test_a_new_threshold_keeps_the_runs_and_updates_epochs_to_threshold(tmp_path):
    out = tmp_path / "out"
    sweep.run(load(write(tmp_path)), out)
    before, curves = table(out)
    looser = dataclasses.replace(load(write(tmp_path)), threshold=0.1)
    assert sweep.run(looser, out)["sessions"][-1]["runs_trained"] == 0
    after, _ = table(out)
    first = curves[curves["loss"] < 0.1].groupby("run_id")["epoch"].min()
    expected = after["run_id"].map(first).astype("Int64").rename("epochs_to_threshold")
    pd.testing.assert_series_equal(after["epochs_to_threshold"], expected)
    assert after["epochs_to_threshold"].notna().sum() > before["epochs_to_threshold"].notna().sum()


def test_read_results_repairs_a_merge_cut_short(tmp_path):
    out = tmp_path / "out"
    sweep.run(load(write(tmp_path)), out)
    runs, curves = table(out)
    (out / "curves.parquet").unlink()
    got = sweep.read_results(out)
    assert len(got.curves) == len(curves) and len(got.runs) == len(runs)


def test_manifest_is_written_when_a_session_starts(tmp_path, monkeypatch):
    out = tmp_path / "out"

    def killed(*args, **kwargs):
        assert (out / "manifest.json").is_file()  # the session is on record before any job ends
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep.runner, "write_part", killed)
    with pytest.raises(KeyboardInterrupt):
        sweep.run(load(write(tmp_path)), out)
    monkeypatch.undo()
    (out / "parts" / "job-x.arrow").write_bytes(b"")  # the first session stored nothing
    with pytest.raises(ExperimentError, match="job-x.arrow: unreadable part file"):
        sweep.run(load(write(tmp_path)), out)


def test_a_killed_session_stays_in_the_manifest(tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = []

    def once(columns, path):
        if calls:
            raise KeyboardInterrupt
        calls.append(path)
        original(columns, path)

    original = sweep.write_part
    monkeypatch.setattr(sweep.runner, "write_part", once)
    with pytest.raises(KeyboardInterrupt):
        sweep.run(load(write(tmp_path)), out)
    monkeypatch.undo()
    stored = len(sweep.stored_run_ids(out))
    # The interrupted session is on record as it ended: its end, what it stored, the flag.
    interrupted = json.loads((out / "manifest.json").read_text())
    assert interrupted["runs_done"] == stored > 0 and interrupted["end"] is not None
    (only,) = interrupted["sessions"]
    assert only["interrupted"] and only["runs_trained"] == stored and only["end"] == interrupted["end"]
    manifest = sweep.run(load(write(tmp_path)), out)
    first, second = manifest["sessions"]
    assert first == only
    assert second["end"] is not None and second["runs_trained"] == 160 - stored > 0
    assert second["runs_reused"] == stored and second["runs_failed"] == 0 and not second["interrupted"]


def test_file_task_is_identified_by_content_and_read_beside_its_experiment(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    path = write_file_experiment(data, "a,y\n-1,-0.5\n0,0.1\n1,0.5\n", "[train]\nepochs = 5\nseeds = 2\n")
    monkeypatch.chdir(tmp_path)  # not the experiment's folder: the path is read beside it
    exp = load(path)
    assert exp.task["path"] == str((data / "d.csv").resolve()) and len(exp.task["sha256"]) == 64
    sweep.run(exp, tmp_path / "out")
    # The same content elsewhere is the same data: the same runs.
    (tmp_path / "copy.csv").write_bytes((data / "d.csv").read_bytes())
    moved = load(path, ["task.path=../copy.csv"])
    assert [c.run_id(0) for c in moved.configs()] == [c.run_id(0) for c in exp.configs()]
    # Changed content: the stored runs are refused, naming what changed, and the stored
    # experiment no longer reads its data.
    (data / "d.csv").write_text("a,y\n-1,0.5\n0,0.1\n1,-0.5\n")
    with pytest.raises(ExperimentError, match=r"no longer defines \(changed: task.sha256\)"):
        sweep.run(load(path), tmp_path / "out")
    with pytest.raises(ValueError, match="changed since this experiment recorded it"):
        sweep.load_data(sweep.read_results(tmp_path / "out").experiment)


def test_ctrl_c_says_what_is_stored_and_exits_130(tmp_path, monkeypatch):
    path = write(tmp_path)

    def interrupted(exp, out, **kwargs):
        out.mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run", interrupted)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 130  # the contract: 130 interrupted
    assert result.stderr.startswith("nnlab: interrupted: 0/160 runs stored in") and "rerun" in result.stderr


def test_turning_on_save_networks_stores_the_networks_of_earlier_runs(tmp_path):
    out = tmp_path / "out"
    exp = load(write(tmp_path, epochs=5, seeds=4))
    sweep.run(exp, out)
    before, _ = table(out)
    manifest = sweep.run(dataclasses.replace(exp, save_networks=True), out)
    assert manifest["sessions"][-1]["runs_trained"] == 16
    after, _ = table(out)
    pd.testing.assert_frame_equal(before, after)  # trained again to the same numbers
    networks = sweep.read_networks(out, after)
    assert sorted(networks) == sorted(after["run_id"])
    assert sweep.run(dataclasses.replace(exp, save_networks=True), out)["sessions"][-1]["runs_trained"] == 0


def test_targets_outside_the_output_range_are_warned_about(tmp_path):
    sections = '[model]\noutput = ["tanh", "identity"]\n[train]\nepochs = 2\nseeds = 1\n'
    path = write_file_experiment(tmp_path, "a,y\n-1,-5\n0,0.1\n1,5\n", sections)
    (warning,) = sweep.run(load(path), tmp_path / "out")["warnings"]
    assert warning.startswith(
        "task: targets span [-5, 5], outside the range [-1, 1] of model.output = 'tanh'"
    )


def test_classification_runs_have_accuracies_and_their_targets_are_checked(tmp_path):
    sections = '[model]\noutput = "softmax"\nwidth = 6\n[train]\nloss = "cross_entropy"\nepochs = 40\n'
    rows = "".join(f"{x},{y},{int(x > 0) + int(y > 0)}\n" for x in (-1, 1) for y in (-1, 1))
    path = write_file_experiment(tmp_path, "a,b,label\n" + rows * 3, sections + "seeds = 3\nlr = 0.5\n")
    text = path.read_text()
    (tmp_path / "labels.toml").write_text(
        text.replace('targets = ["label"]', 'targets = ["label"]\nclasses = 3')
    )
    sweep.run(load(tmp_path / "labels.toml"), tmp_path / "out")
    runs, _ = table(tmp_path / "out")
    assert "train_accuracy" in runs and (runs["train_accuracy"] == 1.0).all()
    # The same file without classes: the label column is not one-hot rows.
    bad = load(tmp_path / "labels.toml", ["task.classes=2"])
    with pytest.raises(
        ExperimentError, match=r"^task.targets: 'label' in .* must hold class labels 0..1, got 2"
    ):
        sweep.run(bad, tmp_path / "out2")


def test_digits_targets_must_suit_the_loss(tmp_path):
    pytest.importorskip("sklearn")
    path = tmp_path / "d.toml"
    path.write_text(
        'name = "d"\n[task]\nkind = "digits"\ntarget = 0.9\n[model]\noutput = "softmax"\n'
        '[train]\nloss = "cross_entropy"\nepochs = 1\nseeds = 1\n'
    )
    with pytest.raises(
        ExperimentError,
        match=r'^task: its targets do not suit train.loss: .*one-hot rows.*\(set task.encoding = "onehot"\)$',
    ):
        sweep.run(load(path), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    exp = load(
        path,
        [
            "task.target=1.0",
            "task.encoding=onehot",
            "task.test_fraction=0.2",
            "model.width=8",
            "train.batch_size=32",
        ],
    )
    sweep.run(exp, tmp_path / "out")
    runs, _ = table(tmp_path / "out")
    assert {"train_accuracy", "test_accuracy", "test_loss"} <= set(runs.columns)
    assert 0 < runs["test_accuracy"].iloc[0] <= 1


def test_runs_carry_the_task_fields_and_the_loss_by_name(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        'name = "t"\n[task]\nkind = "spirals"\nn = 20\nturns = 1.0\n[train]\nepochs = 3\nseeds = 2\n'
    )
    sweep.run(load(path), tmp_path / "out")
    runs = pd.read_parquet(tmp_path / "out" / "runs.parquet")
    curves = pd.read_parquet(tmp_path / "out" / "curves.parquet")
    # Every field of the task, defaults filled in, next to its kind.
    task = {c: runs[c].iloc[0] for c in runs.columns if c.startswith("task")}
    assert task == {
        "task": "spirals",
        "task_n": 20,
        "task_noise": 0.0,
        "task_seed": 0,
        "task_target": 0.9,
        "task_test_fraction": 0.0,
        "task_turns": 1.0,
    }
    # The loss's name is loss_fn; a column called loss holds numbers only (curves.parquet).
    assert "loss" not in runs and set(runs["loss_fn"]) == {"half_squared"}
    assert curves["loss"].dtype == float


def test_a_folder_of_an_older_version_reads_as_new(tmp_path):
    """runs.parquet with the loss's name in `loss` and no task columns, and a part file of that
    version beside new ones: read and merged with `loss_fn` and the task's fields."""
    exp = load(write(tmp_path, epochs=5, seeds=4))
    out = tmp_path / "out"
    sweep.run(exp, out)
    new = sweep.read_results(out).runs
    old = new.drop(columns=[c for c in new if c.startswith("task_")]).rename(columns={"loss_fn": "loss"})
    old.to_parquet(out / "runs.parquet", index=False)
    pd.testing.assert_frame_equal(sweep.read_results(out).runs, new)
    # One part file rewritten as the old version wrote it: merged with the new ones.
    import pyarrow as pa

    part = sorted((out / "parts").iterdir())[0]
    table = pa.ipc.open_file(pa.py_buffer(part.read_bytes())).read_all()  # not mapped: rewritten below
    table = table.drop_columns([c for c in table.column_names if c.startswith("task_")])
    table = table.rename_columns(["loss" if c == "loss_fn" else c for c in table.column_names])
    with pa.OSFile(str(part), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    sweep.merge(out, exp.threshold)
    merged = pd.read_parquet(out / "runs.parquet")
    assert "loss" not in merged and merged["loss_fn"].notna().all()
    pd.testing.assert_frame_equal(sweep.read_results(out).runs, new)
