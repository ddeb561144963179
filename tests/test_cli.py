"""The command line through typer's CliRunner: exit codes and output."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

import nnlab
from nnlab.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"nnlab {nnlab.__version__}"


def test_demo_prints_the_loss_table():
    result = runner.invoke(app, ["demo", "--seeds", "4", "--epochs", "20"])
    assert result.exit_code == 0, result.output
    assert "XOR width 2" in result.output and "tanh chain L=3" in result.output
    assert "e=20" in result.output


def test_bad_option_exits_2_with_one_line():
    """click's usage errors follow the contract too: one line on stderr naming the problem."""
    cases = [
        (["demo", "--seeds", "0"], "nnlab demo: Invalid value for '--seeds'"),
        (["demo", "--lr", "-1"], "nnlab: --lr: expected a number > 0"),
        (["run", "x.toml", "--jobs", "abc"], "nnlab run: Invalid value for '--jobs'"),
        (["summary", "x", "--format", "json"], "nnlab summary: Invalid value for '--format'"),
        (["run"], "nnlab run: Missing argument"),
        (["bogus"], "nnlab: No such command 'bogus'"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
        assert result.stderr.startswith(message), result.stderr


def test_no_arguments_prints_help():
    result = runner.invoke(app, [])
    assert result.exit_code == 0 and "Usage" in result.output and "run" in result.output


@pytest.mark.parametrize("error", [ZeroDivisionError("boom"), ValueError("operands could not be broadcast")])
def test_a_bug_is_one_line_exit_1_with_its_traceback_in_a_file(tmp_path, monkeypatch, error):
    """Only an InputError is bad input (exit 2); anything else, a numpy ValueError included, is a bug
    of nnlab's: one line saying so and naming the file that holds the traceback, exit 1."""
    import nnlab.results

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(nnlab.results, "open_folder", broken)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("NNLAB_TRACEBACK", raising=False)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    result = runner.invoke(app, ["summary", str(tmp_path)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error (a bug in nnlab)" in lines[0], lines
    path = Path(lines[0].rsplit("its traceback is in ", 1)[1])
    assert (
        path.parent == tmp_path
        and "Traceback" in path.read_text()
        and type(error).__name__ in path.read_text()
    )


def test_help_paragraphs_are_not_broken_mid_sentence():
    """typer keeps a docstring's line breaks and wraps again: each paragraph must be one line at a
    wide terminal."""
    result = runner.invoke(app, ["run", "--help"], terminal_width=200, env={"COLUMNS": "200"})
    assert "(more than 10^6 runs, 10^8 loss values or 10,000 layers), is refused" in result.output


def test_renamed_options_keep_their_old_spelling_hidden(tmp_path):
    """summary's --gtol (a gradient norm) is now --stop-gtol, apart from landscape's relative --gtol;
    the old spelling is not in the help, and still read (a missing folder fails after parsing)."""
    help_text = runner.invoke(app, ["summary", "--help"], env={"COLUMNS": "200"}).output
    assert "--stop-gtol" in help_text and "--stop-rtol" in help_text and "--wide" in help_text
    assert "--gtol " not in help_text and "--rtol " not in help_text
    figures_help = runner.invoke(app, ["figures", "--help"], env={"COLUMNS": "200"}).output
    assert "--figure-format" in figures_help and "--format " not in figures_help
    result = runner.invoke(app, ["summary", str(tmp_path / "nope"), "--gtol", "0.1"])
    assert result.exit_code == 2 and "--gtol is now --stop-gtol" in result.stderr


def test_jobs_auto_is_the_cores_the_jobs_and_the_memory():
    from nnlab.cli import _auto_jobs, _jobs
    from nnlab.sweep import planning
    from nnlab.sweep.experiment import validate

    assert _jobs("auto") == "auto" and _jobs("3") == 3
    exp = validate(
        {"name": "j", "task": {"kind": "xor"}, "model": {"width": [2, 4, 8]}, "train": {"seeds": 4}}
    )
    assert _auto_jobs(exp, Path("out")) == min(planning.cores(), 3)  # three jobs of 4 seeds
    assert _auto_jobs(exp, None) == planning.cores()  # a remote scheduler: the cores
