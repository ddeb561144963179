"""Pictures of the landscape as users know them (Li et al., "Visualizing the loss landscape of neural
nets", NeurIPS 2018; Goodfellow et al. 2015): the loss along the straight line between two networks
(the initial network and an end point) and on a 2-D plane through a network spanned by two random,
filter-normalized directions.

Filter normalization: each direction is drawn from a standard normal and then, unit by unit, the
incoming weights of each unit (a fully connected layer's "filter": ``W[:, :, j]``) are scaled to the
norm of the network's own, so that the picture does not depend on how a unit's weights happen to be
scaled (tanh and relu units are not scale invariant, but their weights' sizes still differ by layer).
The biases' directions are 0, as in Li et al.'s default. Every loss is the full-data loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlab.network import Network, flat_params, loss_of, network_from_flat

CHUNK = 256  # networks evaluated at once: bounds the activations' memory


def _losses(flat: np.ndarray, like: Network, X, Y, loss: str) -> np.ndarray:
    """Full-data losses of the networks ``flat`` (k, P) of ``like``'s architecture, (k,)."""
    out = np.empty(len(flat))
    for start in range(0, len(flat), CHUNK):
        part = flat[start : start + CHUNK]
        net = network_from_flat(
            part, like.sizes, bias=like.biases is not None, hidden=like.hidden, output=like.output
        )
        with np.errstate(all="ignore"):
            out[start : start + CHUNK] = loss_of(net, X, Y, loss=loss)
    return out


def line(a: Network, b: Network, X, Y, *, loss: str = "half_squared", points: int = 41):
    """The loss at ``points`` evenly spaced t in [0, 1] on (1 - t) a + t b (replica 0 of each, same
    architecture): (t, loss), each (points,). Not aligned: the line from an initial network to its
    own end point is the one SGD's motion is compared with."""
    pa, pb = flat_params(a)[0], flat_params(b)[0]
    t = np.linspace(0.0, 1.0, points)
    return t, _losses(pa[None, :] + t[:, None] * (pb - pa)[None, :], a, X, Y, loss)


def filter_normalized(net: Network, rng: np.random.Generator) -> np.ndarray:
    """A random direction at replica 0 of ``net``, flattened like `flat_params` (P,): standard
    normal weights, each unit's incoming weights scaled to the norm of the network's (a unit whose
    weights are all 0 gets a zero direction); biases 0."""
    one = net.replica(0)
    weights = []
    for W in one.weights:
        D = rng.standard_normal(W.shape)
        scale = np.linalg.norm(W, axis=1, keepdims=True) / np.maximum(
            np.linalg.norm(D, axis=1, keepdims=True), np.finfo(float).tiny
        )
        weights.append(D * scale)
    biases = None if one.biases is None else tuple(np.zeros_like(b) for b in one.biases)
    return flat_params(Network(tuple(weights), biases, one.hidden, one.output))[0]


@dataclass(frozen=True)
class Plane:
    """The loss on a plane through a network: ``loss[i, j]`` at centre + alpha[j] d1 + beta[i] d2."""

    alpha: np.ndarray  # (points,)
    beta: np.ndarray  # (points,)
    loss: np.ndarray  # (points, points)
    centre: float  # the loss at the centre


def plane(
    net: Network,
    X,
    Y,
    *,
    loss: str = "half_squared",
    seed: int = 0,
    span: float = 1.0,
    points: int = 21,
) -> Plane:
    """The loss on a ``points`` x ``points`` grid of [-span, span]^2 around replica 0 of ``net``
    along two filter-normalized random directions (`filter_normalized`, from
    ``np.random.default_rng(seed)``: the same picture on every machine)."""
    rng = np.random.default_rng(seed)
    d1, d2 = filter_normalized(net, rng), filter_normalized(net, rng)
    centre = flat_params(net.replica(0))[0]
    alpha = np.linspace(-span, span, points)
    a, b = np.meshgrid(alpha, alpha)  # a varies along a row (j), b down the rows (i)
    flat = centre[None, :] + a.ravel()[:, None] * d1[None, :] + b.ravel()[:, None] * d2[None, :]
    grid = _losses(flat, net, X, Y, loss).reshape(points, points)
    return Plane(alpha, alpha.copy(), grid, float(_losses(centre[None, :], net, X, Y, loss)[0]))
