"""Tasks: pure functions of their parameters and the data's own seed, returning float64 inputs
X (n, d) and targets Y (n, out).

Targets of the synthetic tasks lie inside the range of a tanh output. `make_task` builds a task by
name from a dict of parameters (as an experiment file gives them), validating every field; `split`
keeps a held-out part.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import numpy as np

from nnlab.errors import InputError, did_you_mean
from nnlab.functions import ACTIVATIONS, ELEMENTWISE


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(_int("seed", seed, 0, MAX_SEED)))


# Bounds on the data's sizes: X and Y are built in memory, so a size beyond these is a field error
# rather than a MemoryError (10**8 numbers are 800 MB of float64).
MAX_SAMPLES = 10_000_000
MAX_DIM = 100_000
MAX_NUMBERS = 10**8
MAX_SEED = 2**63 - 1


def _int(name: str, value: object, low: int, high: int | None = None) -> int:
    ok = not isinstance(value, bool) and isinstance(value, int | np.integer) and value >= low
    if not ok or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in {low}..{high:_}"
        raise InputError(f"{name}: expected an int {allowed}, got {_shown(value)}")
    return int(value)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _size(field: str, rows: int, columns: int, what: str) -> None:
    """An array of ``rows`` x ``columns`` numbers must stay under MAX_NUMBERS."""
    if rows * columns > MAX_NUMBERS:
        raise InputError(
            f"{field}: {what} = {rows * columns:_} numbers to hold in memory, more than {MAX_NUMBERS:_}"
        )


def _number(name: str, value: object, low: float, high: float, *, open_low=False, open_high=False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float | np.number)
    if ok:
        v = float(value)
        ok = np.isfinite(v) and (v > low if open_low else v >= low) and (v < high if open_high else v <= high)
    if not ok:
        lo, hi = "(" if open_low else "[", ")" if open_high else "]"
        raise InputError(f"{name}: expected a number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return float(value)


def _target(value: object) -> float:
    return _number("target", value, 0.0, 1.0, open_low=True, open_high=True)


def xor(
    *, n: int = 4, noise: float = 0.0, target: float = 0.9, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The corners of [-1, 1]^2 labelled with their XOR.

    Parameters
    ----------
    n : int
        Samples, >= 4; sample i sits at corner i mod 4. With ``n = 4`` and ``noise = 0`` these are the
        four corners.
    noise : float
        Standard deviation of Gaussian blobs around the corners, >= 0.
    target : float
        Label magnitude in (0, 1): Y = +target where the coordinates' signs differ, else -target.
    seed : int
        The data's own seed (used by the noise).

    Returns
    -------
    X : ndarray (n, 2)
    Y : ndarray (n, 1)
    """
    n = _int("n", n, 4, MAX_SAMPLES)
    noise = _number("noise", noise, 0.0, np.inf, open_high=True)
    target = _target(target)
    corners = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    X = corners[np.arange(n) % 4]
    if noise > 0:
        X = X + _rng(seed).normal(0.0, noise, size=X.shape)
    labels = corners[np.arange(n) % 4]
    Y = np.where(labels[:, :1] * labels[:, 1:] < 0, target, -target)
    return X, Y


