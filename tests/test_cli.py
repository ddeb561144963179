"""The command line through typer's CliRunner: exit codes and output."""

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
