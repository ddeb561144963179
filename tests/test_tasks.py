"""Tasks: shapes, targets inside tanh's range, determinism, splits and every validation error."""

import numpy as np
import pytest

from nnlab import tasks


def test_xor_corners_and_labels():
    X, Y = tasks.xor(target=0.8)
    assert X.shape == (4, 2) and Y.shape == (4, 1) and X.dtype == np.float64
    np.testing.assert_array_equal(Y[:, 0], [-0.8, 0.8, 0.8, -0.8])


def test_xor_blobs_keep_the_corner_labels():
    X, Y = tasks.xor(n=400, noise=0.1, seed=3)
    assert X.shape == (400, 2)
    # Labels come from the corner, not from the noisy point; the blobs sit around their corners.
    np.testing.assert_array_equal(Y[:4, 0], [-0.9, 0.9, 0.9, -0.9])
    np.testing.assert_allclose(X[0::4].mean(axis=0), [-1.0, -1.0], atol=0.05)
    np.testing.assert_array_equal(tasks.xor(n=400, noise=0.1, seed=3)[0], X)
    assert not np.array_equal(tasks.xor(n=400, noise=0.1, seed=4)[0], X)


def test_spirals_two_balanced_classes_inside_the_unit_disc():
    X, Y = tasks.spirals(n=101, turns=2.0, seed=1)
    assert X.shape == (101, 2) and Y.shape == (101, 1)
    assert np.sum(Y > 0) == 51 and np.sum(Y < 0) == 50
    assert np.all(np.hypot(X[:, 0], X[:, 1]) <= 1.0 + 1e-12)
    # The second spiral is the first turned by pi: radius t, angle + pi.
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.min() >= 0 and r.max() <= 1


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "identity"])
@pytest.mark.parametrize("orthonormal", [False, True])
def test_teacher_is_realizable_and_inside_tanh_range(activation, orthonormal):
    X, Y = tasks.teacher(
        n=500, dim=6, teacher_width=3, activation=activation, orthonormal=orthonormal, seed=2
    )
    assert X.shape == (500, 6) and Y.shape == (500, 1)
    assert np.all(np.abs(Y) < 1) and Y.std() > 0.05
    np.testing.assert_array_equal(
        tasks.teacher(n=500, dim=6, teacher_width=3, activation=activation, orthonormal=orthonormal, seed=2)[
            1
        ],
        Y,
    )


def test_chain_is_deterministic_and_inside_tanh_range():
    X, Y = tasks.chain(n=8, slope=0.5, seed=3)
    X2, _ = tasks.chain(n=8, slope=0.5, seed=3)
    np.testing.assert_array_equal(X, X2)
    assert X.shape == Y.shape == (8, 1) and np.all(np.abs(Y) < 1)


def test_digits_one_hot():
    pytest.importorskip("sklearn")
    X, Y = tasks.digits()
    assert X.shape == (1797, 64) and Y.shape == (1797, 10)
    assert X.min() >= 0 and X.max() <= 1
    np.testing.assert_array_equal(np.sort(np.unique(Y)), [-1.0, 1.0])
    np.testing.assert_array_equal((Y > 0).sum(axis=1), 1)


def test_digits_class_targets_for_classification_losses():
    pytest.importorskip("sklearn")
    _, signed = tasks.digits(target=0.9)
    X, onehot = tasks.digits(encoding="onehot")
    np.testing.assert_array_equal(np.unique(onehot), [0.0, 1.0])
    np.testing.assert_array_equal(onehot.sum(axis=1), 1.0)
    np.testing.assert_array_equal(onehot.argmax(axis=1), signed.argmax(axis=1))
    np.testing.assert_array_equal(np.unique(tasks.digits(target=1.0)[1]), [-1.0, 1.0])  # for the hinge
    with pytest.raises(ValueError, match=r"^target: only with encoding 'signed'"):
        tasks.digits(target=0.9, encoding="onehot")
    with pytest.raises(ValueError, match=r"^encoding: unknown 'one-hot'.*choose one of: onehot, signed"):
        tasks.digits(encoding="one-hot")


