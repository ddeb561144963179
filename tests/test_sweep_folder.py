"""What a results folder holds, checked (nnlab.sweep): stored runs are never overwritten by another
experiment, parts/ is restored from the tables, and a folder damaged or edited by hand is read
right or refused in one line (exit 2), never with a traceback or silently wrong numbers."""

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from nnlab import report, sweep
from nnlab.cli import app
from nnlab.results import open_folder
from nnlab.sweep.experiment import load

runner = CliRunner()
TOML = """name = "h"
[task]
kind = "xor"
[model]
width = {widths}
[train]
lr = {lr}
epochs = 30
seeds = 40
"""


def experiment(tmp_path, widths="[2, 3]", lr=0.3):
    path = tmp_path / f"h{widths}{lr}.toml"
    path.write_text(TOML.format(widths=widths, lr=lr))
    return path


@pytest.fixture
def done(tmp_path):
    """A finished sweep in tmp_path/out: (folder, its runs, its curves)."""
    out = tmp_path / "out"
    sweep.run(load(experiment(tmp_path)), out)
    return out, *tables(out)


def tables(out):
    runs = pd.read_parquet(out / "runs.parquet").sort_values("run_id").reset_index(drop=True)
    curves = pd.read_parquet(out / "curves.parquet").sort_values(["run_id", "epoch"]).reset_index(drop=True)
    return runs, curves


