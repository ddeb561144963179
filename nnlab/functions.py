"""Activations and losses with every derivative the recursions need, one table each.

The leaf of the package (it imports only numpy): the first-order recursion (`nnlab.network.backprop`),
the second-order one (`nnlab.landscape`) and the tasks read the same tables, so they cannot drift.

Activations are written from their output f = act(z), as back-propagation stores it:

    act'(z) from f:   identity 1,  tanh 1 - f^2,  relu [f > 0],  sigmoid f (1 - f)
    act''(z) from f:  identity 0,  tanh -2 f (1 - f^2),  relu 0,  sigmoid f (1 - f) (1 - 2 f)

(relu's derivatives are the subgradient convention 0 at z = 0, and 0 for the second.)

Losses are per sample, summed over the output units k, with their derivatives in f = f_L:

    half_squared  1/2 sum_k (y_k - f_k)^2     dLoss/df = f - y        d2Loss/df2 = I
    squared       sum_k (y_k - f_k)^2         dLoss/df = 2 (f - y)    d2Loss/df2 = 2 I

The output layer joins the two: `output_delta` is delta_L = dLoss/dz_L and `output_delta_r` its
directional derivative R{delta_L} = (d2Loss/dz_L2) R{z_L}, which Pearlmutter's R-operator needs. For an
output activation applied unit by unit,

    delta_L = dLoss/df * act'(f)
    R{delta_L} = act'(f) * (d2Loss/df2 (act'(f) * R{z_L})) + dLoss/df * act''(f) * R{z_L}.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray

# ---------------------------------------------------------------------------------------------------
# Activations, and their first and second derivatives written from the output f = act(z).


def identity(z: Array) -> Array:
    """f = z."""
    return z


def tanh(z: Array) -> Array:
    """f = tanh(z)."""
    return np.tanh(z)


def relu(z: Array) -> Array:
    """f = max(z, 0)."""
    return np.maximum(z, 0.0)


def sigmoid(z: Array) -> Array:
    """f = 1 / (1 + exp(-z)); exp overflows to inf for z < -709, which gives the right limit 0."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def identity_derivative(f: Array) -> Array:
    """act'(z) = 1."""
    return np.ones_like(f)


def tanh_derivative(f: Array) -> Array:
    """tanh'(z) = 1 - f^2, from the output f = tanh(z)."""
    return 1.0 - f * f


def relu_derivative(f: Array) -> Array:
    """relu'(z) = 1 where f > 0, else 0 (the subgradient 0 at z = 0)."""
    return (f > 0.0).astype(f.dtype)


def sigmoid_derivative(f: Array) -> Array:
    """sigmoid'(z) = f (1 - f), from the output f = sigmoid(z)."""
    return f * (1.0 - f)


def identity_second(f: Array) -> Array:
    """act''(z) = 0."""
    return np.zeros_like(f)


def tanh_second(f: Array) -> Array:
    """tanh''(z) = -2 f (1 - f^2), from the output f = tanh(z)."""
    return -2.0 * f * (1.0 - f * f)


def relu_second(f: Array) -> Array:
    """relu''(z) = 0 (everywhere but at z = 0, where relu has no second derivative; 0 there too)."""
    return np.zeros_like(f)


def sigmoid_second(f: Array) -> Array:
    """sigmoid''(z) = f (1 - f) (1 - 2 f), from the output f = sigmoid(z)."""
    return f * (1.0 - f) * (1.0 - 2.0 * f)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "identity": identity,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
}
DERIVATIVES: dict[str, Callable[[Array], Array]] = {
    "identity": identity_derivative,
    "relu": relu_derivative,
    "sigmoid": sigmoid_derivative,
    "tanh": tanh_derivative,
}
SECOND_DERIVATIVES: dict[str, Callable[[Array], Array]] = {
    "identity": identity_second,
    "relu": relu_second,
    "sigmoid": sigmoid_second,
    "tanh": tanh_second,
}
# Activations whose sign flip act(-z) = -act(z) is a symmetry of a hidden unit (with its incoming
# and outgoing weights negated), and those whose positive rescaling act(a z) = a act(z), a > 0, is.
ODD = frozenset({"identity", "tanh"})
HOMOGENEOUS = frozenset({"identity", "relu"})

# ---------------------------------------------------------------------------------------------------
# Per-sample losses (summed over the output units), their gradient in f = f_L, and the product of
# their Hessian in f with a direction v (per sample, (..., out) -> (..., out)).


def half_squared(f: Array, y: Array) -> Array:
    """Loss 1/2 sum_k (y_k - f_k)^2 per sample: (..., out) -> (...)."""
    return 0.5 * np.sum((y - f) ** 2, axis=-1)


def squared(f: Array, y: Array) -> Array:
    """Loss sum_k (y_k - f_k)^2 per sample: (..., out) -> (...)."""
    return np.sum((y - f) ** 2, axis=-1)


def half_squared_derivative(f: Array, y: Array) -> Array:
    """dLoss/df = f - y."""
    return f - y


def squared_derivative(f: Array, y: Array) -> Array:
    """dLoss/df = 2 (f - y)."""
    return 2.0 * (f - y)


def half_squared_curvature(f: Array, y: Array, v: Array) -> Array:
    """d2Loss/df2 v = v (the Hessian in f is the identity)."""
    return v


def squared_curvature(f: Array, y: Array, v: Array) -> Array:
    """d2Loss/df2 v = 2 v."""
    return 2.0 * v


LOSSES: dict[str, Callable[[Array, Array], Array]] = {
    "half_squared": half_squared,
    "squared": squared,
}
LOSS_DERIVATIVES: dict[str, Callable[[Array, Array], Array]] = {
    "half_squared": half_squared_derivative,
    "squared": squared_derivative,
}
LOSS_CURVATURES: dict[str, Callable[[Array, Array, Array], Array]] = {
    "half_squared": half_squared_curvature,
    "squared": squared_curvature,
}

# ---------------------------------------------------------------------------------------------------
# The output layer: loss and output activation together.


def output_delta(output: str, loss: str, f: Array, y: Array) -> Array:
    """delta_L = dLoss/dz_L per sample, from the output f = f_L and the targets y, (..., out)."""
    # dLoss/dz_L = dLoss/df_L * act'(z_L), with act'(z_L) written from f_L.
    return LOSS_DERIVATIVES[loss](f, y) * DERIVATIVES[output](f)


def output_delta_r(output: str, loss: str, f: Array, y: Array, rz: Array) -> Array:
    """R{delta_L} = (d2Loss/dz_L2) R{z_L} per sample: the change of delta_L along a change R{z_L} of
    the output layer's pre-activation, (..., out)."""
    d1 = DERIVATIVES[output](f)
    # Differentiate dLoss/df(f) * act'(z) once more: the loss's curvature seen through act', plus
    # the loss's slope times act''.
    return d1 * LOSS_CURVATURES[loss](f, y, d1 * rz) + LOSS_DERIVATIVES[loss](f, y) * (
        SECOND_DERIVATIVES[output](f) * rz
    )
