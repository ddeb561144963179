"""The front door (nnlab.front): load, run and compare, and `nnlab compare`; the README's worked example."""

import json
import os
import re
import subprocess
import sys
import warnings
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

import nnlab
from nnlab import front, sweep
from nnlab.cli import app
from nnlab.results import open_folder
from nnlab.sweep.experiment import ExperimentError

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
TINY = {
    "name": "tiny",
    "threshold": 1e-3,
    "save_networks": True,
    "task": {"kind": "xor"},
    "model": {"width": [2, 4]},
    "train": {"lr": 0.3, "epochs": 60, "seeds": 8},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("front") / "tiny"
    nnlab.run(TINY, out=out, quiet=True)
    return out


def test_load_is_what_the_cli_shows(folder):
    res = nnlab.load(folder)
    s = open_folder(folder)
    pd.testing.assert_frame_equal(res.runs, s.runs)
    pd.testing.assert_frame_equal(res.curves, s.curves)
    pd.testing.assert_frame_equal(res.summary, s.summary)
    for format in ("text", "markdown", "csv"):
        assert res.table(format) == runner.invoke(app, ["summary", str(folder), "--format", format]).stdout
    assert res.experiment.name == "tiny" and res.total == 16 and not res.partial
    assert res.manifest["runs_done"] == 16 and res.endpoints is None and res.optima is None
    assert set(res.figures) >= {"capacity", "convergence"}
    assert all(isinstance(f, Figure) for f in res.figures.values())
    assert res.report.startswith("# tiny") and "![capacity](figures/capacity.png)" in res.report
    assert repr(res).startswith(
        f"<nnlab.ResultsFolder {folder}: experiment 'tiny', 16/16 runs, 2 configurations"
    )


def test_network_of_a_run_is_its_trained_network(folder):
    res = nnlab.load(folder)
    row = res.runs.iloc[3]
    net = res.network(row["run_id"])
    assert net.sizes == (2, int(row["width"]), 1) and net.seeds == (int(row["seed"]),)
    X, Y, _, _ = sweep.load_data(res.experiment)
    assert nnlab.loss_of(net, X, Y)[0] == pytest.approx(row["final_loss"], rel=1e-12)
    saved = res.networks.set_index("run_id")["params"]
    assert np.array_equal(nnlab.network.flat_params(net)[0], saved[row["run_id"]])
    with pytest.raises(ValueError, match="no run"):
        res.network("nope")


def test_load_warns_about_partial_results_and_refuses_foreign_folders(folder, tmp_path):
    with pytest.raises(ExperimentError, match="no such results folder"):
        nnlab.load(tmp_path / "missing")
    out = tmp_path / "partial"
    exp = load_tiny(tmp_path)
    sweep.run(exp, out)
    # Drop one job's part and the merged tables: 8 of 16 runs remain.
    parts = sorted((out / "parts").iterdir())
    parts[0].unlink()
    for name in ("runs.parquet", "curves.parquet", "networks.parquet"):
        (out / name).unlink(missing_ok=True)
    with pytest.warns(UserWarning, match="partial results, 8 of 16 runs stored"):
        res = nnlab.load(out)
    assert res.partial and len(res.runs) == 8


def load_tiny(tmp_path):
    return front.experiment_of({**TINY, "save_networks": False})


def test_run_from_a_dict_or_a_file_resumes_and_reports(tmp_path, capsys):
    out = tmp_path / "out"
    first = nnlab.run({**TINY, "train": {**TINY["train"], "seeds": 4}}, out=out)
    lines = capsys.readouterr().out.strip().splitlines()
    assert (
        lines[-1]
        == f"8/8 runs in {out}/ (runs.parquet, curves.parquet); this session: 8 trained, 0 reused, 0 failed"
    )
    assert len(first.runs) == 8
    # The folder's experiment.toml is an experiment file: more seeds through an override.
    second = nnlab.run(out / "experiment.toml", out=out, overrides=["train.seeds=8"], jobs=2)
    assert capsys.readouterr().out.strip().endswith("this session: 8 trained, 8 reused, 0 failed")
    assert len(second.runs) == 16
    pd.testing.assert_frame_equal(
        second.runs[second.runs["seed"] < 4].drop(columns="seconds").reset_index(drop=True),
        first.runs.drop(columns="seconds").reset_index(drop=True),
    )
    assert (
        nnlab.run(out / "experiment.toml", out=out, quiet=True).manifest["sessions"][-1]["runs_trained"] == 0
    )
    assert capsys.readouterr().out == ""  # quiet


def test_run_checks_its_arguments_and_reports_failed_jobs(tmp_path, monkeypatch):
    for kwargs, message in [
        ({"backend": "spark"}, "backend: expected 'loky' or 'dask'"),
        ({"jobs": 0}, "jobs: expected an int in 1..256"),
        ({"scheduler": "tcp://x:1"}, "scheduler: only with backend 'dask'"),
    ]:
        with pytest.raises(ExperimentError, match=re.escape(message)):
            nnlab.run(TINY, out=tmp_path / "x", **kwargs)
    with pytest.raises(ExperimentError, match="model.width: expected an int in 1..1_000_000, got 0"):
        nnlab.run({**TINY, "model": {"width": 0}}, out=tmp_path / "x")
    with pytest.raises(ValueError, match="experiment: expected a file's path, a dict or an Experiment"):
        nnlab.run(42, out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    real = sweep.run_job

    def flaky(job, exp, threads):
        if job.config.width == 4:
            raise RuntimeError("boom")
        return real(job, exp, threads)

    monkeypatch.setattr(sweep.runner, "run_job", flaky)
    with pytest.raises(RuntimeError, match=r"1 jobs failed \(8 runs\), the first: .*boom; the 8 runs stored"):
        nnlab.run(TINY, out=tmp_path / "flaky", quiet=True)
    with pytest.warns(UserWarning, match="partial results, 8 of 16"):
        assert len(nnlab.load(tmp_path / "flaky").runs) == 8


def test_a_dict_is_not_modified_and_a_file_task_reads_from_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "d.csv").write_text("a,y\n-1,-0.5\n0,0.1\n1,0.5\n")
    data = {
        "name": "f",
        "task": {"kind": "file", "path": "d.csv", "inputs": ["a"], "targets": ["y"]},
        "train": {"epochs": 5, "seeds": 2},
    }
    before = json.dumps(data)
    monkeypatch.chdir(tmp_path)
    res = nnlab.run(data, quiet=True)
    assert json.dumps(data) == before
    assert res.path == Path("results/f") and res.runs["task_path"].iloc[0] == str(tmp_path / "d.csv")


def test_compare_labels_the_sweeps(folder, tmp_path):
    other = tmp_path / "b" / "tiny"
    nnlab.run({**TINY, "threshold": 1e-2, "model": {"width": [8]}}, out=other, quiet=True)
    both = nnlab.compare(folder, other)
    assert both.names == ("front0/tiny", "b/tiny") or both.names[1] == "b/tiny"
    s = both.summary
    assert list(s.columns[:4]) == ["sweep", "threshold", "depth", "width"]
    assert s.groupby("sweep", sort=False)["threshold"].first().tolist() == [1e-3, 1e-2]
    assert s["width"].tolist() == [2, 4, 8] and len(both.runs) == 24
    csv = pd.read_csv(StringIO(both.table("csv")))
    assert list(csv["sweep"]) == list(s["sweep"])
    text = both.table("text")
    assert "threshold" in text and both.names[1] in text
    with pytest.raises(ExperimentError, match="two or more"):
        nnlab.compare(folder)
    named = nnlab.compare(nnlab.load(folder), other, names=["small", "wide"])
    assert named.summary["sweep"].unique().tolist() == ["small", "wide"]
    assert "capacity" in named.figures and "seed_curves" in list(named.figures)
    # The sweeps drawn together, one line style each, named (with their thresholds) in the legend.
    convergence = named.figures["convergence"]
    legend = [t.get_text() for legend in convergence.legends for t in legend.get_texts()]
    assert legend[-2:] == ["small (threshold 0.001)", "wide (threshold 0.01)"]
    styles = {
        line.get_linestyle() for ax in convergence.axes for line in ax.lines if len(line.get_xdata()) > 2
    }
    assert {"-", "--"} <= styles
    assert [t.get_text() for t in named.figures["capacity"].legends[0].get_texts()][-1].endswith("sweep wide")


def test_labels_tell_folders_of_one_name_apart():
    assert front.labels(["/x/a/quick", "/y/b/quick", "/z/other"]) == ["a/quick", "b/quick", "other"]
    assert front.labels(["/x/quick", "/x/quick2"]) == ["quick", "quick2"]


def test_cli_compare(folder, tmp_path):
    other = tmp_path / "wide"
    nnlab.run({**TINY, "model": {"width": [8], "init_scale": 0.5}}, out=other, quiet=True)
    result = runner.invoke(app, ["compare", str(folder), str(other), "--format", "csv"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(StringIO(result.stdout))
    assert table["sweep"].tolist() == ["tiny", "tiny", "wide"]
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(folder), str(other), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "tiny, wide: final losses"
    # init_scale is fixed in each sweep but differs between them: shown; the threshold is the same:
    # not. Optima in words that cannot be confused; the table fits a terminal.
    assert lines[1].split()[:4] == ["sweep", "depth", "width", "init_scale"] and "optima" in lines[1]
    assert all(line.split()[3] == "0.5" for line in lines[2:] if line.startswith("wide"))
    assert "estimated" in result.stdout and max(map(len, lines[:-1])) <= 100
    assert result.stdout.strip().splitlines()[-1].startswith(f"{out}/: summary.csv, summary.md and ")
    assert (out / "figures" / "capacity.png").is_file() and (out / "summary.csv").is_file()
    assert (out / "figures" / "capacity.txt").is_file()
    # SVG: the sweeps are vector paths on shared axes, not pasted bitmaps.
    result = runner.invoke(
        app, ["compare", str(folder), str(other), "--out", str(out), "--figure-format", "svg"]
    )
    assert result.exit_code == 0, result.output
    svg = (out / "figures" / "convergence.svg").read_text(encoding="utf-8")
    assert "<image" not in svg
    drawn = front.compare(folder, other).figures["convergence"]
    lines = [line for ax in drawn.axes for line in ax.lines if len(line.get_xdata()) > 2]
    assert {line.get_linestyle() for line in lines} == {"-", "--"}  # one line style per sweep
    assert svg.count("<path ") >= len(lines)
    assert (out / "summary.md").read_text().startswith("| sweep | depth | width | init_scale | runs |")
    for args, message in [
        (["compare", str(folder)], "nnlab: compare: give two or more results folders, got 1"),
        (["compare", str(folder), str(tmp_path / "nope")], "nnlab: "),
        (["compare", str(folder), str(other), "--out", str(out / "summary.csv")], "nnlab: --out: "),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1


def test_the_readme_python_examples_run(tmp_path):
    """Every ```python block of README.md, in order, as one script in an empty folder."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert any("nnlab.load" in b or "nnlab.run(" in b for b in blocks)
    (tmp_path / "readme.py").write_text("\n".join(blocks), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "readme.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "results" / "tiny" / "runs.parquet").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(nnlab.load(tmp_path / "results" / "tiny").runs) == 32
