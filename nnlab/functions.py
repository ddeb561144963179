"""Activations and losses with every derivative the recursions need, one table each.

The leaf of the package (it imports only numpy): the first-order recursion (`nnlab.network.backprop`),
the second-order one (`nnlab.landscape`) and the tasks read the same tables, so they cannot drift.

Activations are written from their output f = act(z), as back-propagation stores it:

    act'(z) from f:   identity 1,  tanh 1 - f^2,  relu [f > 0],  sigmoid f (1 - f)
    act''(z) from f:  identity 0,  tanh -2 f (1 - f^2),  relu 0,  sigmoid f (1 - f) (1 - 2 f)

(relu's derivatives are the subgradient convention 0 at z = 0, and 0 for the second.) These four act
unit by unit (`ELEMENTWISE`) and serve hidden and output layers. The fifth, ``softmax``, mixes the
units of a layer, f_k = exp(z_k) / sum_j exp(z_j), and serves only the output layer, paired with
cross_entropy; with one output unit it is the logistic f = 1 / (1 + exp(-z)), the two-class softmax
of (0, z).

Losses are per sample, summed over the output units k, with their derivatives in f = f_L:

    half_squared   1/2 sum_k (y_k - f_k)^2      dLoss/df = f - y                d2Loss/df2 = I
    squared        sum_k (y_k - f_k)^2          dLoss/df = 2 (f - y)            d2Loss/df2 = 2 I
    hinge          sum_k max(0, 1 - y_k f_k)    dLoss/df = -y [y f < 1]         d2Loss/df2 = 0
    cross_entropy  -sum_k y_k log f_k           dLoss/df = -y / f               d2Loss/df2 = diag(y / f^2)
                   one unit: -y log f - (1 - y) log(1 - f),  dLoss/df = (f - y) / (f (1 - f)),
                   d2Loss/df2 = y / f^2 + (1 - y) / (1 - f)^2

hinge takes targets -1 or +1; its subgradient at the kink y f = 1 is 0 (the convention of relu' at
0), and its second derivative 0 everywhere. cross_entropy takes one-hot targets (class probabilities
summing to 1), or targets in [0, 1] with one output unit (`targets` also turns class labels into
one-hot rows).

The output layer joins the two: `output_delta` is delta_L = dLoss/dz_L and `output_delta_r` its
directional derivative R{delta_L} = (d2Loss/dz_L2) R{z_L}, which Pearlmutter's R-operator needs. For an
output activation applied unit by unit,

    delta_L = dLoss/df * act'(f)
    R{delta_L} = act'(f) * (d2Loss/df2 (act'(f) * R{z_L})) + dLoss/df * act''(f) * R{z_L}.

cross_entropy pairs with softmax (or, for one output unit, with sigmoid: the same logistic form) in
closed form, `PAIRED`: the softmax's Jacobian diag(f) - f f^T times -y / f is

    delta_L = f - y,   R{delta_L} = f * R{z_L} - f (f . R{z_L})   (one unit: f (1 - f) R{z_L}).

`PAIRINGS` says which outputs each loss accepts (`check_pairing`). `output_loss` evaluates the
per-sample loss from z_L: the same values as LOSSES[loss](act(z_L), y), but cross_entropy is computed
as a log-sum-exp, exact where the softmax rounds to 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnlab.errors import InputError

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


def softmax(z: Array) -> Array:
    """f_k = exp(z_k) / sum_j exp(z_j) over the last axis (the output units), shifted by the largest
    z_j so that exp cannot overflow; with one unit, the logistic 1 / (1 + exp(-z))."""
    if z.shape[-1] == 1:
        return sigmoid(z)
    with np.errstate(invalid="ignore"):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "identity": identity,
    "relu": relu,
    "sigmoid": sigmoid,
    "softmax": softmax,
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
# The activations that act unit by unit: every hidden layer's, and most outputs'. softmax is the
# exception (output layer only; its derivative is a Jacobian, used in closed form by `PAIRED`).
ELEMENTWISE = tuple(DERIVATIVES)
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


def hinge(f: Array, y: Array) -> Array:
    """Loss sum_k max(0, 1 - y_k f_k) per sample (targets -1 or +1): (..., out) -> (...)."""
    return np.sum(np.maximum(0.0, 1.0 - y * f), axis=-1)


def cross_entropy(f: Array, y: Array) -> Array:
    """Loss -sum_k y_k log f_k per sample (f a softmax output, y one-hot or class probabilities); for
    one output unit the logistic form -y log f - (1 - y) log(1 - f): (..., out) -> (...). Terms whose
    target weight is 0 count 0, even where f is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if f.shape[-1] == 1:
            terms = _xlogy(y, f) + _xlogy(1.0 - y, 1.0 - f)
        else:
            terms = _xlogy(y, f)
    return -np.sum(terms, axis=-1)