def test_file_class_labels_become_one_hot_rows(tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,label\n1,2,0\n3,4,2\n5,6,1\n")
    X, Y = tasks.file(path=csv, inputs=["a", "b"], targets=["label"], classes=3)
    np.testing.assert_array_equal(Y, [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"^targets: 'label' in data.csv must hold class labels 0..1, got 2"):
        tasks.file(path=csv, inputs=["a", "b"], targets=["label"], classes=2)
    with pytest.raises(ValueError, match=r"^targets: with classes, one column of class labels"):
        tasks.file(path=csv, inputs=["a"], targets=["b", "label"], classes=3)
    with pytest.raises(ValueError, match=r"^classes: expected an int in 2..100_000"):
        tasks.file(path=csv, inputs=["a"], targets=["label"], classes=1)


def test_file_csv_and_npz(tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,y\n1,2,0.5\n3,4,-0.5\n5,6,0.25\n")
    X, Y = tasks.file(path=csv, inputs=["a", "b"], targets=["y"])
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(Y, [[0.5], [-0.5], [0.25]])
    npz = tmp_path / "data.npz"
    np.savez(npz, a=np.arange(3.0), y=np.ones(3))
    X, Y = tasks.file(path=str(npz), inputs=["a"], targets=["y"])
    assert X.shape == (3, 1) and Y.shape == (3, 1)
    with pytest.raises(ValueError, match="^inputs: no column 'c' in data.csv; it has: a, b, y"):
        tasks.file(path=csv, inputs=["c"], targets=["y"])
    with pytest.raises(ValueError, match="^path: no such file"):
        tasks.file(path=tmp_path / "missing.csv", inputs=["a"], targets=["y"])
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(ValueError, match=r"^path: expected a \.csv or \.npz file"):
        tasks.file(path=tmp_path / "data.txt", inputs=["a"], targets=["y"])
    bad = tmp_path / "bad.csv"
    bad.write_text("a,y\n1,\n2,3\n")
    with pytest.raises(ValueError, match="^targets: bad.csv has missing or non-finite values"):
        tasks.file(path=bad, inputs=["a"], targets=["y"])


def test_file_edge_cases(tmp_path):
    npz = tmp_path / "two_d.npz"
    np.savez(npz, X=np.arange(6.0).reshape(3, 2), Y=np.ones((3, 1)), short=np.ones(2))
    X, Y = tasks.file(path=npz, inputs=["X"], targets=["Y"])  # a 2-D array is its columns
    np.testing.assert_array_equal(X, [[0, 1], [2, 3], [4, 5]])
    with pytest.raises(ValueError, match="^targets: two_d.npz has 2 target rows but 3 input rows"):
        tasks.file(path=npz, inputs=["X"], targets=["short"])
    with pytest.raises(ValueError, match="^inputs: a column is named twice"):
        tasks.file(path=npz, inputs=["X", "X"], targets=["Y"])
    for name, text in (("empty.csv", ""), ("blank.csv", "  \n")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=f"^path: {name} is empty; expected a header row"):
            tasks.file(path=tmp_path / name, inputs=["a"], targets=["y"])
    (tmp_path / "head.csv").write_text("a,y\n")
    with pytest.raises(ValueError, match="^path: head.csv has no rows"):
        tasks.file(path=tmp_path / "head.csv", inputs=["a"], targets=["y"])
    digest = tasks.file_sha256(npz)
    assert tasks.file(path=npz, inputs=["X"], targets=["Y"], sha256=digest)[0].shape == (3, 2)
    with pytest.raises(ValueError, match="^path: .*two_d.npz changed since this experiment recorded it"):
        tasks.file(path=npz, inputs=["X"], targets=["Y"], sha256="0" * 64)


def test_csv_as_spreadsheets_and_pandas_write_it(tmp_path):
    """Header names are kept as written; an index column, quoted fields and a byte-order mark
    are fine; a short row or a word where a number belongs is named."""
    files = {
        "names.csv": "x-1,x 2,Y(t)\n1,2,0.5\n3,4,-0.5\n",
        "index.csv": ",x-1,x 2,Y(t)\n0,1,2,0.5\n1,3,4,-0.5\n",
        "quoted.csv": '"x-1","x 2","Y(t)"\n"1","2","0.5"\n"3","4","-0.5"\n',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "bom.csv").write_text(files["names.csv"], encoding="utf-8-sig")
    for name in [*files, "bom.csv"]:
        X, Y = tasks.file(path=tmp_path / name, inputs=["x-1", "x 2"], targets=["Y(t)"])
        np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
        np.testing.assert_array_equal(Y, [[0.5], [-0.5]])
    (tmp_path / "short.csv").write_text("a,b,y\n1,2,3\n1,2\n")
    with pytest.raises(ValueError, match="^path: short.csv row 3 has 2 fields, its header 3"):
        tasks.file(path=tmp_path / "short.csv", inputs=["a"], targets=["y"])
    (tmp_path / "word.csv").write_text("a,y\n1,2\nfoo,3\n")
    with pytest.raises(ValueError, match="^path: word.csv row 3, column 'a': 'foo' is not a number"):
        tasks.file(path=tmp_path / "word.csv", inputs=["a"], targets=["y"])
    with pytest.raises(
        ValueError, match="^inputs: no column 'x1' in index.csv; it has: '', x-1, x 2, Y\\(t\\)"
    ):
        tasks.file(path=tmp_path / "index.csv", inputs=["x1"], targets=["Y(t)"])


def test_make_task_by_name_and_field_errors():
    X, Y = tasks.make_task("xor", {"n": 8, "noise": 0.0})
    assert X.shape == (8, 2)
    with pytest.raises(ValueError, match=r"^kind: unknown 'xro' \(did you mean 'xor'\?\)"):
        tasks.make_task("xro", {})
    with pytest.raises(
        ValueError, match=r"^task.nosie: not a field of kind 'xor' \(did you mean 'noise'\?\)"
    ):
        tasks.make_task("xor", {"nosie": 0.1})
    with pytest.raises(ValueError, match="^task: kind 'file'"):
        tasks.make_task("file", {"path": "x.csv"})


def test_split_is_seeded_and_disjoint():
    X = np.arange(20.0)[:, None]
    Y = -X
    Xtr, Ytr, Xte, Yte = tasks.split(X, Y, test_fraction=0.25, seed=1)
    assert Xte.shape == (5, 1) and Xtr.shape == (15, 1)
    assert set(Xtr[:, 0]) | set(Xte[:, 0]) == set(range(20)) and not set(Xtr[:, 0]) & set(Xte[:, 0])
    np.testing.assert_array_equal(Yte, -Xte)
    np.testing.assert_array_equal(tasks.split(X, Y, test_fraction=0.25, seed=1)[2], Xte)
    Xtr0, _, Xte0, _ = tasks.split(X, Y, test_fraction=0.0)
    assert Xte0.shape == (0, 1) and Xtr0.shape == (20, 1)


@pytest.mark.parametrize(
    ("fn", "kwargs", "name"),
    [
        (tasks.xor, {"target": 1.0}, "target"),
        (tasks.xor, {"n": 3}, "n"),
        (tasks.xor, {"noise": -1.0}, "noise"),
        (tasks.spirals, {"turns": 0.0}, "turns"),
        (tasks.spirals, {"n": 1}, "n"),
        (tasks.teacher, {"dim": 0}, "dim"),
        (tasks.teacher, {"teacher_width": 0}, "teacher_width"),
        (tasks.teacher, {"activation": "tahn"}, "activation"),
        (tasks.teacher, {"orthonormal": True, "dim": 2, "teacher_width": 3}, "orthonormal"),
        (tasks.teacher, {"orthonormal": "yes"}, "orthonormal"),
        (tasks.chain, {"n": 0}, "n"),
        (tasks.chain, {"slope": 1.5}, "slope"),
        (tasks.chain, {"seed": -1}, "seed"),
        (tasks.digits, {"target": 0.0}, "target"),
        (tasks.file, {"path": "x.csv", "inputs": [], "targets": ["y"]}, "inputs"),
    ],
)
def test_bad_arguments_name_the_field(fn, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        fn(**kwargs)


def test_split_bad_fraction():
    X = np.zeros((4, 1))
    with pytest.raises(ValueError, match="^test_fraction:"):
        tasks.split(X, X, test_fraction=1.0)
    with pytest.raises(ValueError, match="^test_fraction: 0.9 leaves no training samples"):
        tasks.split(X, X, test_fraction=0.9)


def test_fixed_data_takes_the_experiments_data_seed(tmp_path):
    """digits and file data have no randomness: the data seed every experiment carries only
    chooses their held-out split."""
    from nnlab.sweep import load_data
    from nnlab.sweep.experiment import validate

    csv = tmp_path / "data.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{-i},{i / 10}\n" for i in range(8)))
    fields = {"path": str(csv), "inputs": ["a", "b"], "targets": ["y"]}
    np.testing.assert_array_equal(tasks.make_task("file", {**fields, "seed": 3})[0], tasks.file(**fields)[0])
    exp = validate({"name": "f", "task": {"kind": "file", **fields, "test_fraction": 0.25}})
    X, Y, X_test, Y_test = load_data(exp)
    assert X.shape == (6, 2) and X_test.shape == (2, 2)
