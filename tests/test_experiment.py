"""Experiment files: loading, defaults, overrides, the grid, run ids and every validation error."""

import pandas as pd
import pytest

import nnlab
from nnlab.sweep.experiment import ExperimentError, from_dict, load, parse_override, validate

BASE = {
    "name": "t-1",
    "threshold": 1e-3,
    "task": {"kind": "xor"},
    "model": {"depth": [1, 2], "width": [2, 4, 8]},
    "train": {"lr": [0.05, 0.1], "epochs": 10, "seeds": 3},
}


def with_(section, **fields):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    if section is None:
        data.update(fields)
    else:
        data[section] = {**data.get(section, {}), **fields}
    return data


def test_defaults_grid_and_seeds():
    exp = validate(BASE)
    assert exp.model["hidden"] == "tanh" and exp.train["batch_size"] == 1 and exp.task["seed"] == 0
    configs = exp.configs()
    assert len(configs) == 2 * 3 * 2
    assert {(c.depth, c.width, c.lr) for c in configs} == {
        (d, w, lr) for d in (1, 2) for w in (2, 4, 8) for lr in (0.05, 0.1)
    }
    assert exp.seeds == [0, 1, 2]
    assert validate(with_("train", seeds=[3, 7, 11])).seeds == [3, 7, 11]


def test_run_ids_are_stable_and_distinct():
    configs = validate(BASE).configs()
    ids = {c.run_id(s) for c in configs for s in range(3)}
    assert len(ids) == len(configs) * 3
    again = validate(BASE).configs()
    assert [c.run_id(1) for c in again] == [c.run_id(1) for c in configs]
    # The run id depends on what the run depends on: the data seed changes it, the name does not.
    other_data = validate(with_("task", seed=1)).configs()[0]
    assert other_data.run_id(0) != configs[0].run_id(0)
    renamed = validate(with_(None, name="other")).configs()[0]
    assert renamed.run_id(0) == configs[0].run_id(0)


def test_load_file_overrides_and_resolved_toml(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(
        'name = "e"\n[task]\nkind = "spirals"\nn = 50\n[model]\nwidth = [2, 4]\n[train]\nepochs = 5\n'
    )
    exp = load(path, ["train.epochs=50", "model.width=[3, 5]", "model.hidden=relu", "task.noise=0.1"])
    assert exp.train["epochs"] == 50 and exp.model["width"] == [3, 5] and exp.model["hidden"] == "relu"
    assert exp.task["noise"] == 0.1
    again = tmp_path / "resolved.toml"
    again.write_text(exp.to_toml())
    assert load(again) == exp


def test_classification_losses_and_softmax_outputs_are_accepted():
    exp = validate(with_("model", output="softmax") | {"train": {"loss": "cross_entropy"}})
    assert {(c.output, c.loss) for c in exp.configs()} == {("softmax", "cross_entropy")}
    exp = validate(with_("model", output=["identity", "tanh"]) | {"train": {"loss": "hinge"}})
    assert {c.output for c in exp.configs()} == {"identity", "tanh"}


def test_quick_experiment_is_valid():
    exp = load("experiments/quick.toml")
    assert exp.name == "quick" and len(exp.configs()) == 10


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (with_(None, name="bad name"), "^name: expected letters, digits"),
        (with_(None, treshold=1.0), r"^treshold: unknown field \(did you mean 'threshold'\?\)"),
        (with_(None, threshold=0), "^threshold: expected a number > 0"),
        (with_("task", kind="xro"), r"^task.kind: expected one of .*got 'xro' \(did you mean 'xor'\?\)"),
        (with_("task", nosie=0.1), r"^task.nosie: unknown field \(did you mean 'noise'\?\)"),
        (with_("task", test_fraction=1.0), r"^task.test_fraction: expected a number in \[0, 1\)"),
        (with_("model", width=0), "^model.width: expected an int in 1..1_000_000, got 0"),
        (with_("model", width=[2, 0]), "^model.width: expected an int in 1..1_000_000, got 0"),
        (with_("model", width=[]), "^model.width: an empty list sweeps nothing"),
        (
            with_("model", hidden="tahn"),
            r"^model.hidden: expected one of .*got 'tahn' \(did you mean 'tanh'\?\)",
        ),
        (with_("model", bias="yes"), "^model.bias: expected true or false"),
        (with_("model", width=True), "^model.width: expected an int in 1..1_000_000, got true$"),
        (with_("model", widht=4), r"^model.widht: unknown field \(did you mean 'width'\?\)"),
        (with_("train", lr=0), "^train.lr: expected a number > 0, got 0"),
        (with_("train", lr=-0.1), "^train.lr: expected a number > 0"),
        (with_("train", epochs=1.5), "^train.epochs: expected an int in 1..1_000_000"),
        (with_("train", epochs=10**13), "^train.epochs: expected an int in 1..1_000_000"),
        (with_("train", loss="mse"), "^train.loss: expected one of cross_entropy, half_squared, hinge, sq"),
        (with_("train", seeds=0), "^train.seeds: expected a count in 1..1_000_000"),
        (with_(None, name=None), "^name: required"),
        (with_("train", seeds=[1, 1]), "^train.seeds: a seed is listed twice"),
        (with_("model", width=[2, 2]), r"^model.width: a value is listed twice in \[2, 2\]"),
        (with_("train", lr=[0.1, 1e-1]), r"^train.lr: a value is listed twice"),
        (with_(None, model=3), r"^model: expected a \[model\] section"),
        (
            with_("model", hidden="softmax"),
            r"^model.hidden: expected one of .*\(softmax: output only\), got 'softmax'",
        ),
        (
            with_("model", output="softmax"),
            r"^model.output, train.loss: output 'softmax' needs loss 'cross_entropy', got loss 'half_sq",
        ),
        (
            with_("train", loss="cross_entropy"),
            r"^model.output, train.loss: loss 'cross_entropy' needs output 'softmax' or 'sigmoid', got",
        ),
        (
            with_("model", output=["identity", "relu"]) | {"train": {"loss": "hinge"}},
            r"^model.output, train.loss: loss 'hinge' needs output 'identity' or 'tanh', got output 'relu'$",
        ),
    ],
)
def test_validation_errors_name_the_field(data, message):
    with pytest.raises(ExperimentError, match=message):
        validate(data)


