"""Does an end point trap SGD? Resume SGD (`nnlab.sgd.train`) from it with K fresh shuffling streams
for M times the training budget, and count the streams that reach the success threshold.

Kinds (`nnlab.landscape.certify`) say what a point is; escape says whether SGD, with its noise, leaves
it: a certified valley can be escaped, a shallow minimum too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlab.errors import InputError
from nnlab.network import Network
from nnlab.schema import LEVEL


@dataclass(frozen=True, eq=False)
class Escape:
    """What `escape` found for one end point.

    Attributes
    ----------
    escaped : ndarray (K,) of bool
        The streams whose full-data loss fell below the threshold at the end of some epoch.
    epochs : ndarray (K,)
        The first such epoch (1-based), NaN for a stream that did not escape.
    probability : float
        escaped.mean().
    lo, hi : float
        Its 95% Wilson interval.
    seeds : ndarray (K,) of int
        The shuffling seeds used.
    loss_curve : ndarray (K, M * budget + 1)
        Each stream's full-data loss, before the first epoch and after each.
    """

    escaped: np.ndarray
    epochs: np.ndarray
    probability: float
    lo: float
    hi: float
    seeds: np.ndarray
    loss_curve: np.ndarray


def escape_seeds(seed: int, K: int) -> np.ndarray:
    """K shuffling seeds drawn from SeedSequence(seed, spawn_key=(19,)): a stream family of its own,
    apart from the training seeds 0, 1, ... (whose shuffles the end point has already seen)."""
    return np.random.SeedSequence(int(seed), spawn_key=(19,)).generate_state(K, np.uint32).astype(np.int64)


def escape(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    threshold: float,
    lr: float,
    budget: int,
    K: int = 8,
    M: float = 1.0,
    batch_size: int = 1,
    loss: str = "half_squared",
    seed: int = 0,
    engine: str = "auto",
) -> Escape:
    """Resume SGD from the end point ``net`` (one replica) with K fresh shuffling seeds
    (`escape_seeds`) for round(M * budget) epochs, at the run's learning rate and batch size.

    Parameters
    ----------
    threshold : float
        Escape is a full-data loss below it at the end of an epoch.
    budget : int
        The run's epochs; the streams run M times as long.
    """
    from scipy.stats import binomtest

    from nnlab.sgd import train

    if net.n_replicas != 1:
        raise InputError(f"net: escape takes one end point (one replica), got {net.n_replicas}")
    if isinstance(K, bool) or not isinstance(K, int | np.integer) or K < 1:
        raise InputError(f"K: expected an int >= 1, got {K!r}")
    if isinstance(M, bool) or not isinstance(M, int | float) or not 0 < M < np.inf:
        raise InputError(f"M: expected a number > 0, got {M!r}")
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 1:
        raise InputError(f"budget: expected an int >= 1, got {budget!r}")
    epochs = max(1, round(M * budget))
    seeds = escape_seeds(seed, K)
    copies = Network(
        tuple(np.repeat(w, K, axis=0) for w in net.weights),
        None if net.biases is None else tuple(np.repeat(v, K, axis=0) for v in net.biases),
        net.hidden,
        net.output,
    )
    result = train(
        copies,
        X,
        Y,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        loss=loss,
        seeds=seeds.tolist(),
        engine=engine,
    )
    below = result.loss_curve[:, 1:] < threshold
    escaped = below.any(axis=1)
    first = np.where(escaped, below.argmax(axis=1) + 1, -1).astype(np.float64)
    first[~escaped] = np.nan
    # Wilson's interval, scipy's (equal to nnlab.analysis.wilson; the landscape reads no statistics).
    ci = binomtest(int(escaped.sum()), K).proportion_ci(confidence_level=LEVEL, method="wilson")
    lo, hi = ci.low, ci.high
    return Escape(escaped, first, float(escaped.mean()), float(lo), float(hi), seeds, result.loss_curve)