def _xlogy(y: Array, f: Array) -> Array:
    """y log f, with 0 where y is 0 (whatever f)."""
    return np.where(y == 0.0, 0.0, y * np.log(f))


def half_squared_derivative(f: Array, y: Array) -> Array:
    """dLoss/df = f - y."""
    return f - y


def squared_derivative(f: Array, y: Array) -> Array:
    """dLoss/df = 2 (f - y)."""
    return 2.0 * (f - y)


def hinge_derivative(f: Array, y: Array) -> Array:
    """dLoss/df = -y where the margin y f is below 1, else 0 (the subgradient 0 at y f = 1)."""
    return np.where(y * f < 1.0, -y, 0.0)


def cross_entropy_derivative(f: Array, y: Array) -> Array:
    """dLoss/df = -y / f; one unit: (f - y) / (f (1 - f))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if f.shape[-1] == 1:
            return (f - y) / (f * (1.0 - f))
        return -y / f


def half_squared_curvature(f: Array, y: Array, v: Array) -> Array:
    """d2Loss/df2 v = v (the Hessian in f is the identity)."""
    return v


def squared_curvature(f: Array, y: Array, v: Array) -> Array:
    """d2Loss/df2 v = 2 v."""
    return 2.0 * v


def hinge_curvature(f: Array, y: Array, v: Array) -> Array:
    """d2Loss/df2 v = 0 (the hinge is piecewise linear; 0 at the kink too, by convention)."""
    return np.zeros(np.broadcast_shapes(f.shape, y.shape, v.shape))


def cross_entropy_curvature(f: Array, y: Array, v: Array) -> Array:
    """d2Loss/df2 v = y / f^2 * v (diagonal); one unit: (y / f^2 + (1 - y) / (1 - f)^2) v."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if f.shape[-1] == 1:
            return (y / (f * f) + (1.0 - y) / ((1.0 - f) * (1.0 - f))) * v
        return y / (f * f) * v


LOSSES: dict[str, Callable[[Array, Array], Array]] = {
    "cross_entropy": cross_entropy,
    "half_squared": half_squared,
    "hinge": hinge,
    "squared": squared,
}
LOSS_DERIVATIVES: dict[str, Callable[[Array, Array], Array]] = {
    "cross_entropy": cross_entropy_derivative,
    "half_squared": half_squared_derivative,
    "hinge": hinge_derivative,
    "squared": squared_derivative,
}
LOSS_CURVATURES: dict[str, Callable[[Array, Array, Array], Array]] = {
    "cross_entropy": cross_entropy_curvature,
    "half_squared": half_squared_curvature,
    "hinge": hinge_curvature,
    "squared": squared_curvature,
}
# Losses that score a class decision: their runs also get a classification accuracy.
CLASSIFICATION = frozenset({"cross_entropy", "hinge"})
# The output activations each loss accepts. softmax mixes its units, so it is paired only with the
# loss whose delta it has in closed form; a hinge needs outputs that can cross +-1 (or reach them);
# a sigmoid with cross_entropy is the logistic form, one output unit.
PAIRINGS: dict[str, tuple[str, ...]] = {
    "cross_entropy": ("softmax", "sigmoid"),
    "half_squared": ELEMENTWISE,
    "hinge": ("identity", "tanh"),
    "squared": ELEMENTWISE,
}


