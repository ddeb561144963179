"""summary, figures and report: the library functions and the CLI commands, with their errors."""

import tomllib

import pandas as pd
import pytest
from typer.testing import CliRunner

from nnlab import report, sweep
from nnlab.cli import app
from nnlab.results import open_folder
from nnlab.sweep.experiment import validate
from tests.conftest import write_file_experiment

runner = CliRunner()


def experiment(save_networks=True, seeds=8, depth=(1, 2)):
    return validate(
        {
            "name": "tiny",
            "description": "XOR widths for the report tests",
            "threshold": 1e-2,
            "save_networks": save_networks,
            "task": {"kind": "xor"},
            "model": {"depth": list(depth), "width": [1, 2, 4]},
            "train": {"lr": 0.3, "epochs": 60, "seeds": seeds},
        }
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("results") / "tiny"
    sweep.run(experiment(), out)
    return out


def test_study_summary_has_one_row_per_configuration(folder):
    s = open_folder(folder)
    assert len(s.summary) == 6 and not s.partial
    assert list(s.summary["width"][s.summary["depth"] == 1]) == [1, 2, 4]
    assert "redundant_units" in s.summary and len(s.redundant) == 48
    assert set(s.capacity["depth"]) == {1, 2}


def test_summary_formats(folder):
    text = runner.invoke(app, ["summary", str(folder)], env={"COLUMNS": "80"})
    assert text.exit_code == 0, text.output
    # Narrow by default (fits 80 columns); an undecided verdict says what would decide it: 8/8
    # solved, and 35/35 would put the Wilson lower bound at 35 / (35 + 1.96^2) >= 90%.
    assert "solved" in text.output and "verdict" in text.output
    assert max(map(len, text.output.splitlines())) <= 80
    assert "undecided: 35 seeds could decide" in text.output
    wide = runner.invoke(app, ["summary", str(folder), "--wide"])
    assert "success [95% CI]" in wide.output and "undecided: 8/8 solved, 35 seeds could decide" in wide.output
    md = runner.invoke(app, ["summary", str(folder), "--format", "markdown"])
    lines = md.output.strip().splitlines()
    assert lines[0].startswith("| depth | width |") and lines[1].startswith("|--:|")
    assert len(lines) == 2 + 6
    csv = runner.invoke(app, ["summary", str(folder), "--format", "csv"])
    from io import StringIO

    table = pd.read_csv(StringIO(csv.output))
    assert len(table) == 6 and {
        "success_lo",
        "success_hi",
        "ert",
        "ert_lo",
        "ert_hi",
        "optima_estimate",
        "verdict",
        "decide_seeds",
    } <= set(table.columns)
    undecided = table["verdict"] == "undecided"
    assert undecided.any() and table["decide_seeds"].notna().tolist() == undecided.tolist()


def test_figures_and_report_are_written(folder):
    result = runner.invoke(app, ["figures", str(folder), "--figure-format", "svg"])
    assert result.exit_code == 0, result.output
    svgs = sorted(p.stem for p in (folder / "figures").glob("*.svg"))
    assert svgs == [
        *("capacity", "convergence", "ecdf", "heatmap", "seed_curves", "solved", "spread", "survival")
    ]
    # Each figure's caption beside it: what it shows (report.CAPTIONS), then what these data add.
    captions = sorted(p.stem for p in (folder / "figures").glob("*.txt"))
    assert captions == svgs
    spread = (folder / "figures" / "spread.txt").read_text(encoding="utf-8")
    assert spread.startswith(report.CAPTIONS["spread"]) and spread.endswith(".\n")
    # (The old spelling --format still works, with a line naming the new one.)
    result = runner.invoke(app, ["report", str(folder), "--format", "png"])
    assert result.exit_code == 0, result.output
    assert "--format is now --figure-format" in result.stderr
    text = (folder / "report.md").read_text()
    assert text.startswith("# tiny\n") and "Partial" not in text
    for needed in (
        "## Summary",
        "## Verdicts",
        "## Neighbouring widths compared",
        "## Success over time",
        "## Figures",
        "![spread](figures/spread.png)",
        "units redundant",
    ):
        assert needed in text, needed
    assert spread.strip() in text  # the report prints the same caption
    assert len(list((folder / "figures").glob("*.png"))) == 8
    logrank = text.split("## Success over time")[1].split("##")[0]
    assert "log-rank p = " in logrank or "nothing to test" in logrank
    verdicts = [
        line for line in text.split("## Verdicts")[1].split("##")[0].splitlines() if line.startswith("- ")
    ]
    assert verdicts[0].startswith("- depth 1") and "Widths: " in verdicts[0]  # one line per group
    assert "epochs)" in verdicts[0] and "lr " in verdicts[0]  # its conditions named
    # Never surer than the intervals: no "none is over-capacity" while a width is undecided.
    assert "none is over-capacity" not in text
    assert any("undecided: 4 (8/8 solved, 35 seeds could decide)" in line for line in verdicts), verdicts
    tests = text.split("## Neighbouring widths compared")[1].split("##")[0]
    assert "pair by seed" in tests and "McNemar" in tests
    listed = [line for line in tests.splitlines() if line.startswith("- ")]
    assert listed and all("significant" in line and "McNemar exact p =" in line for line in listed)
    toml = text.split("```toml\n")[1].split("```")[0]
    assert tomllib.loads(toml)["name"] == "tiny"


def test_missing_foreign_and_empty_folders_exit_2(tmp_path):
    for command in ("summary", "figures", "report"):
        result = runner.invoke(app, [command, str(tmp_path / "nope")])
        assert result.exit_code == 2 and "no such results folder" in result.output
        assert "Traceback" not in result.output
    (tmp_path / "foreign").mkdir()
    result = runner.invoke(app, ["summary", str(tmp_path / "foreign")])
    assert result.exit_code == 2 and "holds no nnlab results" in result.output
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "experiment.toml").write_text(experiment().to_toml())
    result = runner.invoke(app, ["report", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no run is stored yet" in result.output
    result = runner.invoke(app, ["summary", str(tmp_path / "nope"), "--format", "xml"])
    assert result.exit_code == 2


def test_partial_results_warn_and_mark_the_report(tmp_path):
    out = tmp_path / "part"
    sweep.run(experiment(save_networks=False, seeds=4, depth=(1,)), out)
    # The experiment now asks for more seeds than are stored: an unfinished sweep.
    (out / "experiment.toml").write_text(experiment(save_networks=False, seeds=8, depth=(1,)).to_toml())
    result = runner.invoke(app, ["summary", str(out)])
    assert result.exit_code == 0 and "partial results, 12 of 24 runs" in result.output
    result = runner.invoke(app, ["report", str(out), "--figure-format", "png"])
    assert result.exit_code == 0 and "(partial results)" in result.output
    assert "**Partial results:** 12 of 24 runs" in (out / "report.md").read_text()


def test_interrupted_sweep_is_merged_when_read(tmp_path):
    out = tmp_path / "cut"
    sweep.run(experiment(save_networks=False, seeds=4, depth=(1,)), out)
    (out / "runs.parquet").unlink()
    (out / "curves.parquet").unlink()
    s = open_folder(out)
    assert len(s.runs) == 12 and len(s.curves) == 12 * 61


def test_a_moved_data_file_costs_only_the_pruning(tmp_path):
    from nnlab.sweep.experiment import load

    path = write_file_experiment(
        tmp_path,
        "a,b,y\n-1,-1,-0.9\n-1,1,0.9\n1,-1,0.9\n1,1,-0.9\n",
        "[model]\nwidth = [2, 4]\n[train]\nepochs = 20\nseeds = 2\n",
        top="save_networks = true\n",
    )
    sweep.run(load(path), tmp_path / "out")
    assert "redundant_units" in open_folder(tmp_path / "out").summary
    (tmp_path / "d.csv").rename(tmp_path / "moved.csv")
    result = runner.invoke(app, ["summary", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("nnlab: warning: redundant units not counted: task.path: no such file")
    assert "redundant" not in result.stdout