def one_line(result, fragment: str, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert fragment in lines[0], lines[0]
    return lines[0]


def summary(out):
    return runner.invoke(app, ["summary", str(out), "--format", "csv"])


# ------------------------------------------------------------------------------------------------
# Data loss


def test_without_parts_another_experiment_never_replaces_the_stored_runs(tmp_path, done):
    out, runs, _ = done
    shutil.rmtree(out / "parts")
    toml = (out / "experiment.toml").read_text()
    args = ["run", str(experiment(tmp_path, lr=0.1)), "--out", str(out), "--quiet"]
    one_line(runner.invoke(app, args), "holds 80 runs in its tables that this experiment no longer defines")
    assert (out / "experiment.toml").read_text() == toml
    pd.testing.assert_frame_equal(tables(out)[0], runs)


def test_without_parts_a_rerun_restores_them_and_trains_nothing(tmp_path, done):
    out, runs, curves = done
    shutil.rmtree(out / "parts")
    manifest = sweep.run(load(experiment(tmp_path)), out)
    assert manifest["sessions"][-1]["runs_trained"] == 0 and len(list((out / "parts").iterdir())) == 1
    for got, want in zip(tables(out), (runs, curves), strict=True):
        pd.testing.assert_frame_equal(got, want)
    # More seeds: the restored runs are kept, the new ones trained.
    sweep.run(load(experiment(tmp_path), ["train.seeds=41"]), out)
    more = tables(out)[0]
    assert len(more) == 82
    pd.testing.assert_frame_equal(more[more["run_id"].isin(runs["run_id"])].reset_index(drop=True), runs)


def test_fresh_clears_the_report_and_its_figures(tmp_path, done):
    out = done[0]
    (out / "figures").mkdir()
    (out / "figures" / "spread.png").write_bytes(b"old")
    (out / "report.md").write_text("# the old XOR report")
    sweep.run(load(experiment(tmp_path, lr=0.1)), out, fresh=True)
    assert not (out / "report.md").exists() and not (out / "figures").exists()
    assert set(tables(out)[0]["lr"]) == {0.1}


# ------------------------------------------------------------------------------------------------
# Damaged or edited by hand


@pytest.mark.parametrize("edit", ["widths", "lr"])
def test_an_edited_experiment_toml_is_refused(tmp_path, done, edit):
    out = done[0]
    text = (out / "experiment.toml").read_text()
    text = (
        text.replace("width = [2, 3]", "width = [4, 8]") if edit == "widths" else text.replace("0.3", "0.5")
    )
    (out / "experiment.toml").write_text(text)
    one_line(summary(out), "experiment.toml does not define 80 of the 80 stored runs (say depth 1, width 2")
    one_line(runner.invoke(app, ["report", str(out)]), "it was changed after they were trained")
    assert not (out / "report.md").exists()


def test_an_edited_column_is_refused(done):
    out, runs, _ = done
    runs.assign(width=runs["width"] * 2).to_parquet(out / "runs.parquet")
    shutil.rmtree(out / "parts")
    one_line(summary(out), "runs.parquet: its column width disagree with the run ids (edited by hand?)")


def forget_checksums(out):
    """The folder as written before manifest.json recorded its tables' SHA-256."""
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["tables"]
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_a_hand_edited_table_is_rebuilt_from_its_parts(done):
    out, runs, curves = done
    edited = runs.copy()
    edited.loc[0, "final_loss"] = 9.0  # a value a table may hold: only the checksum tells
    edited.to_parquet(out / "runs.parquet")
    curves.drop(index=5).to_parquet(out / "curves.parquet")  # a curve row missing
    got = open_folder(out)
    assert [w for w in got.warnings if "was changed after nnlab merged it" in w], got.warnings
    assert got.runs.sort_values("run_id")["final_loss"].tolist() == runs["final_loss"].tolist()
    assert len(got.curves) == len(curves)
    assert open_folder(out).warnings == ()  # rebuilt, and recorded again


def test_a_hand_edited_table_without_parts_is_refused(done):
    out, runs, _ = done
    runs.assign(final_loss=runs["final_loss"] + 1).to_parquet(out / "runs.parquet")
    shutil.rmtree(out / "parts")
    one_line(summary(out), "runs.parquet was changed after nnlab merged it (its sha256 is not manifest")


def test_duplicated_rows_are_counted_once(done):
    out, runs, _ = done
    forget_checksums(out)
    pd.concat([runs, runs.iloc[:10]]).to_parquet(out / "runs.parquet")
    result = summary(out)
    assert result.exit_code == 0
    assert "runs.parquet holds 10 rows of runs stored twice; each run counted once" in result.stderr
    assert list(pd.read_csv(pd.io.common.StringIO(result.stdout))["runs"]) == [40, 40]


@pytest.mark.parametrize("damage", ["garbage", "missing column", "short"])
def test_damaged_tables_are_rebuilt_from_the_parts(done, damage):
    out, runs, curves = done
    if damage == "garbage":
        (out / "runs.parquet").write_bytes(b"PAR1 not a table")
    elif damage == "missing column":
        runs.drop(columns="final_loss").to_parquet(out / "runs.parquet")
    else:
        curves[curves["run_id"] != runs["run_id"][0]].to_parquet(out / "curves.parquet")
    got = sweep.read_results(out)
    assert got.warnings and got.warnings[0].endswith("rebuilt from parts/")
    pd.testing.assert_frame_equal(tables(out)[0], runs)
    assert len(got.curves) == len(curves)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("garbage", "runs.parquet cannot be read"),
        ("missing column", "runs.parquet lacks the column final_loss, and parts/ holds no run to rebuild"),
        ("no curves", "curves.parquet is missing, and parts/ holds no run to rebuild it from"),
        ("runs a folder", "runs.parquet: a folder, not a table; move it away"),
        ("networks", "networks.parquet cannot be read"),
    ],
)
def test_damaged_tables_without_parts_are_one_line_exit_2(done, damage, message):
    out, runs, _ = done
    shutil.rmtree(out / "parts")
    if damage == "garbage":
        (out / "runs.parquet").write_bytes(b"PAR1 not a table")
    elif damage == "missing column":
        runs.drop(columns="final_loss").to_parquet(out / "runs.parquet")
    elif damage == "no curves":
        (out / "curves.parquet").unlink()
    elif damage == "runs a folder":
        (out / "runs.parquet").unlink()
        (out / "runs.parquet").mkdir()
    else:
        (out / "networks.parquet").write_bytes(b"not a table")
    if damage == "no curves":
        # The summary reads no curve (runs.parquet holds its per-run statistics); figures need them.
        assert summary(out).exit_code == 0
        one_line(runner.invoke(app, ["figures", str(out)]), message)
    else:
        one_line(summary(out), message)


