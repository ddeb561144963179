"""Tasks: shapes, targets inside tanh's range, determinism and bad arguments."""

import numpy as np
import pytest

from nnlab import tasks


def test_xor_corners_and_labels():
    X, Y = tasks.xor(target=0.8)
    assert X.shape == (4, 2) and Y.shape == (4, 1) and X.dtype == np.float64
    np.testing.assert_array_equal(Y[:, 0], [-0.8, 0.8, 0.8, -0.8])


def test_chain_is_deterministic_and_inside_tanh_range():
    X, Y = tasks.chain(n=8, slope=0.5, seed=3)
    X2, _ = tasks.chain(n=8, slope=0.5, seed=3)
    np.testing.assert_array_equal(X, X2)
    assert X.shape == Y.shape == (8, 1) and np.all(np.abs(Y) < 1)


@pytest.mark.parametrize(
    ("fn", "kwargs", "name"),
    [
        (tasks.xor, {"target": 1.0}, "target"),
        (tasks.chain, {"n": 0}, "n"),
        (tasks.chain, {"slope": 1.5}, "slope"),
    ],
)
def test_bad_arguments_name_the_field(fn, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        fn(**kwargs)
