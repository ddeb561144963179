"""A sweep's plan (nnlab.sweep.planning, `nnlab run --dry-run`): the refusals before anything is written."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nnlab
from nnlab import sweep
from nnlab.cli import app
from nnlab.sgd import train_memory
from nnlab.sweep import planning
from nnlab.sweep.experiment import ExperimentError, load, validate

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
BIG = {"total": 64 * 2**30, "available": 32 * 2**30}  # a machine the small grids fit on


def experiment(**sections):
    data = {
        "name": "p",
        "task": {"kind": "xor"},
        "model": {"width": [2, 4]},
        "train": {"epochs": 50, "seeds": 40},
    }
    for section, fields in sections.items():
        data[section] = {**data.get(section, {}), **fields}
    return validate(data)


def preview(exp, **kwargs):
    kwargs.setdefault("memory", BIG)
    kwargs.setdefault("check_compiled", False)
    return planning.preview(exp, shape=planning.data_shape(exp), **kwargs)


def test_the_plan_counts_what_the_sweep_trains(tmp_path):
    exp = experiment(model={"depth": [1, 2]}, train={"lr": [0.1, 0.3]})
    plan = preview(exp)
    assert (plan.n_configs, plan.n_seeds, plan.runs) == (8, 40, 320) and plan.refusal is None
    assert (plan.samples, plan.test_samples, plan.inputs, plan.outputs) == (4, 0, 2, 1)
    assert plan.curve_points == 320 * 51
    assert [c.config for c in plan.configs] == exp.configs()
    for c in plan.configs:
        # The formula for the parameters agrees with a network built with them.
        sizes = [2, *c.config.sizes_hidden, 1]
        assert c.n_params == nnlab.init_network(sizes).n_params
        memory = sum(train_memory(sizes, replicas=32, n=4, epochs=50).values())
        assert c.job_bytes > memory and c.layout == "lanes" and c.run_seconds > 0
    assert plan.job_bytes == max(c.job_bytes for c in plan.configs)
    # Stored runs are not counted as work.
    sweep.run(exp, tmp_path / "out")
    again = preview(exp, done=sweep.stored_run_ids(tmp_path / "out"))
    assert again.stored == 320 and again.todo == 0 and again.train_seconds == 0
    # The disk it said, within 2x of what the sweep wrote (tables and parts/).
    size = {p.name: p.stat().st_size for p in (tmp_path / "out").iterdir() if p.is_file()}
    parts = sum(p.stat().st_size for p in (tmp_path / "out" / "parts").iterdir())
    said = plan.disk_bytes
    for estimate, real in [
        (said["curves"], size["curves.parquet"]),
        (said["runs"], size["runs.parquet"]),
        (said["parts"], parts),
    ]:
        assert real / 2 <= estimate <= 2 * real, (estimate, real)
    # Thinned curves store fewer values (epochs 0, 10, ..., 50): train.record counted.
    thin = preview(experiment(model={"depth": [1, 2]}, train={"lr": [0.1, 0.3], "record": 10}))
    assert thin.stored_points == 320 * 6 and plan.stored_points == plan.curve_points


def test_the_time_counts_padded_lanes_the_rule_and_the_fixed_costs():
    """9 seeds fill a chunk of lanes as 16 do (8 or 16 lanes); Adam's updates cost more than SGD's; the
    fixed costs (the command, the workers or the kernels' load, the merge) come once."""
    rates = {"lanes": (40e-9, 0.4e-9), "replica": (0.0, 0.2e-9), "replica per sample": (0.0, 0.4e-9)}
    plans = {
        (seeds, rule): planning.preview(
            experiment(train={"seeds": seeds, "optimizer": rule}),
            shape=(4, 0, 2, 1),
            memory=BIG,
            check_compiled=False,
        )
        for seeds in (9, 16)
        for rule in ("sgd", "adam")
    }
    assert plans[9, "sgd"].train_seconds < plans[16, "sgd"].train_seconds  # the merge's share differs
    work = {k: planning.wall_seconds(list(p.configs), k[0], jobs=1) for k, p in plans.items()}
    assert work[9, "sgd"] == work[16, "sgd"] and work[9, "adam"] > work[9, "sgd"]
    c = plans[16, "adam"].configs[0]
    sizes = [2, *c.config.sizes_hidden, 1]
    fixed = planning.PROCESS_SECONDS + planning.LOAD_SECONDS
    assert planning.wall_seconds([c], 16, jobs=1) == pytest.approx(
        fixed + 16 * c.run_seconds + planning.JOB_SECONDS
    )
    adam, sgd = (
        planning.run_seconds(sizes, n=4, epochs=50, batch_size=1, bias=True, rates=rates, optimizer=o)
        for o in ("adam", "sgd")
    )
    assert adam - sgd == pytest.approx(50 * 4 * nnlab.sgd.UPDATE_SECONDS["adam"] * c.n_params)


def test_rates_measured_on_a_busy_machine_are_measured_again_once_it_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr(planning, "_rates_path", lambda: tmp_path / "step_rates.json")
    measured = []
    monkeypatch.setattr(planning, "_measure", lambda problems: measured.append(problems) or (1e-9, 2e-9))
    monkeypatch.setattr(nnlab.sgd, "uncompiled", lambda layouts: [])
    load = [9.0]
    monkeypatch.setattr(planning.os, "getloadavg", lambda: (load[0], 0.0, 0.0))
    kinds = len(planning.CALIBRATION)
    steps = [(9.0, kinds, "busy"), (9.0, kinds, "busy"), (0.1, 2 * kinds, "idle"), (9.0, 2 * kinds, "idle")]
    for load[0], count, how in [*steps, (0.1, 2 * kinds, "idle")]:
        rates, here = planning.step_rates()
        assert len(measured) == count and rates["lanes"] == (1e-9, 2e-9)
        assert here == how  # the dry run says which (a busy machine's rates may be 2x slow)


def test_the_text_names_every_part_of_the_plan():
    exp = experiment(task={"test_fraction": 0.25, "n": 8})
    text = preview(exp, jobs=2).text()
    for part in [
        "p: 2 configurations x 40 seeds (0..39) = 80 runs",
        "task xor, 6 training samples (+ 2 held out), 2 inputs, 1 outputs",
        "swept: width [2, 4]",
        "parameters per network: 9 to 17; layout lanes; curves: 4,080 loss values",
        "for the largest job (32 seeds), plus about 250 MB per worker process",
        "time: about",
        "(2 worker processes)",
        "disk: about",
        "analysis: nnlab summary reads runs.parquet only (80 runs x 32 columns), never the curves",
        "needs 35 seeds at a 100% success rate, 139 at 95%",
        # 0.9 +- 1.96 sqrt(0.9 x 0.1 / 40) = 0.9 +- 0.093
        "with 40 seeds: over-capacity from 99.3% solved, critical below 80.7%",
        "nothing was written",
    ]:
        assert part in text, part
    assert str(preview(exp)) == preview(exp).text()


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        # The examples: a grid of 10^7 runs, and width 100000 x depth 50 x a million seeds.
        (
            {"model": {"width": list(range(1, 11))}, "train": {"seeds": 1_000_000}},
            "10,000,000 runs, more than",
        ),
        (
            {"model": {"width": 100_000, "depth": 50}, "train": {"seeds": 1_000_000, "epochs": 1}},
            "parameters each",
        ),
        ({"train": {"epochs": 1_000_000, "seeds": 1000}}, "values (runs x (epochs + 1)), more than"),
    ],
)
def test_absurd_grids_are_refused_before_anything_is_written(tmp_path, sections, message):
    exp = experiment(**sections)
    plan = preview(exp, memory=planning.machine_memory())
    assert plan.refusal and message in plan.refusal
    with pytest.raises(ExperimentError, match="^refused: "):
        sweep.run(exp, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_too_deep_is_a_field_error_before_any_plan(tmp_path):
    # The experiment's own bound on depth (10,000) meets the planner's limit on layers.
    with pytest.raises(
        ExperimentError, match=re.escape("model.depth: expected an int in 1..10_000, got 20000")
    ):
        experiment(model={"depth": 20_000, "width": 1})


def test_memory_refusals_say_what_fits():
    exp = experiment(model={"width": 1000, "depth": 2})  # a job of 32 seeds: about 0.8 GB
    plan = preview(exp)
    need = plan.job_bytes
    small = {"total": need // 2, "available": need // 2}
    assert "more than this machine's" in preview(exp, memory=small).refusal
    # Room for one job at a time: --jobs 3 is refused, naming the --jobs that fits.
    one = {"total": 64 * 2**30, "available": need + planning.WORKER_BYTES + 2**20}
    refusal = preview(exp, jobs=3, memory=one).refusal
    assert refusal.startswith("--jobs 3: 3 jobs at once") and refusal.endswith("use --jobs 1")
    assert preview(exp, jobs=1, memory=one).refusal is None
    # A remote Dask cluster's memory is not this machine's.
    assert preview(exp, jobs=3, memory=one, remote=True).refusal is None


def test_data_shape_does_not_load_the_digits():
    exp = validate({"name": "d", "task": {"kind": "digits", "test_fraction": 0.2}})
    code = (
        "import sys; from nnlab.sweep import planning; from nnlab.sweep.experiment import validate; "
        "e = validate({'name': 'd', 'task': {'kind': 'digits', 'test_fraction': 0.2}}); "
        "print(planning.data_shape(e), 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "(1438, 359, 64, 10) False"
    X, Y, X_test, _ = sweep.load_data(exp)
    assert planning.data_shape(exp) == (len(X), len(X_test), X.shape[1], Y.shape[1])
    with pytest.raises(ExperimentError, match="task.encoding"):
        planning.data_shape(validate({"name": "d", "task": {"kind": "digits", "encoding": "x"}}))


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    for path in sorted((ROOT / "experiments").glob("*.toml")):
        out = tmp_path / path.stem
        result = runner.invoke(app, ["run", str(path), "--dry-run", "--out", str(out)])
        assert result.exit_code == 0, (path, result.output)
        name = load(path).name
        assert result.stdout.startswith(f"{name}: ") and "nothing was written" in result.stdout
        assert not out.exists() and result.stderr == ""
    # A refused sweep: the plan, then one line on stderr, exit 2.
    toml = tmp_path / "big.toml"
    toml.write_text(
        'name = "big"\n[task]\nkind = "xor"\n[model]\nwidth = [1, 2, 3]\n[train]\nseeds = 1000000\n'
    )
    result = runner.invoke(app, ["run", str(toml), "--dry-run", "--out", str(tmp_path / "big")])
    assert result.exit_code == 2 and "refused: 3 configurations x 1,000,000 seeds" in result.stdout
    assert result.stderr.startswith("nnlab: refused: ") and len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(app, ["run", str(toml), "--out", str(tmp_path / "big")])
    assert result.exit_code == 2 and result.stderr.startswith("nnlab: refused: ")
    assert not (tmp_path / "big").exists()


def test_dry_run_counts_the_runs_already_stored(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        'name = "t"\n[task]\nkind = "xor"\n[model]\nwidth = [2, 4]\n[train]\nepochs = 20\nseeds = 8\n'
    )
    sweep.run(load(path), tmp_path / "out")
    result = runner.invoke(app, ["run", str(path), "--dry-run", "--out", str(tmp_path / "out")])
    assert "= 16 runs; 16 already stored, 0 to train" in result.stdout


def test_a_dry_run_of_the_python_api_returns_the_plan(tmp_path):
    plan = nnlab.run(dataclasses.replace(experiment()), out=tmp_path / "x", dry_run=True)
    assert isinstance(plan, planning.Plan) and plan.runs == 80 and not (tmp_path / "x").exists()
