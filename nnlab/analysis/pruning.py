"""Saved networks analysed: hidden units a trained network does not need (pruning), and the
gradients along a chain."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from nnlab.network import Network, backprop, forward, init_network, loss_of, network_from_flat

# Pruning keeps a unit's removal while the loss stays within loss_0 (1 + PRUNE_RTOL) + PRUNE_ATOL
# * threshold of the trained network's own loss loss_0.
PRUNE_RTOL = 0.1
PRUNE_ATOL = 0.01
# The greedy search refits every remaining unit's removal at every step: about n w^4 operations for a
# layer of w units on n samples (0.5 s per network at w = 24, n = 256; hours at w = 1000 on the
# digits). Configurations with a hidden layer wider than this are not pruned (NaN, said in the docs).
PRUNE_MAX_UNITS = 32


def refit_without(
    W: list[np.ndarray], b: list[np.ndarray] | None, f: tuple, i: int, j: int
) -> tuple[list, list | None]:
    """Remove unit j of hidden layer i (0-based: between W[i] and W[i + 1]) and refit the next
    layer's weights (and bias) by least squares over all the remaining units of layer i, so that
    the next layer's pre-activations z_{i+1} = f_i W_{i+1} + b_{i+1} on the data are reproduced as
    well as they can be without unit j: min |[F, 1] A - z_{i+1}|^2 over A, F the other units'
    activations (no column of ones without biases). Exact when the unit is a combination of the
    others (a duplicate, a sign-flipped copy, a constant unit) on the data."""
    W, b = list(W), None if b is None else list(b)
    F = np.delete(f[i + 1], j, axis=1)  # (n, h - 1)
    z = f[i + 1] @ W[i + 1] + (b[i + 1] if b is not None else 0.0)  # (n, n_{i+2})
    A = np.concatenate([F, np.ones((len(F), 1))], axis=1) if b is not None else F
    coef = np.linalg.lstsq(A, z, rcond=None)[0]
    W[i] = np.delete(W[i], j, axis=1)
    W[i + 1] = coef[: F.shape[1]]
    if b is not None:
        b[i] = np.delete(b[i], j)
        b[i + 1] = coef[F.shape[1]]
    return W, b


def redundant_units(
    net: Network, X: np.ndarray, Y: np.ndarray, threshold: float, *, loss: str = "half_squared"
) -> np.ndarray:
    """Hidden units each solved replica can lose, one at a time and greedily, with its training loss
    staying close to its own.

    Each step tries removing every hidden unit (the next layer refitted by least squares over all
    the remaining units, see `refit_without`) and keeps the removal with the lowest loss, as long
    as that loss stays within ``loss_0 (1 + PRUNE_RTOL) + PRUNE_ATOL * threshold`` of the trained
    network's own loss ``loss_0``: a network at 1e-12 may not be degraded to the threshold. Every
    hidden layer keeps at least one unit. The count is a greedy one (a lower bound of what an exact
    search would remove). On n samples a layer's activations (with a column of ones) have rank at
    most n, so at most n units (n - 1 with biases) are ever needed to pass on what it computes.

    Returns
    -------
    ndarray (R,)
        Units removed; NaN for a replica whose loss is not below the threshold to begin with.
    """
    out = np.full(net.n_replicas, np.nan)
    start = loss_of(net, X, Y, loss=loss)
    for r in np.flatnonzero(start < threshold):
        allowed = start[r] * (1 + PRUNE_RTOL) + PRUNE_ATOL * threshold
        W = [w[r] for w in net.weights]
        b = None if net.biases is None else [v[r] for v in net.biases]
        removed = 0
        while True:
            f = _forward_one(W, b, X, net)
            best = None
            for i in range(len(W) - 1):
                if W[i].shape[1] < 2:
                    continue
                candidates = [refit_without(W, b, f, i, j) for j in range(W[i].shape[1])]
                # All candidates of one layer share a shape: one batched forward pass as replicas.
                stacked = Network(
                    tuple(np.stack([c[0][m] for c in candidates]) for m in range(len(W))),
                    None
                    if b is None
                    else tuple(np.stack([c[1][m] for c in candidates]) for m in range(len(W))),
                    hidden=net.hidden,
                    output=net.output,
                )
                losses = loss_of(stacked, X, Y, loss=loss)
                if not np.isfinite(losses).any():
                    continue
                j = int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan)))
                if best is None or losses[j] < best[0]:
                    best = (losses[j], candidates[j])
            if best is None or not best[0] <= allowed:
                break
            W, b = best[1]
            removed += 1
        out[r] = removed
    return out


def _forward_one(W, b, X, net: Network) -> tuple[np.ndarray, ...]:
    """f_0, ..., f_L (each (n, h_i)) of one replica given as per-layer 2-D arrays (`nnlab.forward`)."""
    one = Network(
        tuple(w[None] for w in W), None if b is None else tuple(v[None] for v in b), net.hidden, net.output
    )
    return tuple(f[0] for f in forward(one, X))


def redundancy(
    runs: pd.DataFrame, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray, threshold: float
) -> pd.DataFrame:
    """`redundant_units` of every run with saved parameters, in configurations whose hidden layers
    have at most `PRUNE_MAX_UNITS` units (wider ones: NaN, the search's cost grows as width^4).

    Parameters
    ----------
    runs : DataFrame
        runs.parquet rows.
    params : dict
        run id -> final parameters (n_params,), as `nnlab.sweep.read_networks` returns.
    X, Y : ndarray
        The training data.

    Returns
    -------
    DataFrame
        ``run_id``, ``redundant_units`` (NaN for an unsolved run or one too wide to prune),
        ``kept_units``.
    """
    rows = []
    have = runs[runs["run_id"].isin(params.keys())]
    for (depth, width, bias, hidden, output, loss), g in have.groupby(
        ["depth", "width", "bias", "hidden", "output", "loss_fn"], sort=True
    ):
        if width > PRUNE_MAX_UNITS:
            rows += [{"run_id": i, "redundant_units": np.nan, "kept_units": np.nan} for i in g["run_id"]]
            continue
        sizes = [X.shape[1], *[int(width)] * int(depth), Y.shape[1]]
        flat = np.stack([params[i] for i in g["run_id"]])
        net = network_from_flat(flat, sizes, bias=bool(bias), hidden=hidden, output=output)
        with np.errstate(all="ignore"):
            removed = redundant_units(net, X, Y, threshold, loss=loss)
        for run_id, n in zip(g["run_id"], removed, strict=True):
            rows.append({"run_id": run_id, "redundant_units": n, "kept_units": depth * width - n})
    return pd.DataFrame(rows, columns=["run_id", "redundant_units", "kept_units"])


def chain_gradients(
    lengths: Sequence[int], seeds: Sequence[int], X: np.ndarray, Y: np.ndarray, *, loss: str = "half_squared"
) -> pd.DataFrame:
    """|dLoss/dw_1| at initialization of the single-unit tanh chain f_L = tanh(... tanh(x w_1) ... w_L),
    computed with `backprop`, for every chain length L and seed.

    The gradient carries the product of the (1 - f_i^2) w_{i+1} factors, so it shrinks (or grows)
    geometrically with L.

    Returns
    -------
    DataFrame
        ``L``, ``seed``, ``grad_w1`` (absolute value), ``loss`` (at initialization).
    """
    frames = []
    for L in lengths:
        net = init_network([1] * (L + 1), seeds=list(seeds), bias=False)
        g = backprop(net, X, Y, loss=loss)
        frames.append(
            pd.DataFrame(
                {"L": L, "seed": list(seeds), "grad_w1": np.abs(g.weights[0][:, 0, 0]), "loss": g.loss}
            )
        )
    return pd.concat(frames, ignore_index=True)
