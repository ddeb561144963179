"""Shared fixtures."""

import os

import numpy as np
import pytest

# `nnlab run` and `nnlab landscape` default to --jobs auto (a worker per core): the tests' tiny sweeps
# run in the test process, as with --jobs 1, unless a test asks for workers.
os.environ.setdefault("NNLAB_JOBS", "1")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so every test draws the same data on every run."""
    return np.random.default_rng(0)


def write_file_experiment(folder, csv: str, sections: str = "", top: str = ""):
    """A `file` experiment named "f" in ``folder``: ``csv`` as d.csv (inputs: every column but the
    last, the target), ``sections`` appended ([model] and [train] tables), ``top`` before [task]."""
    (folder / "d.csv").write_text(csv)
    names = csv.splitlines()[0].split(",")
    path = folder / "f.toml"
    path.write_text(
        f'name = "f"\n{top}[task]\nkind = "file"\npath = "d.csv"\n'
        f"inputs = {names[:-1]!r}\ntargets = {names[-1:]!r}\n".replace("'", '"')
        + sections
    )
    return path
