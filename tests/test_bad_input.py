"""The bad-input corpus: every case gets exactly one line on stderr naming the problem, exit code 2,
no traceback, and (for an experiment) no results folder.

Each row is (experiment file or command line, a fragment of the expected line). Experiment files
are built from one base by replacing a section; a row's text is what a user might have typed.
"""

import os
import socket
import threading
import time

import numpy as np
import pytest
from typer.testing import CliRunner

import nnlab
from nnlab import front
from nnlab.cli import app
from nnlab.errors import InputError
from nnlab.sweep import workers

runner = CliRunner()


def toml(top='name = "c"', task='kind = "xor"', model="width = 2", train="epochs = 2\nseeds = 2") -> str:
    return f"{top}\n[task]\n{task}\n[model]\n{model}\n[train]\n{train}\n"


DEEP = "[" * 3000 + "]" * 3000
FILE = 'kind = "file"\npath = "{path}"\ninputs = ["x"]\ntargets = ["y"]'


def data_files(d):
    """The data files the corpus names: a folder, a FIFO and NPZ files of every wrong kind."""
    (d / "folder").mkdir()
    os.mkfifo(d / "fifo")
    (d / "text.npz").write_text("x,y\n1,2\n")
    np.save(d / "array.npy", np.zeros(3))
    (d / "array.npy").rename(d / "array.npz")  # an .npy, not a zip of them
    y = np.zeros(4)
    np.savez(d / "complex.npz", x=np.ones(4) + 1j, y=y)
    np.savez(d / "dates.npz", x=np.array(["2024-01-01"] * 4, dtype="datetime64[D]"), y=y)
    np.savez(d / "strings.npz", x=np.array(["a"] * 4), y=y)
    np.savez(d / "records.npz", x=np.zeros(4, dtype=[("a", float), ("b", float)]), y=y)


LONG = "a" * 300

