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


def test_bad_option_exits_2():
    result = runner.invoke(app, ["demo", "--seeds", "0"])
    assert result.exit_code == 2