def check_pairing(output: str, loss: str, n_out: int | None = None) -> None:
    """Raise a one-line ValueError unless output activation ``output`` goes with ``loss`` (and, when
    given, ``n_out`` output units: cross_entropy with a sigmoid output needs exactly one)."""
    if output not in PAIRINGS[loss]:
        if output == "softmax":
            raise InputError(f"output 'softmax' needs loss 'cross_entropy', got loss {loss!r}")
        allowed = " or ".join(repr(o) for o in PAIRINGS[loss])
        raise InputError(f"loss {loss!r} needs output {allowed}, got output {output!r}")
    if loss == "cross_entropy" and output == "sigmoid" and n_out is not None and n_out != 1:
        raise InputError(
            f"loss 'cross_entropy' with output 'sigmoid' is the logistic form for one output unit, got "
            f"{n_out} units; for {n_out} classes use output 'softmax'"
        )


def targets(loss: str, Y: Array, n_out: int) -> Array:
    """Targets as ``loss`` reads them, validated: (..., n_out) float64.

    cross_entropy with n_out >= 2 also takes class labels 0..n_out-1, shaped (...,) or (..., 1),
    returned as one-hot rows; otherwise it needs rows of class probabilities (one-hot, >= 0, summing to
    1), or with one output unit targets in [0, 1]. hinge needs -1 or +1. Raises ValueError naming Y.
    """
    Y = np.asarray(Y)
    if loss == "cross_entropy" and n_out >= 2 and Y.size and (Y.ndim == 1 or Y.shape[-1] == 1):
        labels = Y.reshape(Y.shape if Y.ndim == 1 else Y.shape[:-1])
        valid = np.isfinite(labels) & (labels == np.round(labels)) & (labels >= 0) & (labels < n_out)
        if not valid.all():
            bad = labels[~valid].ravel()[0].item()
            raise InputError(
                f"Y: class labels must be integers 0..{n_out - 1} for {n_out} outputs, got {bad!r}"
            )
        return np.eye(n_out)[labels.astype(np.int64)]
    Y = np.asarray(Y, dtype=np.float64)
    if not Y.size or loss not in CLASSIFICATION:
        return Y
    shown = f"values in [{Y.min():g}, {Y.max():g}]"
    if loss == "hinge":
        if not np.isin(Y, (-1.0, 1.0)).all():
            raise InputError(f"Y: loss 'hinge' needs targets -1 or +1, got {shown}")
    elif Y.shape[-1] == 1:
        if not ((Y >= 0.0) & (Y <= 1.0)).all():
            raise InputError(f"Y: loss 'cross_entropy' with one output needs targets in [0, 1], got {shown}")
    else:
        sums = Y.sum(axis=-1)
        if not (Y >= 0.0).all() or not (np.abs(sums - 1.0) <= 1e-9).all():
            what = (
                shown if not (Y >= 0.0).all() else f"a row summing to {sums[np.abs(sums - 1.0) > 1e-9][0]:g}"
            )
            raise InputError(
                f"Y: loss 'cross_entropy' needs one-hot rows (class probabilities summing to 1) or class "
                f"labels 0..{Y.shape[-1] - 1}, got {what}"
            )
    return Y


def correct(loss: str, f: Array, y: Array) -> Array:
    """Whether each sample is classified right, (..., out) -> (...) bool: the largest output is the
    target's largest entry (the class); with one output unit, the side of the decision boundary (0.5
    for cross_entropy, 0 for hinge) is the target's. A non-finite output is never right."""
    finite = np.isfinite(f).all(axis=-1)  # a diverged network classifies nothing right
    if f.shape[-1] == 1:
        cut = 0.5 if loss == "cross_entropy" else 0.0
        return finite & ((f[..., 0] > cut) == (y[..., 0] > cut))
    return finite & (np.argmax(f, axis=-1) == np.argmax(y, axis=-1))