# (experiment file, fragment of the error line)
EXPERIMENTS = [
    ("name = ", "experiment: e.toml is not valid TOML"),
    (f"x = {DEEP}", "experiment: e.toml nests arrays or tables too deeply"),
    (toml(top=f'name = "c"\nx = {DEEP[:1000]}{DEEP[-1000:]}'), "nests arrays or tables too deeply"),
    (toml(top=""), "name: required"),
    (toml(top='name = "a b"'), "name: expected letters, digits, '-' and '_' only, got 'a b'"),
    (toml(top=f'name = "{LONG}"'), "name: at most 100 characters (it names a folder), got 300"),
    (toml(top="name = 5"), "name: expected letters"),
    (toml(top='name = "c"\nnmae = "d"'), "nmae: unknown field (did you mean 'name'?)"),
    (toml(top='name = "c"\ndescription = 3'), "description: expected a string, got 3"),
    (toml(top='name = "c"\nthreshold = 0'), "threshold: expected a number > 0, got 0"),
    (toml(top='name = "c"\nthreshold = nan'), "threshold: expected a number > 0, got nan"),
    (toml(top='name = "c"\nthreshold = inf'), "threshold: expected a number > 0, got inf"),
    (toml(top='name = "c"\nsave_networks = "yes"'), "save_networks: expected true or false, got 'yes'"),
    ('name = "c"\ntask = 3', "task: expected a [task] section (a table), got 3"),
    (toml(task=""), "task.kind: expected one of chain, digits, file, spirals, teacher, xor, got None"),
    (
        toml(task="kind = {a = 1}"),
        "task.kind: expected one of chain, digits, file, spirals, teacher, xor, got {'a': 1}",
    ),
    (
        toml(task="kind = [1]"),
        "task.kind: expected one of chain, digits, file, spirals, teacher, xor, got [1]",
    ),
    (toml(task='kind = "xr"'), "got 'xr' (did you mean 'xor'?)"),
    (toml(task='kind = "xor"\nseed = -1'), "task.seed: expected an int in 0..2**63-1, got -1"),
    (toml(task='kind = "xor"\nseed = 9223372036854775808'), "task.seed: expected an int in 0..2**63-1"),
    (toml(task='kind = "xor"\nseed = 1.5'), "task.seed: expected an int in 0..2**63-1, got 1.5"),
    (toml(task='kind = "xor"\ntest_fraction = 1'), "task.test_fraction: expected a number in [0, 1), got 1"),
    (toml(task='kind = "xor"\ntest_fraction = 0.01'), "task.test_fraction: 0.01 of 4 samples holds out none"),
    (toml(task='kind = "xor"\nn = 1000000000000'), "task.n: expected an int in 4..10_000_000"),
    (toml(task='kind = "xor"\nn = 1e12'), "task.n: expected an int in 4..10_000_000, got 1000000000000.0"),
    (toml(task='kind = "xor"\nn = 3'), "task.n: expected an int in 4..10_000_000, got 3"),
    (toml(task='kind = "xor"\nnoise = -1'), "task.noise: expected a number in [0, inf), got -1"),
    (toml(task='kind = "xor"\ntarget = 1.5'), "task.target: expected a number in (0, 1), got 1.5"),
    (toml(task='kind = "xor"\nturns = 1'), "task.turns: unknown field; allowed:"),
    (toml(task='kind = "teacher"\ndim = 1000000'), "task.dim: expected an int in 1..100_000"),
    (toml(task='kind = "teacher"\nn = 10000000\ndim = 100'), "task.n: 10_000_000 samples x dim 100"),
    (
        toml(task='kind = "teacher"\nactivation = "tnh"'),
        "task.activation: unknown 'tnh' (did you mean 'tanh'?)",
    ),
    (toml(task='kind = "chain"\nslope = 1'), "task.slope: expected a number in (-1, 1), got 1"),
    (toml(task='kind = "spirals"\nturns = 0'), "task.turns: expected a number in (0, inf), got 0"),
    (toml(task='kind = "file"'), "task: kind 'file' file() missing 3 required keyword-only arguments"),
    (toml(task='kind = "file"\npath = "no.csv"\ninputs = ["a"]\ntargets = ["y"]'), "task.path: no such file"),
    ('name = "c"\nmodel = [1]\n[task]\nkind = "xor"', "model: expected a [model] section (a table), got [1]"),
    (toml(model="depth = 0"), "model.depth: expected an int in 1..10_000, got 0"),
    (toml(model="depth = 1000000000"), "model.depth: expected an int in 1..10_000, got 1000000000"),
    (toml(model="width = 100000000000"), "model.width: expected an int in 1..1_000_000, got 100000000000"),
    (toml(model="width = 1e11"), "model.width: expected an int in 1..1_000_000, got 100000000000.0"),
    (toml(model="width = []"), "model.width: an empty list sweeps nothing"),
    (toml(model="width = [2, 2]"), "model.width: a value is listed twice in [2, 2]"),
    (toml(model="width = [[2]]"), "model.width: expected an int in 1..1_000_000, got [2]"),
    (toml(model='hidden = "softmax"'), "model.hidden: expected one of"),
    (toml(model='hidden = "tahn"'), "(did you mean 'tanh'?)"),
    (toml(model="bias = 1"), "model.bias: expected true or false, got 1"),
    (toml(model='init = "glorott"'), "(did you mean 'glorot'?)"),
    (toml(model="init_scale = 0"), "model.init_scale: expected a number > 0, got 0"),
    (toml(model="widht = 2"), "model.widht: unknown field (did you mean 'width'?)"),
    (toml(train='lr = "squred"'), "train.lr: expected a number > 0, got 'squred'"),
    (toml(train="lr = -0.1"), "train.lr: expected a number > 0, got -0.1"),
    (toml(train="lr = inf"), "train.lr: expected a number > 0, got inf"),
    (toml(train="lr = nan"), "train.lr: expected a number > 0, got nan"),
    (toml(train="epochs = 0"), "train.epochs: expected an int in 1..1_000_000, got 0"),
    (toml(train="epochs = 1e6"), "train.epochs: expected an int in 1..1_000_000, got 1000000.0"),
    (toml(train="batch_size = 0"), "train.batch_size: expected an int in 1..2**63-1, got 0"),
    (toml(train="batch_size = 99999999999999999999"), "train.batch_size: expected an int in 1..2**63-1"),
    (toml(train='loss = "hinge2"'), "(did you mean 'hinge'?)"),
    (toml(train='loss = "cross_entropy"'), "model.output, train.loss: loss 'cross_entropy' needs output"),
    (toml(model='output = "identity"', train='loss = "hinge"'), "task: its targets do not suit train.loss"),
    (toml(train="seeds = 0"), "train.seeds: expected a count in 1..1_000_000"),
    (
        toml(train="seeds = 2000000"),
        "train.seeds: expected a count in 1..1_000_000 or a list of ints in 0..2**63-1, got 2000000",
    ),
    (toml(train="seeds = [1, 1]"), "train.seeds: a seed is listed twice in [1, 1]"),
    (
        toml(train="seeds = [-1]"),
        "train.seeds: expected a count >= 1 or a list of ints in 0..2**63-1, got -1",
    ),
    (toml(train="seeds = [9223372036854775808]"), "list of ints in 0..2**63-1, got 9223372036854775808"),
    (toml(train="seeds = []"), "train.seeds: expected a count >= 1 or a list of ints in 0..2**63-1, got []"),
    (
        toml(train='seeds = "5"'),
        "train.seeds: expected a count in 1..1_000_000 or a list of ints in 0..2**63-1, got '5'",
    ),
    (toml(train="momentum = 0.5"), "train.momentum: only momentum and nesterov use it"),
    (
        toml(train='optimizer = "adma"'),
        "train.optimizer: expected one of sgd, momentum, nesterov, adam, adamw, got 'adma' "
        "(did you mean 'adam'?)",
    ),
    (toml(train='optimizer = "adam"\nbeta1 = 1.0'), "train.beta1: expected a number in [0, 1), got 1.0"),
    (toml(train="weight_decay = -0.1"), "train.weight_decay: expected a number >= 0, got -0.1"),
    (toml(train='schedule = "step"'), "train.step_every: the step schedule needs it"),
    (toml(train="gamma = 0.5"), 'train.gamma: only the schedule "step" uses it'),
    # issue 20
    (toml(top='name = "c"\nthreshold = [1e-3, 1e-2]'), "threshold: expected one value (not a sweep axis)"),
    (toml(top='name = "c"\nsave_networks = [true, false]'), "save_networks: expected one value (not a sweep"),
    (toml(task=FILE.format(path="folder")), "task.path: {d}/folder is a folder, not a data file"),
    (toml(task=FILE.format(path="fifo")), "task.path: {d}/fifo is a FIFO, not a data file"),
    (toml(task=FILE.format(path="text.npz")), "path: text.npz is not an NPZ file (a zip of .npy arrays"),
    (toml(task=FILE.format(path="array.npz")), "path: array.npz is not an NPZ file"),
    (toml(task=FILE.format(path="complex.npz")), "path: array 'x' in complex.npz holds complex numbers"),
    (toml(task=FILE.format(path="dates.npz")), "path: array 'x' in dates.npz holds datetimes"),
    (toml(task=FILE.format(path="strings.npz")), "path: array 'x' in strings.npz holds strings"),
    (toml(task=FILE.format(path="records.npz")), "path: array 'x' in records.npz holds records"),
]