def test_a_foreign_part_is_named(tmp_path, done):
    out = done[0]
    other = tmp_path / "other"
    sweep.run(load(experiment(tmp_path, lr=0.1)), other)
    part = sorted((other / "parts").iterdir())[0]
    shutil.copy(part, out / "parts" / part.name)
    one_line(
        summary(out),
        "does not define 32 of the 112 stored runs (say depth 1, width 2, lr 0.1, seed 0) "
        f"(in parts/{part.name})",
    )
    # nnlab run refuses it too, naming the part file rather than calling the experiment changed.
    line = one_line(
        runner.invoke(app, ["run", str(experiment(tmp_path)), "--out", str(out)]),
        f"(parts/{part.name}, from another experiment); move those part files away",
    )
    assert "changed" not in line


def test_a_part_of_another_schema_is_named(done):
    out = done[0]
    part = sorted((out / "parts").iterdir())[-1]
    columns = {"run_id": ["x"], "final_loss": ["not a number"], "curve": [[0.1]]}
    sweep.store.write_arrow(sweep.store.part_table(columns), out / "parts" / "job-zzz.arrow")
    one_line(summary(out), "job-zzz.arrow: a part file of another kind (its column 'final_loss' is string")
    assert part.exists()


@pytest.mark.parametrize("manifest", ["[1, 2]", '{"sessions": 5}', '{"sessions": [3, {"start": "x"}]}', "{"])
def test_a_manifest_of_the_wrong_shape_does_not_stop_a_resume(tmp_path, done, manifest):
    out = done[0]
    (out / "manifest.json").write_text(manifest)
    result = runner.invoke(app, ["run", str(experiment(tmp_path)), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    sessions = json.loads((out / "manifest.json").read_text())["sessions"]
    assert all(isinstance(s, dict) for s in sessions) and sessions[-1]["runs_trained"] == 0


# ------------------------------------------------------------------------------------------------
# What the summary says


def test_tanh_at_a_huge_learning_rate_is_worse_than_at_start_not_a_capacity_verdict(tmp_path):
    out = tmp_path / "out"
    sweep.run(load(experiment(tmp_path, lr=1e6)), out)
    s = open_folder(out)
    assert list(s.summary["verdict"]) == ["worse than at start"] * 2
    assert (s.summary["worse"] >= 20).all() and (s.summary["diverged"] == 0).all()


@pytest.mark.parametrize(("model", "drawn"), [("width = 1\nbias = false", True), ("width = 4", False)])
def test_the_chain_figure_only_for_single_unit_chains(tmp_path, model, drawn):
    path = tmp_path / "c.toml"
    path.write_text(f'name = "c"\n[task]\nkind = "chain"\n[model]\n{model}\n[train]\nepochs = 5\nseeds = 3\n')
    sweep.run(load(path), tmp_path / "out")
    assert ("chain_gradients" in report.figures(open_folder(tmp_path / "out"))) == drawn


def test_figures_read_curves_from_parts_when_curves_parquet_is_gone(done):
    """The figures' reader falls back on the curves the readers rebuild from parts/ (as
    `ResultsFolder.curves` does) when curves.parquet is missing or short."""
    from nnlab.results import open_folder
    from nnlab.sweep.store import sample_runs

    out, runs, curves = done
    (out / "curves.parquet").unlink()
    folder = open_folder(out, reps=20)
    got = folder.curves_of(seeds=2)
    want = curves[curves["run_id"].isin(sample_runs(runs, 2)["run_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.assign(run_id=got["run_id"].astype(str)), want, check_dtype=False)