def test_file_errors(tmp_path):
    with pytest.raises(ExperimentError, match="^experiment: no such file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ExperimentError, match="^experiment: bad.toml is not valid TOML"):
        load(bad)
    ok = tmp_path / "ok.toml"
    ok.write_text('name = "ok"\n[task]\nkind = "xor"\n')
    with pytest.raises(ExperimentError, match="^--set: expected section.key=value"):
        load(ok, ["train.epochs 5"])
    with pytest.raises(ExperimentError, match="^--set epochs=5: .*did you mean 'train.epochs'"):
        load(ok, ["epochs=5"])
    with pytest.raises(ExperimentError, match="section must be task, model or train"):
        load(ok, ["optim.lr=0.1"])
    with pytest.raises(ExperimentError, match=r"^--set model.width=\[2,: the value is not valid TOML"):
        load(ok, ["model.width=[2,"])
    with pytest.raises(ExperimentError, match="^experiment: .* is a folder"):
        load(tmp_path)


def test_parse_override_values():
    assert parse_override("train.lr=0.1") == ("train", "lr", 0.1)
    assert parse_override("model.width=[2,4]") == ("model", "width", [2, 4])
    assert parse_override("model.bias=false") == ("model", "bias", False)
    assert parse_override("model.hidden=relu") == ("model", "hidden", "relu")
    assert parse_override("threshold=1e-2") == (None, "threshold", 0.01)


def test_top_level_overrides(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text('name = "e"\n[task]\nkind = "xor"\n')
    assert load(path, ["threshold=0.05"]).threshold == 0.05
    with pytest.raises(ExperimentError, match="^--set treshold=1: a key without a section .*'threshold'"):
        load(path, ["treshold=1"])
    with pytest.raises(ExperimentError, match="^threshold: "):
        load(path, ["threshold=-1"])


def test_the_resolved_file_says_a_count_of_seeds_is_a_count(tmp_path):
    exp = validate(BASE)
    assert "seeds = 3  # a count: seeds 0..2\n" in exp.to_toml()
    assert "# a count" not in validate(with_("train", seeds=[4, 9])).to_toml()
    path = tmp_path / "e.toml"
    path.write_text(exp.to_toml())
    assert load(path) == exp  # the comment is only a comment


def test_from_dict_is_load_without_a_file():
    data = with_("train", epochs=10)
    exp = from_dict(data, ["train.epochs=20", "threshold=0.01"])
    assert exp.train["epochs"] == 20 and exp.threshold == 0.01 and data["train"]["epochs"] == 10
    with pytest.raises(ExperimentError, match=r"^model: expected a \[model\] section"):
        from_dict(with_(None, model=3), ["model.width=2"])


def test_optimizers_are_axes_that_keep_old_run_ids(tmp_path):
    """train.optimizer and its fields are sweep axes: at their defaults a run's id is what it was
    before they existed, a field the rule does not read keeps its default there (one plain SGD
    configuration however many betas are listed), and runs.parquet names every one."""
    from nnlab.sweep.experiment import from_dict

    base = {"name": "o", "task": {"kind": "xor"}, "model": {"width": 2}, "train": {"epochs": 5, "seeds": 2}}
    plain = from_dict(base).configs()
    assert len(plain) == 1 and plain[0].run_id(0) == "287d23321c73ed39"  # its id before optimizers existed
    train = {**base["train"], "optimizer": ["sgd", "adam"], "beta1": [0.8, 0.95]}
    configs = from_dict({**base, "train": train}).configs()
    assert [(c.optimizer, c.beta1) for c in configs] == [("sgd", 0.9), ("adam", 0.8), ("adam", 0.95)]
    assert configs[0].run_id(0) == plain[0].run_id(0)
    out = tmp_path / "o"
    nnlab.run({**base, "train": train}, out=out, quiet=True)
    runs = pd.read_parquet(out / "runs.parquet")
    assert sorted(set(zip(runs["optimizer"], runs["beta1"], strict=True))) == [
        ("adam", 0.8),
        ("adam", 0.95),
        ("sgd", 0.9),
    ]
    # Each run trained with its rule: the Adam runs differ from SGD's from the first epoch on.
    first = pd.read_parquet(out / "curves.parquet").query("epoch == 1").merge(runs, on="run_id")
    assert first.groupby("optimizer")["loss"].mean().nunique() == 2