def spirals(
    *, n: int = 200, noise: float = 0.0, turns: float = 1.5, target: float = 0.9, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals in the plane, one per class.

    Point i of class c has t uniform in [0, 1], angle 2 pi turns t + c pi and radius t.

    Parameters
    ----------
    n : int
        Samples, >= 2, split evenly between the classes (the first class gets the odd one).
    noise : float
        Standard deviation of Gaussian noise added to the points, >= 0.
    turns : float
        Turns of each spiral, > 0.
    target : float
        Label magnitude in (0, 1): +target for the first spiral, -target for the second.
    seed : int
        The data's own seed.

    Returns
    -------
    X : ndarray (n, 2)
    Y : ndarray (n, 1)
    """
    n = _int("n", n, 2, MAX_SAMPLES)
    noise = _number("noise", noise, 0.0, np.inf, open_high=True)
    turns = _number("turns", turns, 0.0, np.inf, open_low=True, open_high=True)
    target = _target(target)
    rng = _rng(seed)
    c = np.arange(n) % 2
    t = rng.uniform(0.0, 1.0, size=n)
    angle = 2.0 * np.pi * turns * t + np.pi * c
    X = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    if noise > 0:
        X = X + rng.normal(0.0, noise, size=X.shape)
    Y = np.where(c == 0, target, -target)[:, None].astype(np.float64)
    return X, Y


def teacher(
    *,
    n: int = 256,
    dim: int = 4,
    teacher_width: int = 4,
    activation: str = "tanh",
    orthonormal: bool = False,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs labelled by a random teacher network, the realizable setting of
    teacher-student studies: Y = tanh((act(X W) - act(0)) v), a one-hidden-layer tanh-output network
    whose output bias centres it.

    W (dim, teacher_width) has N(0, 1/dim) entries, or orthonormal columns (needs
    teacher_width <= dim); v (teacher_width,) has entries +-2/sqrt(teacher_width) with random signs,
    so Y spreads over tanh's range without saturating.

    Parameters
    ----------
    n : int
        Samples, >= 1; X ~ N(0, I_dim).
    dim : int
        Input size, >= 1.
    teacher_width : int
        Hidden units of the teacher, >= 1.
    activation : {"identity", "relu", "sigmoid", "tanh"}
        The teacher's hidden activation.
    orthonormal : bool
        Orthonormal teacher weight columns.
    seed : int
        The data's own seed (inputs and teacher).

    Returns
    -------
    X : ndarray (n, dim)
    Y : ndarray (n, 1)
    """
    n, dim, k, act = _teacher_fields(n, dim, teacher_width, activation, orthonormal)
    rng = _rng(seed)
    if orthonormal:
        W, _ = np.linalg.qr(rng.normal(size=(dim, k)))
    else:
        W = rng.normal(0.0, 1.0 / np.sqrt(dim), size=(dim, k))
    v = rng.choice([-2.0, 2.0], size=k) / np.sqrt(k)
    X = rng.normal(size=(n, dim))
    f = ACTIVATIONS[act]
    # The output bias -act(0) . v maps x = 0 to 0 (it matters for sigmoid, whose units sit at 1/2).
    Y = np.tanh((f(X @ W) - f(np.zeros(1))) @ v)[:, None]
    return X, Y


def _teacher_fields(n, dim, teacher_width, activation, orthonormal) -> tuple[int, int, int, str]:
    """`teacher`'s fields validated: (n, dim, teacher_width, activation)."""
    n = _int("n", n, 1, MAX_SAMPLES)
    dim = _int("dim", dim, 1, MAX_DIM)
    k = _int("teacher_width", teacher_width, 1, MAX_DIM)
    _size("n", n, dim, f"{n:_} samples x dim {dim:_}")
    _size("teacher_width", dim, k, f"dim {dim:_} x teacher_width {k:_}")
    act = _choice("activation", activation, ELEMENTWISE)
    if not isinstance(orthonormal, bool):
        raise InputError(f"orthonormal: expected true or false, got {orthonormal!r}")
    if orthonormal and k > dim:
        raise InputError(f"orthonormal: needs teacher_width <= dim, got teacher_width {k} > dim {dim}")
    return n, dim, k, act


def chain(*, n: int = 16, slope: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scalar pairs for the single-unit chain f_L = tanh(... tanh(x w_1) ... w_L).

    Parameters
    ----------
    n : int
        Samples, >= 1; x uniform in [-1, 1].
    slope : float
        Y = slope * X, |slope| < 1 (inside tanh's range).
    seed : int
        The data's own seed.

    Returns
    -------
    X, Y : ndarray (n, 1)
    """
    n = _int("n", n, 1, MAX_SAMPLES)
    slope = _number("slope", slope, -1.0, 1.0, open_low=True, open_high=True)
    X = _rng(seed).uniform(-1.0, 1.0, size=(n, 1))
    return X, slope * X


ENCODINGS = ("signed", "onehot")


def digits(*, target: float = 1.0, encoding: str = "signed") -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits that ship with scikit-learn (1797 samples).

    Inputs are the 64 pixel intensities scaled to [0, 1]; targets mark the class among 10 outputs.
    Needs scikit-learn installed.

    Parameters
    ----------
    target : float
        With encoding "signed": +target for the class, -target elsewhere, in (0, 1] (a tanh output;
        target 1 gives the +-1 of the hinge loss).
    encoding : {"signed", "onehot"}
        "onehot": 1 for the class, 0 elsewhere (softmax outputs with cross_entropy).

    Returns
    -------
    X : ndarray (1797, 64)
    Y : ndarray (1797, 10)
    """
    target, encoding = _digits_fields(target, encoding)
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise InputError("kind: 'digits' needs scikit-learn installed (pip install scikit-learn)") from err
    data = load_digits()
    X = np.asarray(data.data, dtype=np.float64) / 16.0
    Y = np.full((X.shape[0], 10), 0.0 if encoding == "onehot" else -target)
    Y[np.arange(X.shape[0]), data.target] = target
    return X, Y


DIGITS_SHAPE = (1797, 64, 10)  # samples, inputs, outputs of `digits`


def _digits_fields(target: object, encoding: object) -> tuple[float, str]:
    target = _number("target", target, 0.0, 1.0, open_low=True)
    encoding = _choice("encoding", encoding, ENCODINGS)
    if encoding == "onehot" and target != 1.0:
        raise InputError(f"target: only with encoding 'signed' (one-hot rows are 0 and 1), got {target:g}")
    return target, encoding


def check_data_file(path: Path, field: str = "path") -> None:
    """InputError unless ``path`` is a regular file (or a link to one): a missing file, a folder, a
    FIFO (which would block its reader) or a device each said as what it is."""
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{field}: no such file: {path}") from None
    except OSError as err:
        raise InputError(f"{field}: cannot read {path}: {err.strerror or err}") from None
    if stat.S_ISREG(mode):
        return
    what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a special file"
    raise InputError(f"{field}: {path} is {what}, not a data file (.csv or .npz)")


# NPZ arrays hold numbers: booleans, integers or floats. Complex numbers would lose their imaginary
# part, datetimes become day counts, strings and records have no float value.
_NUMERIC = "biuf"
_DTYPE_WORDS = {"c": "complex numbers", "M": "datetimes", "m": "time spans", "U": "strings", "S": "bytes"}


def _read_npz(p: Path) -> dict[str, np.ndarray]:
    """The arrays of an NPZ file (a zip of .npy files, never pickles), each one of numbers."""
    import zipfile

    with open(p, "rb") as fh:
        magic = fh.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise InputError(f"path: {p.name} is not an NPZ file (a zip of .npy arrays, as numpy.savez writes)")
    try:
        with np.load(p, allow_pickle=False) as archive:  # data never runs code
            columns = {key: np.asarray(archive[key]) for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        why = " ".join(str(err).split())
        raise InputError(f"path: {p.name} is not a readable NPZ file ({why})") from None
    for key, a in columns.items():
        if a.dtype.kind not in _NUMERIC:
            what = _DTYPE_WORDS.get(a.dtype.kind, "records" if a.dtype.names else f"dtype {a.dtype}")
            raise InputError(
                f"path: array {key!r} in {p.name} holds {what} ({a.dtype}); expected numbers (int or float)"
            )
    return columns


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a data file's bytes (hex): what identifies a `file` task's data."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_csv(p: Path, wanted: list[str]) -> dict[str, np.ndarray]:
    """The ``wanted`` columns of a CSV file with a header row, as float arrays (an empty cell is
    NaN). The standard csv module rather than numpy's genfromtxt: header names stay exactly as
    written, quoted fields and a byte-order mark (spreadsheet exports) are understood."""
    import csv

    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(cell.strip() for cell in r)]
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"path: {p.name} is not a readable UTF-8 CSV file ({err})") from None
    if not rows:
        raise InputError(f"path: {p.name} is empty; expected a header row, then one row per sample")
    header = [name.strip() for name in rows[0]]
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InputError(f"path: {p.name} row {line} has {len(row)} fields, its header {len(header)}")
    # Every name of the header (in its order, for messages); only the wanted columns are parsed.
    columns: dict[str, np.ndarray | None] = dict.fromkeys(header)
    for name in wanted:
        if name not in columns:
            continue  # reported by the caller, with the names the file does have
        k = header.index(name)
        values = []
        for line, row in enumerate(rows[1:], start=2):
            cell = row[k].strip()
            try:
                values.append(float(cell) if cell else np.nan)
            except ValueError:
                raise InputError(
                    f"path: {p.name} row {line}, column {name!r}: {cell!r} is not a number"
                ) from None
        columns[name] = np.array(values, dtype=np.float64)
    return columns


def file(
    *,
    path: str | Path,
    inputs: list[str],
    targets: list[str],
    sha256: str | None = None,
    classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A user's data: a CSV file with a header row, or an NPZ file of named arrays.

    Parameters
    ----------
    path : str or Path
        A .csv or .npz file.
    inputs, targets : list of str
        Column (CSV) or array (NPZ) names; each list non-empty, no name twice. An NPZ array may be
        1-D (n,), one column, or 2-D (n, k), k columns.
    sha256 : str, optional
        The file's expected SHA-256 (`file_sha256`); a file whose content differs is an error. An
        experiment records it, so results are never silently mixed with those of other data.
    classes : int, optional
        The one target column holds class labels 0..classes-1, returned as one-hot rows (a softmax
        output of ``classes`` units with cross_entropy).

    Returns
    -------
    X : ndarray (n, number of input columns)
    Y : ndarray (n, number of target columns, or classes)
    """
    p = Path(path)
    for name, cols in (("inputs", inputs), ("targets", targets)):
        if not isinstance(cols, list | tuple) or not cols or not all(isinstance(c, str) for c in cols):
            raise InputError(f"{name}: expected a non-empty list of column names, got {cols!r}")
        if len(set(cols)) != len(cols):
            raise InputError(f"{name}: a column is named twice in {list(cols)!r}")
    check_data_file(p)
    if sha256 is not None and file_sha256(p) != sha256:
        raise InputError(
            f"path: {p} changed since this experiment recorded it (sha256 {sha256[:12]}...); its runs "
            "were trained on other data: restore the file, or rerun with --fresh"
        )
    if p.suffix.lower() == ".npz":
        columns = _read_npz(p)
    elif p.suffix.lower() == ".csv":
        columns = _read_csv(p, [*inputs, *targets])
    else:
        raise InputError(f"path: expected a .csv or .npz file, got {p.name}")

    def take(name: str, cols: list[str]) -> np.ndarray:
        missing = [c for c in cols if c not in columns]
        if missing:
            names = ", ".join(c if c else "''" for c in columns)
            raise InputError(f"{name}: no column {missing[0]!r} in {p.name}; it has: {names}")
        parts = []
        for c in cols:
            a = np.asarray(columns[c], dtype=np.float64)
            if a.ndim > 2:
                raise InputError(f"{name}: {c!r} in {p.name} has shape {a.shape}; expected (n,) or (n, k)")
            parts.append(a if a.ndim == 2 else a.reshape(-1, 1))
        rows = {len(a) for a in parts}
        if len(rows) > 1:
            raise InputError(f"{name}: the columns {cols} of {p.name} differ in length: {sorted(rows)}")
        out = np.concatenate(parts, axis=1)
        if not np.isfinite(out).all():
            raise InputError(f"{name}: {p.name} has missing or non-finite values in {cols}")
        return out

    if classes is not None:
        classes = _int("classes", classes, 2, MAX_DIM)
        if len(targets) != 1:
            raise InputError(f"targets: with classes, one column of class labels, got {list(targets)!r}")
    X, Y = take("inputs", list(inputs)), take("targets", list(targets))
    if X.shape[0] == 0:
        raise InputError(f"path: {p.name} has no rows")
    if X.shape[0] != Y.shape[0]:
        raise InputError(f"targets: {p.name} has {Y.shape[0]} target rows but {X.shape[0]} input rows")
    if classes is not None:
        labels = Y[:, 0]
        bad = (labels != np.round(labels)) | (labels < 0) | (labels >= classes)
        if bad.any():
            raise InputError(
                f"targets: {targets[0]!r} in {p.name} must hold class labels 0..{classes - 1}, "
                f"got {labels[bad][0]:g}"
            )
        _size("classes", len(labels), classes, f"{len(labels):_} samples x {classes:_} classes")
        Y = np.zeros((len(labels), classes))
        Y[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
    return X, Y


TASKS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "chain": chain,
    "digits": digits,
    "file": file,
    "spirals": spirals,
    "teacher": teacher,
    "xor": xor,
}


def _choice(name: str, value: object, allowed: Collection[str]) -> str:
    if isinstance(value, str) and value in allowed:
        return value
    hint = did_you_mean(value, allowed)
    raise InputError(f"{name}: unknown {value!r}{hint}; choose one of: {', '.join(sorted(allowed))}")


def make_task(kind: str, params: Mapping[str, object] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Build task ``kind`` from ``params`` (the fields of an experiment's [task] section).

    Unknown fields are errors that name the closest valid field.
    """
    fn, params = _fields_of(kind, params)
    try:
        return fn(**params)
    except TypeError as err:  # a required field is missing
        raise InputError(f"task: kind '{kind}' {err}") from None


def _fields_of(kind: str, params: Mapping[str, object] | None) -> tuple[Callable, dict]:
    """Task ``kind``'s function and ``params`` without the seed it does not take; an unknown field is
    an error naming the closest valid one."""
    fn = TASKS[_choice("kind", kind, TASKS)]
    params = dict(params or {})
    allowed = list(inspect.signature(fn).parameters)
    if "seed" not in allowed:
        # Every experiment has a data seed; fixed data (digits, a file) uses it only for the split.
        params.pop("seed", None)
    for key in params:
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            raise InputError(
                f"task.{key}: not a field of kind '{kind}'{hint}; fields: {', '.join(sorted(allowed))}"
            )
    return fn, params


# The fewest samples of each synthetic task: its shape is planned from a task this small (its
# other fields validated by building it), with the number of samples checked on its own.
_SMALLEST = {"xor": 4, "spirals": 2, "chain": 1}


def task_shape(kind: str, params: Mapping[str, object] | None = None) -> tuple[int, int, int]:
    """(n, d, out) of task ``kind`` with ``params``, as `make_task` would build it, its fields
    validated the same way; the digits are not loaded (their shape is fixed: `DIGITS_SHAPE`), so
    planning a digits sweep does not import scikit-learn."""
    fn, params = _fields_of(kind, params)
    fields = {k: p.default for k, p in inspect.signature(fn).parameters.items()}
    given = {**fields, **params}
    if kind == "digits":
        _digits_fields(given["target"], given["encoding"])
        return DIGITS_SHAPE
    if kind == "teacher":
        _int("seed", given["seed"], 0, MAX_SEED)
        names = ("n", "dim", "teacher_width", "activation", "orthonormal")
        n, dim, _, _ = _teacher_fields(*(given[k] for k in names))
        return n, dim, 1
    if kind in _SMALLEST:
        n = _int("n", given["n"], _SMALLEST[kind], MAX_SAMPLES)
        X, Y = fn(**{**params, "n": _SMALLEST[kind]})
        return n, X.shape[1], Y.shape[1]
    X, Y = make_task(kind, params)  # a user's file: its rows are counted by reading it
    return X.shape[0], X.shape[1], Y.shape[1]


def split(
    X: np.ndarray, Y: np.ndarray, *, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out ``round(test_fraction * n)`` samples, chosen by the data's seed.

    Returns
    -------
    X_train, Y_train, X_test, Y_test
    """
    f = _number("test_fraction", test_fraction, 0.0, 1.0, open_high=True)
    n = X.shape[0]
    n_test = int(round(f * n))
    if n_test >= n:
        raise InputError(f"test_fraction: {f:g} leaves no training samples out of {n}")
    if f > 0 and n_test == 0:
        # An empty split has no loss to report; say so rather than record a NaN test loss.
        raise InputError(
            f"test_fraction: {f:g} of {n} samples holds out none; hold out at least one ({1 / n:.3g} or "
            "more), or set 0 for no held-out split"
        )
    rng = np.random.default_rng(np.random.SeedSequence(_int("seed", seed, 0, MAX_SEED), spawn_key=(2,)))
    perm = rng.permutation(n)
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return X[train], Y[train], X[test], Y[test]