@pytest.mark.parametrize(("text", "message"), EXPERIMENTS, ids=range(len(EXPERIMENTS)))
def test_a_bad_experiment_is_one_line_exit_2_and_no_folder(tmp_path, text, message):
    if "task.path" in message or ".npz" in message:
        data_files(tmp_path)
    (tmp_path / "e.toml").write_text(text)
    result = runner.invoke(app, ["run", str(tmp_path / "e.toml"), "--out", str(tmp_path / "out"), "--quiet"])
    _one_line(result, message.replace("{d}", str(tmp_path)))
    assert not (tmp_path / "out").exists()  # refused before anything is written
    assert "did you mean" not in result.stderr or "did you mean" in message  # only for names


def _one_line(result, message: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.output


# (command line, fragment); {d} is a fresh folder, {e} a good experiment file, {f} a regular file.
COMMANDS = [
    (["run", "{d}/missing.toml"], "experiment: no such file"),
    (["run", "{d}"], "is a folder; give an experiment file (.toml)"),
    (["run", f"{{d}}/{LONG}.toml"], "experiment: no such file"),
    (["run", "{e}", "--out", ""], "Invalid value for '--out': expected a folder, got an empty name"),
    (["run", "{e}", "--out", "{f}/sub"], "is under"),
    (["run", "{e}", "--out", "{f}"], "exists and is not a folder"),
    (["run", "{e}", "--out", f"{{d}}/{LONG}"], "--out: a name in the path is longer than 255 bytes"),
    (["run", "{e}", "--out", "{d}"], "is not empty and holds no nnlab results"),
    (["run", "{e}", "--set", "width"], "--set: expected section.key=value or key=value, got 'width'"),
    (["run", "{e}", "--set", f"model.width={DEEP}"], "the value is nested too deeply"),
    (["run", "{e}", "--set", "epochs=5"], "(did you mean 'train.epochs'?)"),
    (["run", "{e}", "--set", "foo.bar=1"], "--set foo.bar=1: section must be task, model or train"),
    (["run", "{e}", "--set", "train.lr=[1"], "the value is not valid TOML"),
    (["run", "{e}", "--set", "train.seeds=[9223372036854775808]"], "list of ints in 0..2**63-1"),
    (["run", "{e}", "--scheduler", "tcp://127.0.0.1:9"], "--scheduler: only with --backend dask"),
    (["run", "{e}", "--jobs", "0"], "Invalid value for '--jobs'"),
    (["run", "{e}", "--backend", "spark"], "Invalid value for '--backend'"),
    (["summary", "{f}"], "a file, not a results folder"),
    (["summary", "{d}/missing"], "no such results folder"),
    (["summary", "{d}"], "holds no nnlab results (no experiment.toml)"),
    (
        ["summary", "{d}", "--rtol", "nan"],
        "Invalid value for '--rtol': expected a finite number >= 0, got nan",
    ),
    (["summary", "{d}", "--gtol", "-1"], "Invalid value for '--gtol': expected a finite number >= 0, got -1"),
    (["summary", "{d}", "--format", "json"], "Invalid value for '--format'"),
    (
        ["report", "{d}", "--rtol", "inf"],
        "Invalid value for '--rtol': expected a finite number >= 0, got inf",
    ),
    (["figures", "{d}", "--figure-format", "gif"], "Invalid value for '--figure-format'"),
    (["landscape", "{d}", "--gtol", "nan"], "--gtol: expected a number > 0, got nan"),
    (["landscape", "{d}", "--lbfgs-iters", "0"], "Invalid value for '--lbfgs-iters'"),
    (["landscape", "{f}"], "a file, not a results folder"),
    (["demo", "--threshold", "0"], "Invalid value for '--threshold': expected a finite number > 0, got 0"),
    (["demo", "--threshold", "nan"], "expected a finite number > 0, got nan"),
    (["demo", "--lr", "nan"], "--lr: expected a number > 0, got nan"),
    (["demo", "--seeds", "0"], "Invalid value for '--seeds'"),
    (["bogus"], "No such command 'bogus'"),
    # issue 20
    (["compare", "{d}", "{d}"], "compare: {d} is given twice; give each results folder once"),
    (["compare", "{d}", "{f}", "--figure-format", "pdf"], "--figure-format: only with --out"),
]


@pytest.mark.parametrize(("args", "message"), COMMANDS, ids=range(len(COMMANDS)))
def test_a_bad_command_line_is_one_line_exit_2(tmp_path, args, message):
    (tmp_path / "e.toml").write_text(toml())
    (tmp_path / "f").write_text("not a folder")
    (tmp_path / "thesis.tex").write_text("x")
    where = {"d": tmp_path, "e": tmp_path / "e.toml", "f": tmp_path / "f"}
    _one_line(runner.invoke(app, [a.format(**where) for a in args]), message.replace("{d}", str(tmp_path)))


def _raises_one_line(call, message: str) -> None:
    with pytest.raises(InputError) as err:
        call()
    text = str(err.value)
    assert "\n" not in text and message in text, text


# The Python API takes the CLI's checks: (call on a fresh folder d, fragment of the InputError).
API = [
    (lambda d: nnlab.load(None), "folder: expected a results folder's path (a str or Path), got None"),
    (lambda d: nnlab.load(""), "folder: expected a results folder's path"),
    (lambda d: nnlab.load(d, gtol=-1), "gtol: expected a finite number >= 0, got -1"),
    (lambda d: nnlab.load(d, rtol=float("nan")), "rtol: expected a finite number >= 0, got nan"),
    (lambda d: nnlab.compare(d, d), "is given twice"),
    (
        lambda d: nnlab.run(d / "e.toml", overrides=[None], dry_run=True),
        "overrides: expected 'section.key=value'",
    ),
    (
        lambda d: nnlab.run(d / "e.toml", overrides="train.epochs=5", dry_run=True),
        "overrides: expected a list of 'section.key=value' strings, got the string 'train.epochs=5'",
    ),
    (lambda d: nnlab.run(5), "experiment: expected a file's path, a dict or an Experiment, got int"),
    (lambda d: nnlab.run({**DICT, "threshold": [1e-3, 1e-2]}, dry_run=True), "threshold: expected one value"),
    (
        lambda d: nnlab.run({**DICT, "description": "\ud83d"}, dry_run=True),
        "description: '\\ud83d' holds a lone",
    ),
    (lambda d: nnlab.init_network([2, 2, 1], bias="no"), "bias: expected True or False, got 'no'"),
    (lambda d: nnlab.init_network([2, 2, 1], scale="big"), "scale: expected a finite number >= 0, got 'big'"),
    (lambda d: nnlab.init_network([2, 2, 1], seeds=2**200), "seeds: each seed must be an int in 0..2**63-1"),
    (lambda d: nnlab.init_network([200_000, 200_000, 1]), "are more than 1_000_000_000 numbers"),
    (lambda d: nnlab.init_network([2, 2_000_000, 1]), "sizes: every layer size must be at most 1_000_000"),
    (lambda d: nnlab.init_network(None), "sizes: expected [d, h_1, ..., out], a list of ints, got None"),
]
DICT = {"name": "a", "task": {"kind": "xor"}, "train": {"epochs": 2, "seeds": 2}}


@pytest.mark.parametrize(("call", "message"), API, ids=range(len(API)))
def test_the_python_api_refuses_in_one_line(tmp_path, call, message):
    (tmp_path / "e.toml").write_text(toml())
    _raises_one_line(lambda: call(tmp_path), message)


def test_numpy_scalars_in_a_dict_are_taken_as_numbers():
    exp = front.experiment_of(
        {**DICT, "model": {"width": [np.int64(2), 3]}, "train": {"lr": np.float32(0.5)}}
    )
    assert exp.model["width"] == [2, 3] and exp.train["lr"] == 0.5


def test_a_scheduler_that_is_not_dask_ends_within_the_timeout(tmp_path, monkeypatch):
    """Something else listens (it accepts and says nothing): one line, exit 2, in seconds."""
    monkeypatch.setattr(workers, "TIMEOUT", 1.0)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    (tmp_path / "e.toml").write_text(toml())
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    start = time.monotonic()
    result = runner.invoke(
        app,
        [
            "run",
            str(tmp_path / "e.toml"),
            "--out",
            str(tmp_path / "out"),
            "--backend",
            "dask",
            "--scheduler",
            address,
            "--quiet",
        ],
    )
    assert time.monotonic() - start < 30
    _one_line(
        result, f"--scheduler: {address} accepted the connection but did not answer as a Dask scheduler"
    )
    assert not (tmp_path / "out").exists()
    server.close()


def test_the_corpus_is_large():
    assert len(EXPERIMENTS) + len(COMMANDS) + len(API) >= 100


def test_train_refuses_masked_and_ragged_data_naming_them():
    """A masked X is not silently unmasked, and a ragged X names X, not numpy's inhomogeneous shape."""
    net = nnlab.init_network([2, 2, 1], seeds=0)
    X = np.ma.masked_array([[0.0, 1.0], [1.0, 0.0]], mask=[[False, True], [False, False]])
    with pytest.raises(InputError, match="X: a masked array with 1 masked entries"):
        nnlab.train(net, X, [[1.0], [0.0]], lr=0.1, epochs=1)
    with pytest.raises(InputError, match="X: expected a rectangular array of numbers"):
        nnlab.train(net, [[0.0, 1.0], [1.0]], [[1.0], [0.0]], lr=0.1, epochs=1)
    unmasked = np.ma.masked_array([[0.0, 1.0], [1.0, 0.0]], mask=False)
    assert nnlab.train(net, unmasked, [[1.0], [0.0]], lr=0.1, epochs=1).loss_curve.shape == (1, 2)


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("epochs", 10**12, "epochs: expected an int in 1..1_000_000"),
        ("batch_size", 2**63, "batch_size: expected an int in 1..9_223_372_036_854_775_807"),
    ],
)
def test_train_takes_the_bounds_of_experiment_files(keyword, value, message):
    """train refuses what an experiment file refuses, before allocating (10^12 epochs: 21.8 TiB)."""
    net = nnlab.init_network([2, 2, 1], seeds=0)
    args = {"lr": 0.1, "epochs": 1, "batch_size": 1, keyword: value}
    with pytest.raises(InputError, match=message):
        nnlab.train(net, [[0.0, 1.0]], [[1.0]], **args)


def test_a_read_only_x_trains_with_the_compiled_kernels_as_they_are():
    """A read-only X (a memory-mapped file, a view) gives the same numbers without a compile of its
    own: the kernels get the one array type they are compiled for."""
    from nnlab.sgd import _kernel_ready

    X = np.array([[0.0, 1.0], [1.0, 0.0]])
    X.setflags(write=False)
    ready = _kernel_ready(X)
    assert ready.flags.writeable and ready is not X
    net = nnlab.init_network([2, 2, 1], seeds=0)
    a = nnlab.train(net, X, [[1.0], [0.0]], lr=0.1, epochs=3).loss_curve
    b = nnlab.train(net, X.copy(), [[1.0], [0.0]], lr=0.1, epochs=3).loss_curve
    np.testing.assert_array_equal(a, b)
