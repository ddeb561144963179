"""`nnlab landscape` on end points it cannot certify (issue 20): a diverged end point (parameters or
loss not finite) is skipped by name, an eigen-solver that does not converge gives `unconverged` with
its reason, and the last line says what was written, never a traceback."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nnlab import sweep
from nnlab.cli import app
from nnlab.sweep import endpoints
from nnlab.sweep.experiment import from_dict

runner = CliRunner()
BUDGET = ["--lbfgs-iters", "50", "--newton-iters", "3", "--quiet"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """xor, width 2, four seeds at a sane lr and four at lr 1e300 (their weights blow up)."""
    out = tmp_path_factory.mktemp("guard") / "out"
    exp = from_dict(
        {
            "name": "guard",
            "save_networks": True,
            "task": {"kind": "xor"},
            "model": {"width": 2},
            "train": {"lr": [0.1, 1e300], "epochs": 20, "seeds": 4},
        }
    )
    sweep.run(exp, out)
    return out


def test_diverged_end_points_are_skipped_by_name(swept, tmp_path):
    result = runner.invoke(app, ["landscape", str(swept), *BUDGET])
    assert result.exit_code == 0, result.output
    runs = pd.read_parquet(swept / "runs.parquet")
    blown = sorted(runs.loc[runs["lr"] == 1e300, "run_id"])
    table = pd.read_parquet(swept / "endpoints.parquet")
    assert sorted(table["run_id"]) == sorted(runs.loc[runs["lr"] == 0.1, "run_id"])
    assert not table["reason"].str.contains("Error").any()  # certify's own reasons, no solver's failure
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and "4 end points skipped, diverged" in warning[0]
    assert all(run_id in warning[0] for run_id in blown)
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"4/8 end points certified in {swept}/") and "4 skipped (diverged)" in last
    shown = runner.invoke(app, ["summary", str(swept)])
    assert shown.exit_code == 0 and "no certified end point yet" not in shown.stderr
    assert "4 diverged runs (parameters or their norm not finite) have no certified end point" in shown.stderr


def test_an_unconverged_eigensolver_is_a_row_with_its_reason(swept, monkeypatch):
    real = endpoints.certify
    singles = []

    def flaky(net, X, Y, **kw):
        if net.n_replicas == 1:
            singles.append(net)
        if net.n_replicas > 1 or len(singles) == 1:  # the batch, then the first end point on its own
            raise np.linalg.LinAlgError("Eigenvalues did not converge")
        return real(net, X, Y, **kw)

    monkeypatch.setattr(endpoints, "certify", flaky)
    result = runner.invoke(app, ["landscape", str(swept), "--fresh", *BUDGET])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(swept / "endpoints.parquet")
    bad = table[table["kind"] == "unconverged"]
    assert len(bad) == 1 and bad["reason"].iloc[0] == "LinAlgError: Eigenvalues did not converge"
    assert np.isnan(bad["polished_loss"].iloc[0]) and np.isfinite(bad["start_loss"].iloc[0])
    assert (
        len(table) == 4
        and not table.loc[table["kind"] != "unconverged", "reason"].str.contains("Error").any()
    )
    assert "unconverged 1" in result.stdout.strip().splitlines()[-1]


def test_no_job_finished_says_no_table_was_written(swept, monkeypatch):
    def broken(*args, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(endpoints, "certify_job", broken)
    for name in ("endpoints.parquet", "optima.parquet", "barriers.parquet"):
        (swept / name).unlink(missing_ok=True)
    result = runner.invoke(app, ["landscape", str(swept), "--fresh", *BUDGET])
    assert result.exit_code == 1
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("0/8 end points certified") and "no table written" in last
    assert not (swept / "endpoints.parquet").exists()