# ---------------------------------------------------------------------------------------------------
# The output layer: loss and output activation together.


def _logistic_delta(f: Array, y: Array) -> Array:
    """delta_L = f - y: cross_entropy through softmax (or, one unit, the logistic)."""
    return f - y


def _logistic_delta_r(f: Array, y: Array, rz: Array) -> Array:
    """R{delta_L} = (diag(f) - f f^T) R{z_L}; one unit: f (1 - f) R{z_L}."""
    if f.shape[-1] == 1:
        return f * (1.0 - f) * rz
    return f * (rz - np.sum(f * rz, axis=-1, keepdims=True))


# (output, loss) pairs whose delta_L and R{delta_L} are written in closed form rather than composed
# from the elementwise tables.
PAIRED: dict[tuple[str, str], tuple[Callable[..., Array], Callable[..., Array]]] = {
    ("softmax", "cross_entropy"): (_logistic_delta, _logistic_delta_r),
    ("sigmoid", "cross_entropy"): (_logistic_delta, _logistic_delta_r),
}


def output_delta(output: str, loss: str, f: Array, y: Array) -> Array:
    """delta_L = dLoss/dz_L per sample, from the output f = f_L and the targets y, (..., out)."""
    if (output, loss) in PAIRED:
        return PAIRED[output, loss][0](f, y)
    # dLoss/dz_L = dLoss/df_L * act'(z_L), with act'(z_L) written from f_L.
    return LOSS_DERIVATIVES[loss](f, y) * DERIVATIVES[output](f)


def output_delta_r(output: str, loss: str, f: Array, y: Array, rz: Array) -> Array:
    """R{delta_L} = (d2Loss/dz_L2) R{z_L} per sample: the change of delta_L along a change R{z_L} of
    the output layer's pre-activation, (..., out)."""
    if (output, loss) in PAIRED:
        return PAIRED[output, loss][1](f, y, rz)
    d1 = DERIVATIVES[output](f)
    # Differentiate dLoss/df(f) * act'(z) once more: the loss's curvature seen through act', plus
    # the loss's slope times act''.
    return d1 * LOSS_CURVATURES[loss](f, y, d1 * rz) + LOSS_DERIVATIVES[loss](f, y) * (
        SECOND_DERIVATIVES[output](f) * rz
    )


def output_loss(output: str, loss: str, z: Array, y: Array) -> Array:
    """The per-sample loss from the output layer's pre-activation z = z_L, (..., out) -> (...).

    LOSSES[loss](act(z), y); cross_entropy as a log-sum-exp, exact where f rounds to 0 or 1: with
    m = max_k z_k (at unit k*), the loss is sum_k y_k (m - z_k) + sum_k y_k log1p(sum_{k != k*}
    exp(z_k - m)), and with one unit softplus(z) - y z = max(z, 0) - y z + log1p(exp(-|z|)).
    """
    if loss != "cross_entropy":
        return LOSSES[loss](ACTIVATIONS[output](z), y)
    with np.errstate(invalid="ignore", over="ignore"):
        if z.shape[-1] == 1:
            z1, y1 = z[..., 0], y[..., 0]
            return np.maximum(z1, 0.0) - y1 * z1 + np.log1p(np.exp(-np.abs(z1)))
        top = np.argmax(z, axis=-1)[..., None]
        m = np.take_along_axis(z, top, axis=-1)
        e = np.exp(z - m)
        np.put_along_axis(e, top, 0.0, axis=-1)
        # sum_k y_k (lse(z) - z_k) with lse(z) = m + log1p(t): exact 0 for a confident right answer.
        margin = np.sum(np.where(y == 0.0, 0.0, y * (m - z)), axis=-1)
        return margin + np.sum(y, axis=-1) * np.log1p(e.sum(axis=-1))
