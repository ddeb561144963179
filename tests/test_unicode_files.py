"""Experiment files hold any Unicode (issue 20): experiment.toml is valid TOML whatever the
description, a CSV's column names or a data path hold (non-ASCII, above U+FFFF, control
characters), and reads back to the same experiment; a UTF-8 byte-order mark is read past."""

import functools
import time
import tomllib

from nnlab import tasks
from nnlab.sweep.experiment import from_dict, load, validate
from nnlab.sweep.planning import data_shape

ODD = 'é 中 😀 \U0010fffd \x00\x01\x1f\x7f \t\n\r "quoted" back\\slash'


def test_every_field_round_trips_through_experiment_toml(tmp_path):
    folder = tmp_path / f"data {ODD[:8].strip()}"
    folder.mkdir()
    path = folder / "d😀.csv"
    x, y = "x 😀\x01", 'y "é"'
    path.write_text(f'"{x}","{y.replace(chr(34), chr(34) * 2)}"\n0,0.5\n1,-0.5\n', encoding="utf-8")
    exp = from_dict(
        {
            "name": "odd",
            "description": ODD,
            "task": {"kind": "file", "path": str(path), "inputs": [x], "targets": [y]},
            "model": {"width": [2, 3], "hidden": ["tanh", "relu"]},
            "train": {"lr": [0.1, 1e-300, 1e300], "seeds": [0, 2**63 - 1]},
        }
    )
    text = exp.to_toml()
    assert "\\ud83d" not in text  # no JSON surrogate pair: TOML has none
    back = validate(tomllib.loads(text))
    assert back == exp and back.description == ODD and back.task["inputs"] == [x]
    (tmp_path / "e.toml").write_text(text, encoding="utf-8")
    assert load(tmp_path / "e.toml") == exp  # the data file checked against its recorded sha256


def test_a_byte_order_mark_is_read_past(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes('\ufeffname = "bom"\ndescription = "é"\n[task]\nkind = "xor"\n'.encode())
    assert load(path).name == "bom" and load(path).description == "é"


def test_the_dry_run_plans_from_the_tasks_shape_without_its_data(monkeypatch):
    """teacher n = 10^7 (1.5 GB to build) is planned at once, from its fields alone."""

    def build(**fields):
        raise AssertionError("the data was built")

    monkeypatch.setitem(tasks.TASKS, "teacher", functools.wraps(tasks.teacher)(build))
    exp = from_dict({"name": "big", "task": {"kind": "teacher", "n": 10**7, "dim": 5}})
    start = time.monotonic()
    assert data_shape(exp) == (10**7, 0, 5, 1)
    assert time.monotonic() - start < 1
