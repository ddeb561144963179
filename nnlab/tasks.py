"""Tasks: pure functions of their parameters returning float64 data X (n, d) and targets Y (n, out).

Targets lie inside the range of a tanh output. More tasks (spirals, teacher, digits, files) arrive with
the sweep runner.
"""

from __future__ import annotations

import numpy as np


def xor(*, target: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """The four corners of [-1, 1]^2 labelled with their XOR: X (4, 2), Y (4, 1) in {-target, +target}.

    Parameters
    ----------
    target : float
        Magnitude of the labels, in (0, 1) so a tanh output can reach them.
    """
    if not 0.0 < target < 1.0:
        raise ValueError(f"target: expected a number in (0, 1), got {target!r}")
    X = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    Y = np.where(X[:, :1] * X[:, 1:] < 0, target, -target)
    return X, Y


def chain(*, n: int = 16, slope: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scalar pairs for the single-unit chain f_L = tanh(... tanh(x w_1) ... w_L): X (n, 1) uniform
    in [-1, 1], Y = slope * X, inside tanh's range for |slope| < 1.

    Parameters
    ----------
    n : int
        Number of samples, >= 1.
    slope : float
        Target slope, |slope| < 1.
    seed : int
        The data's own seed.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    if not abs(slope) < 1.0:
        raise ValueError(f"slope: expected |slope| < 1, got {slope!r}")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    X = rng.uniform(-1.0, 1.0, size=(n, 1))
    return X, slope * X
