"""Barriers along optimized paths: a quadratic Bezier curve between two aligned networks, trained on
the expected loss along it (Garipov, Izmailov, Podoprikhin, Vetrov & Wilson, "Loss Surfaces, Mode
Connectivity, and Fast Ensembling of DNNs", NeurIPS 2018), beside the straight line.

    phi(t) = (1 - t)^2 theta_a + 2 t (1 - t) theta_c + t^2 theta_b,     t in [0, 1]

The control point theta_c starts at the midpoint (the straight line) and minimizes the mean loss
along the curve, E_{t ~ U(0, 1)} L(phi(t)), the expectation taken by the midpoint rule on ``nodes``
points (deterministic: a path depends only on its ends and the data), by L-BFGS with the gradient
E_t 2 t (1 - t) grad L(phi(t)). The straight line's maximum is an upper bound of the barrier (named
so); the curve's maximum is a tighter one, and its location a saddle candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlab.errors import InputError
from nnlab.landscape.polish import Objective
from nnlab.landscape.symmetry import align
from nnlab.network import Network, as_replicated, check_loss, flat_params, loss_of, network_from_flat


@dataclass(frozen=True, eq=False)
class Path:
    """An optimized path between two networks (one replica each).

    Attributes
    ----------
    height : float
        The Bezier curve's maximum loss minus the higher of the two ends (0 when it never rises).
    t_max : float
        Where on the curve the maximum lies.
    loss : ndarray (points,)
        The loss along the curve at t = 0, 1/(points - 1), ..., 1.
    straight_bound : float
        The straight line's maximum minus the higher end: an upper bound of the barrier.
    straight : ndarray (points,)
        The loss along the straight line.
    control : Network
        The trained control point theta_c.
    peak : Network
        The curve's point at t_max (a saddle candidate, unpolished).
    other : Network
        The second end, aligned to the first.
    """

    height: float
    t_max: float
    loss: np.ndarray
    straight_bound: float
    straight: np.ndarray
    control: Network
    peak: Network
    other: Network


def _net(theta: np.ndarray, like: Network) -> Network:
    return network_from_flat(
        np.atleast_2d(theta), like.sizes, bias=like.biases is not None, hidden=like.hidden, output=like.output
    )


def bezier(
    a: Network,
    b: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    loss: str = "half_squared",
    nodes: int = 16,
    iters: int = 500,
    points: int = 65,
    aligned: bool = True,
) -> Path:
    """Train the quadratic Bezier curve from ``a`` to ``b`` (``b`` aligned to ``a`` first with
    `nnlab.landscape.symmetry.align`, unless ``aligned`` is False) and measure it.

    Parameters
    ----------
    a, b : Network
        One replica each, the same architecture.
    nodes : int
        Points t_j = (j + 1/2) / nodes of the midpoint rule for the expected loss.
    iters : int
        L-BFGS iterations on the control point.
    points : int
        Points at which the trained curve and the straight line are measured.
    """
    if a.n_replicas != 1 or b.n_replicas != 1:
        raise InputError(f"a, b: bezier takes one replica each, got {a.n_replicas} and {b.n_replicas}")
    for name, value, low in (("nodes", nodes, 1), ("iters", iters, 1), ("points", points, 3)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise InputError(f"{name}: expected an int >= {low}, got {value!r}")
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    if aligned:
        b = align(a, b)
    ta, tb = flat_params(a)[0], flat_params(b)[0]
    t = (np.arange(nodes) + 0.5) / nodes
    wa, wc, wb = (1 - t) ** 2, 2 * t * (1 - t), t**2
    Xa = as_replicated(a, X, "X", a.sizes[0])[0]
    Ya = as_replicated(a, check_loss(a, loss, Y), "Y", a.sizes[-1])[0]
    nodes_loss = Objective(a.sizes, a.biases is not None, a.hidden, a.output, loss, Xa, Ya).many
    fixed = wa[:, None] * ta + wb[:, None] * tb
    # The nodes' first-layer products X W_1 are linear in theta_c: those of the fixed part once.
    d, h = a.sizes[:2]
    first_fixed = Xa @ fixed[:, : d * h].reshape(nodes, d, h)

    def objective(tc):
        first = first_fixed + wc[:, None, None] * (Xa @ tc[: d * h].reshape(d, h))
        # E_t L(phi(t)) and its gradient E_t 2 t (1 - t) grad L(phi(t)), on the nodes (nodes, P)
        values, grad = nodes_loss(fixed + wc[:, None] * tc, weights=wc / nodes, first=first)
        return float(values.mean()), grad

    # One BLAS thread: the products are small, and a second thread's hand-offs make L-BFGS-B several
    # times slower (as in `certify`).
    with np.errstate(all="ignore"), threadpool_limits(limits=1, user_api="blas"):
        result = minimize(
            objective, 0.5 * (ta + tb), jac=True, method="L-BFGS-B", options={"maxiter": iters, "gtol": 1e-12}
        )
    tc = result.x if np.all(np.isfinite(result.x)) else 0.5 * (ta + tb)
    s = np.linspace(0.0, 1.0, points)
    curve = (1 - s)[:, None] ** 2 * ta + (2 * s * (1 - s))[:, None] * tc + (s**2)[:, None] * tb
    line = (1 - s)[:, None] * ta + s[:, None] * tb
    with np.errstate(all="ignore"):
        along = loss_of(_net(curve, a), X, Y, loss=loss)
        straight = loss_of(_net(line, a), X, Y, loss=loss)
    ends = max(along[0], along[-1])
    k = int(np.argmax(along))
    return Path(
        height=float(along[k] - ends),
        t_max=float(s[k]),
        loss=along,
        straight_bound=float(straight.max() - ends),
        straight=straight,
        control=_net(tc, a),
        peak=_net(curve[k], a),
        other=b,
    )
