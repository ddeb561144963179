"""Unit splitting (Fukumizu & Amari, "Local minima and plateaus in hierarchical structures of
multilayer perceptrons", Neural Networks 13, 2000): a network of width k embedded into width k + 1
with the same function, by duplicating a hidden unit and sharing its outgoing weights as a and 1 - a.

A critical point of width k maps to a critical point of width k + 1 for every a (a line of them);
whether the embedding is a saddle (one more unit opens a way down) or stays a minimum of width k + 1
(width only shrinks its basin) is what `split_and_certify` asks `nnlab.landscape.certify`.
"""

from __future__ import annotations

import numpy as np

from nnlab.errors import InputError
from nnlab.landscape.polish import Certificate, Options, certify
from nnlab.network import Network


def split_unit(net: Network, *, layer: int = 1, unit: int = 0, a: float = 0.5) -> Network:
    """``net`` with hidden unit ``unit`` of hidden layer ``layer`` (1-based) duplicated: the copy
    appended as the layer's last unit, with the same incoming weights and bias, the original's
    outgoing weights times ``a`` and the copy's times 1 - a. Every replica alike; the function, and
    so the loss, is unchanged."""
    L = len(net.weights)
    if isinstance(layer, bool) or not isinstance(layer, int | np.integer) or not 1 <= layer < L:
        raise InputError(f"layer: expected a hidden layer in 1..{L - 1}, got {layer!r}")
    h = net.weights[layer - 1].shape[2]
    if isinstance(unit, bool) or not isinstance(unit, int | np.integer) or not 0 <= unit < h:
        raise InputError(f"unit: expected an int in 0..{h - 1}, got {unit!r}")
    if isinstance(a, bool) or not isinstance(a, int | float) or not np.isfinite(a):
        raise InputError(f"a: expected a finite number, got {a!r}")
    W = list(net.weights)
    b = None if net.biases is None else list(net.biases)
    incoming = W[layer - 1]
    W[layer - 1] = np.concatenate([incoming, incoming[:, :, unit : unit + 1]], axis=2)
    if b is not None:
        b[layer - 1] = np.concatenate([b[layer - 1], b[layer - 1][:, unit : unit + 1]], axis=1)
    outgoing = W[layer].copy()
    row = outgoing[:, unit : unit + 1, :].copy()
    outgoing[:, unit : unit + 1, :] = a * row
    W[layer] = np.concatenate([outgoing, (1 - a) * row], axis=1)
    return Network(tuple(W), None if b is None else tuple(b), net.hidden, net.output, net.seeds)


def split_and_certify(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    threshold: float,
    loss: str = "half_squared",
    layer: int = 1,
    unit: int = 0,
    a: float = 0.5,
    options: Options | None = None,
) -> Certificate:
    """`split_unit`, then `nnlab.landscape.certify` of the embedded network (a saddle: width k + 1
    opens a way down; a minimum or degenerate point: it does not)."""
    return certify(
        split_unit(net, layer=layer, unit=unit, a=a),
        X,
        Y,
        threshold=threshold,
        loss=loss,
        options=options or Options(),
    )
