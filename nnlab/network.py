"""Networks, their initialization, and the back-propagation reference.

Notation, used throughout nnlab: R replicas (independent seeds trained together), n samples, d inputs.
A network with L layers has weights W_i shaped (R, n_in, n_out) and biases b_i shaped (R, n_out), and

    f_0 = x,   z_i = f_{i-1} W_i + b_i,   f_i = act_i(z_i)

with act_i the hidden activation for i < L and the output activation for i = L. Back-propagation:

    delta_L = dLoss/df_L * act'(f_L)
    delta_i = act'(f_i) * (delta_{i+1} W_{i+1}^T)
    dLoss/dW_i = f_{i-1}^T delta_i,   dLoss/db_i = delta_i

Every derivative is written from the stored output f (tanh' = 1 - f^2), never from z; the tables of
activations, losses and their derivatives live in `nnlab.functions`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nnlab.errors import InputError, did_you_mean
from nnlab.functions import (  # noqa: F401  (the tables, re-exported: nnlab.network.LOSSES)
    ACTIVATIONS,
    DERIVATIVES,
    ELEMENTWISE,
    LOSS_DERIVATIVES,
    LOSSES,
    check_pairing,
    correct,
    output_delta,
    output_loss,
    targets,
)
from nnlab.schema import MAX_INT, MAX_WIDTH

INITS = ("auto", "glorot", "he")


def check_choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError naming the closest one."""
    if isinstance(value, str) and value in allowed:
        return value
    hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
    raise InputError(f"Unknown {name} {value!r}{hint}; choose one of: {', '.join(sorted(allowed))}")


def check_activations(hidden: object, output: object) -> None:
    """A ValueError unless ``hidden`` is an elementwise activation and ``output`` any activation."""
    if hidden == "softmax":
        raise InputError("hidden: 'softmax' is an output activation only (it mixes the units of a layer)")
    check_choice("activation", hidden, ELEMENTWISE)
    check_choice("activation", output, tuple(ACTIVATIONS))


def check_loss(net: Network, loss: object, Y: np.ndarray) -> np.ndarray:
    """Validate ``loss`` for the network's output layer and return the targets as the loss reads them
    (class labels turned into one-hot rows, see `nnlab.functions.targets`)."""
    check_choice("loss", loss, tuple(LOSSES))
    check_pairing(net.output, loss, net.sizes[-1])
    return targets(loss, Y, net.sizes[-1])


# ---------------------------------------------------------------------------------------------------
# The network.


@dataclass(frozen=True, eq=False)
class Network:
    """R replicas of one fully connected architecture.

    Attributes
    ----------
    weights : tuple of ndarray
        Layer i shaped (R, n_in, n_out), float64.
    biases : tuple of ndarray or None
        Layer i shaped (R, n_out); None for a bias-free network (the textbook chain z_1 = x w_1).
    hidden, output : str
        Activation names of the hidden layers (identity, relu, sigmoid, tanh) and of the output layer
        (those, or softmax).
    seeds : tuple of int or None
        The seed of each replica when known (set by `init_network`); `train` shuffles with them.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None = None
    hidden: str = "tanh"
    output: str = "tanh"
    seeds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_activations(self.hidden, self.output)
        if len(self.weights) == 0:
            raise InputError("weights: a network needs at least one layer, got none")
        R = self.weights[0].shape[0]
        for i, W in enumerate(self.weights):
            if W.ndim != 3 or W.shape[0] != R:
                raise InputError(f"weights[{i}]: expected shape (R={R}, n_in, n_out), got {W.shape}")
            if i > 0 and W.shape[1] != self.weights[i - 1].shape[2]:
                raise InputError(
                    f"weights[{i}]: n_in = {W.shape[1]} does not match the previous layer's "
                    f"n_out = {self.weights[i - 1].shape[2]}"
                )
        if self.biases is not None:
            if len(self.biases) != len(self.weights):
                raise InputError(
                    f"biases: expected {len(self.weights)} arrays (one per layer), got {len(self.biases)}"
                )
            for i, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
                if b.shape != (R, W.shape[2]):
                    raise InputError(f"biases[{i}]: expected shape {(R, W.shape[2])}, got {b.shape}")
        if self.seeds is not None and len(self.seeds) != R:
            raise InputError(f"seeds: expected {R} seeds (one per replica), got {len(self.seeds)}")

    @property
    def n_replicas(self) -> int:
        """R, the number of replicas."""
        return self.weights[0].shape[0]

    @property
    def sizes(self) -> tuple[int, ...]:
        """(d, h_1, ..., h_k, out)."""
        return (self.weights[0].shape[1], *(W.shape[2] for W in self.weights))

    @property
    def n_params(self) -> int:
        """Trainable parameters of one replica."""
        n = sum(W.shape[1] * W.shape[2] for W in self.weights)
        return n + (sum(W.shape[2] for W in self.weights) if self.biases is not None else 0)

    def __repr__(self) -> str:
        # The arrays would drown what a reader needs: the architecture, and which seeds are here
        # (``init_network(sizes, seeds=5)`` is one replica of seed 5, not five).
        seeds = "" if self.seeds is None else f", seeds={_seeds_text(self.seeds)}"
        return (
            f"Network(sizes={self.sizes}, replicas={self.n_replicas}{seeds}, hidden={self.hidden!r}, "
            f"output={self.output!r}, bias={self.biases is not None})"
        )

    def replica(self, r: int | Sequence[int] | slice) -> Network:
        """The network made of replica(s) ``r`` only (an int keeps the replica axis, of length 1)."""
        sel = [r] if isinstance(r, int | np.integer) else r
        seeds = None if self.seeds is None else tuple(np.asarray(self.seeds)[sel].tolist())
        return Network(
            weights=tuple(W[sel] for W in self.weights),
            biases=None if self.biases is None else tuple(b[sel] for b in self.biases),
            hidden=self.hidden,
            output=self.output,
            seeds=seeds,
        )


def _seeds_text(seeds: Sequence[int]) -> str:
    """(5,), (0..99) for a run of consecutive seeds, or the first few."""
    s = list(seeds)
    if len(s) > 2 and s == list(range(s[0], s[0] + len(s))):
        return f"({s[0]}..{s[-1]})"
    return "(" + ", ".join(map(str, s[:6])) + (", ...)" if len(s) > 6 else ",)" if len(s) == 1 else ")")


def _as_seed_list(seeds: int | Sequence[int]) -> list[int]:
    if not isinstance(seeds, int | np.integer | Sequence | range) or isinstance(seeds, str):
        raise InputError(f"seeds: expected an int or a sequence of ints, got {seeds!r}")
    values = [seeds] if isinstance(seeds, int | np.integer) else list(seeds)
    if not values:
        raise InputError("seeds: expected an int or a non-empty sequence of ints, got an empty one")
    for s in values:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or not 0 <= s <= MAX_INT:
            # As in experiment files: seeds are stored as int64.
            raise InputError(f"seeds: each seed must be an int in 0..2**63-1, got {s!r}")
    return [int(s) for s in values]


MAX_NETWORK = 10**9  # numbers (parameters x replicas) that `init_network` builds at most: 8 GB


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    if not isinstance(sizes, Sequence | np.ndarray) or isinstance(sizes, str):
        raise InputError(f"sizes: expected [d, h_1, ..., out], a list of ints, got {sizes!r}")
    values = list(sizes)
    if len(values) < 2:
        raise InputError(f"sizes: expected [d, h_1, ..., out] with at least 2 entries, got {values}")
    for s in values:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 1:
            raise InputError(f"sizes: every layer size must be an int >= 1, got {values}")
    return [int(s) for s in values]


def init_network(
    sizes: Sequence[int],
    *,
    seeds: int | Sequence[int] = 0,
    hidden: str = "tanh",
    output: str = "tanh",
    bias: bool = True,
    init: str = "auto",
    scale: float = 1.0,
) -> Network:
    """Initialize one replica per seed.

    Weights of a layer with activation ``act`` are drawn uniformly from [-a, a] with
    a = scale * sqrt(6 / (n_in + n_out)) (Glorot/Xavier uniform) for tanh, sigmoid, softmax and identity, and
    a = scale * sqrt(6 / n_in) (He uniform) for relu; ``init`` forces one rule for all layers.
    Biases start at 0. Replica r draws from its own stream, ``SeedSequence(seeds[r], spawn_key=(0,))``,
    so its weights depend only on (sizes, activations, init, scale, its seed).

    Parameters
    ----------
    sizes : sequence of int
        [d, h_1, ..., h_k, out].
    seeds : int or sequence of int
        One replica per seed: ``seeds=5`` is one replica, seeded 5; ``seeds=range(5)`` is five
        replicas, seeded 0..4. (In an experiment file ``seeds = 5`` counts: seeds 0..4.)
    hidden, output : str
        Activation names: identity, relu, sigmoid, tanh; the output also softmax.
    bias : bool
        False gives a bias-free network.
    init : {"auto", "glorot", "he"}
    scale : float
        Multiplies the half-width a of the uniform distribution.

    Returns
    -------
    Network
        Weights (R, n_in, n_out), biases (R, n_out) or None.
    """
    sizes = _check_sizes(sizes)
    seed_list = _as_seed_list(seeds)
    check_activations(hidden, output)
    check_choice("init", init, INITS)
    if not isinstance(bias, bool | np.bool_):
        raise InputError(f"bias: expected True or False, got {bias!r}")
    if isinstance(scale, bool) or not isinstance(scale, int | float | np.integer | np.floating):
        raise InputError(f"scale: expected a finite number >= 0, got {scale!r}")
    if not np.isfinite(scale) or scale < 0:
        raise InputError(f"scale: expected a finite number >= 0, got {scale!r}")
    # As an experiment's grid is bounded before anything is built: the size of a layer (as a
    # file's width) and of the whole network, so that an absurd one is an error, not a MemoryError.
    if max(sizes) > MAX_WIDTH:
        raise InputError(f"sizes: every layer size must be at most {MAX_WIDTH:_}, got {max(sizes):_}")
    n_params = sum(a * b + (b if bias else 0) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    if n_params * len(seed_list) > MAX_NETWORK:
        raise InputError(
            f"sizes: {len(seed_list)} replicas of {n_params:_} parameters are more than "
            f"{MAX_NETWORK:_} numbers ({MAX_NETWORK * 8 // 10**9} GB of float64) to hold in memory"
        )
    L = len(sizes) - 1
    acts = [hidden] * (L - 1) + [output]
    half_widths = []
    for (n_in, n_out), act in zip(zip(sizes[:-1], sizes[1:], strict=True), acts, strict=True):
        rule = init if init != "auto" else ("he" if act == "relu" else "glorot")
        fan = n_in if rule == "he" else n_in + n_out
        half_widths.append(scale * np.sqrt(6.0 / fan))
    weights = [np.empty((len(seed_list), a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    for r, s in enumerate(seed_list):
        rng = np.random.default_rng(np.random.SeedSequence(s, spawn_key=(0,)))
        for W, a in zip(weights, half_widths, strict=True):
            W[r] = rng.uniform(-a, a, size=W.shape[1:])
    biases = tuple(np.zeros((len(seed_list), n)) for n in sizes[1:]) if bias else None
    return Network(tuple(weights), biases, hidden, output, tuple(seed_list))


def network_from_arrays(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray] | None = None,
    *,
    hidden: str = "tanh",
    output: str = "tanh",
) -> Network:
    """Build a network from given arrays.

    2-D weights (n_in, n_out) with 1-D biases (n_out,) mean one replica; 3-D weights
    (R, n_in, n_out) with 2-D biases (R, n_out) mean R replicas. Arrays are copied as float64.
    """
    ws = [np.array(W, dtype=np.float64) for W in weights]
    if not ws:
        raise InputError("weights: expected at least one array, got none")
    ndim = ws[0].ndim
    if ndim not in (2, 3) or any(W.ndim != ndim for W in ws):
        raise InputError(
            f"weights: expected all 2-D (n_in, n_out) or all 3-D (R, n_in, n_out), "
            f"got shapes {[W.shape for W in ws]}"
        )
    bs = None if biases is None else [np.array(b, dtype=np.float64) for b in biases]
    if ndim == 2:
        ws = [W[None] for W in ws]
        if bs is not None:
            if any(b.ndim != 1 for b in bs):
                raise InputError(f"biases: with 2-D weights expected 1-D biases, got {[b.shape for b in bs]}")
            bs = [b[None] for b in bs]
    return Network(tuple(ws), None if bs is None else tuple(bs), hidden, output)


# ---------------------------------------------------------------------------------------------------
# The reference forward and backward passes.


@dataclass(frozen=True)
class ParamLayout:
    """Where each layer's parameters sit in the flat vector of a network: W_1, b_1, W_2, b_2, ...,
    each W_i (n_in, n_out) in C order (no b_i for a bias-free network). The one layout of
    `flat_params`, networks.parquet, the landscape's Hessians and the compiled engine's packer.
    Layers are numbered like the math, i = 1..L.

    Attributes
    ----------
    sizes : tuple of int
        [d, h_1, ..., h_k, out].
    bias : bool
        Whether the layers have biases.
    align : int
        Every offset a multiple of this (1: packed, as stored; the compiled engine's replica layout
        uses 8, so that each array starts on a 64-byte boundary).
    """

    sizes: tuple[int, ...]
    bias: bool = True
    align: int = 1

    @classmethod
    def of(cls, net: Network) -> ParamLayout:
        """The layout of ``net``'s architecture."""
        return cls(tuple(net.sizes), net.biases is not None)

    @property
    def offsets(self) -> tuple[tuple[int, int], ...]:
        """(start of W_i, start of b_i or -1) for i = 1..L; entry 0 is (0, 0), unused, so that
        ``offsets[i]`` is layer i's."""
        return self._walk()[0]

    @property
    def size(self) -> int:
        """Numbers in one replica's row: n_params, plus the padding of an ``align`` > 1."""
        return self._walk()[1]

    @functools.cache  # noqa: B019  (frozen and small: one walk per layout)
    def _walk(self) -> tuple[tuple[tuple[int, int], ...], int]:
        def up(x: int) -> int:
            return -(-x // self.align) * self.align

        out, at = [(0, 0)], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=False):
            w_at = at
            at = up(at + n_in * n_out)
            out.append((w_at, at if self.bias else -1))
            at = up(at + n_out) if self.bias else at
        return tuple(out), at

    @property
    def n_params(self) -> int:
        """Parameters of one replica."""
        return sum(
            a * b + (b if self.bias else 0) for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=False)
        )

    def pack(self, net: Network, out: np.ndarray | None = None) -> np.ndarray:
        """Every replica's parameters in one row: (R, size), into ``out`` when given (zeros where
        an ``align`` > 1 pads)."""
        R = net.n_replicas
        flat = np.zeros((R, self.size)) if out is None else out
        for i, W in enumerate(net.weights, start=1):
            w_at, b_at = self.offsets[i]
            flat[:, w_at : w_at + W.shape[1] * W.shape[2]] = W.reshape(R, -1)
            if net.biases is not None:
                flat[:, b_at : b_at + W.shape[2]] = net.biases[i - 1]
        return flat

    def unpack(self, flat: np.ndarray, *, hidden: str = "tanh", output: str = "tanh") -> Network:
        """The network whose rows of parameters are ``flat`` (R, n_params): views, not copies."""
        weights, biases = [], []
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=False), start=1):
            w_at, b_at = self.offsets[i]
            weights.append(flat[:, w_at : w_at + n_in * n_out].reshape(-1, n_in, n_out))
            if self.bias:
                biases.append(flat[:, b_at : b_at + n_out])
        return Network(tuple(weights), tuple(biases) if self.bias else None, hidden=hidden, output=output)


def flat_params(net: Network) -> np.ndarray:
    """Every replica's parameters in one row, (R, n_params): W_1, b_1, W_2, b_2, ... each flattened
    in C order (the biases left out for a bias-free network); see `ParamLayout`."""
    return ParamLayout.of(net).pack(net)


def network_from_flat(
    flat: np.ndarray, sizes: Sequence[int], *, bias: bool = True, hidden: str = "tanh", output: str = "tanh"
) -> Network:
    """The inverse of `flat_params`: ``flat`` (R, n_params) for the architecture ``sizes``."""
    layout = ParamLayout(tuple(_check_sizes(sizes)), bool(bias))
    flat = np.asarray(flat, dtype=np.float64)
    if flat.ndim != 2 or flat.shape[1] != layout.n_params:
        raise InputError(
            f"flat: expected shape (R, {layout.n_params}) for sizes {list(layout.sizes)}, got {flat.shape}"
        )
    return layout.unpack(flat, hidden=hidden, output=output)


def as_replicated(net: Network, A: np.ndarray, name: str, width: int) -> np.ndarray:
    """View data (n, width) as (1, n, width), or check (R, n, width); float64. A masked array with
    masked entries, or data numpy cannot read as one rectangular array of numbers, is refused naming
    ``name`` (the mask would be ignored; numpy's words would not say which argument)."""
    if isinstance(A, np.ma.MaskedArray):
        masked = int(np.ma.getmaskarray(A).sum())
        if masked:
            raise InputError(
                f"{name}: a masked array with {masked} masked entries; drop those samples or fill them "
                "(A.filled(...)) first"
            )
        A = A.data
    try:
        A = np.asarray(A, dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"{name}: expected a rectangular array of numbers (n, {width}), got a {type(A).__name__} numpy "
            f"cannot read as one ({' '.join(str(err).split())[:80]})"
        ) from None
    given = A.shape  # the caller's shape, not the (1, n, width) view, goes into the message
    if A.ndim == 2:
        A = A[None]
    if A.ndim != 3 or A.shape[0] not in (1, net.n_replicas) or A.shape[2] != width:
        raise InputError(
            f"{name}: expected shape (n, {width}) or (R={net.n_replicas}, n, {width}), got {given}"
        )
    return A


def check_finite(A: np.ndarray, name: str) -> None:
    """A ValueError naming the first NaN or infinite entry of the data ``A``: it would make every
    loss NaN, and a NaN loss reads as a diverged run."""
    bad = ~np.isfinite(A)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        where = where[1:] if A.ndim == 3 and A.shape[0] == 1 else where  # the caller's (n, d) index
        raise InputError(f"{name}: expected finite numbers, got {A[bad][0]} at index {where}")


def forward(net: Network, X: np.ndarray) -> tuple[np.ndarray, ...]:
    """Forward pass: the outputs f_0 = X, f_1, ..., f_L.

    X (n, d) or (R, n, d); f_i for i >= 1 is (R, n, h_i).
    """
    return forward_pass(net, X)[0]


def forward_pass(net: Network, X: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """f_0, ..., f_L and the output layer's pre-activation z_L (the losses read it)."""
    f = as_replicated(net, X, "X", net.sizes[0])
    fs = [f]
    L = len(net.weights)
    for i, W in enumerate(net.weights):
        z = f @ W  # (R, n, n_in) @ (R, n_in, n_out) -> (R, n, n_out)
        if net.biases is not None:
            z = z + net.biases[i][:, None, :]
        f = ACTIVATIONS[net.output if i == L - 1 else net.hidden](z)
        fs.append(f)
    return tuple(fs), z


def loss_of(net: Network, X: np.ndarray, Y: np.ndarray, *, loss: str = "half_squared") -> np.ndarray:
    """Mean over the samples of the per-sample loss, (R,)."""
    Y = as_replicated(net, check_loss(net, loss, Y), "Y", net.sizes[-1])
    _, z_L = forward_pass(net, X)
    return np.broadcast_to(output_loss(net.output, loss, z_L, Y).mean(axis=1), (net.n_replicas,)).copy()


def accuracy(net: Network, X: np.ndarray, Y: np.ndarray, *, loss: str = "cross_entropy") -> np.ndarray:
    """Share of the samples each replica classifies right, (R,): see `nnlab.functions.correct` (the
    largest output is the target's class; one output: the side of the decision boundary)."""
    Y = as_replicated(net, check_loss(net, loss, Y), "Y", net.sizes[-1])
    f_L = forward(net, X)[-1]
    return np.broadcast_to(correct(loss, f_L, Y).mean(axis=1), (net.n_replicas,)).copy()


@dataclass(frozen=True, eq=False)
class Gradients:
    """What `backprop` returns.

    Attributes
    ----------
    loss : ndarray (R,)
        Mean over the n samples of the per-sample loss.
    weights : tuple of ndarray
        dLoss/dW_i of that mean, layer i (R, n_in, n_out).
    biases : tuple of ndarray or None
        dLoss/db_i, layer i (R, n_out); None for a bias-free network.
    deltas : tuple of ndarray
        dLoss_sample/dz_i per sample, layer i (R, n, h_i).
    """

    loss: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...] | None
    deltas: tuple[np.ndarray, ...]


def forward_checked(
    net: Network, X: np.ndarray, Y: np.ndarray, loss: str
) -> tuple[tuple, np.ndarray, np.ndarray]:
    """The forward pass f_0, ..., f_L, the output layer's pre-activation z_L, and the targets as the
    loss reads them, (1 or R, n, out), after checking the loss (its name, its pairing with the output
    activation, the targets) and that X and Y have as many samples: what every recursion over (X, Y)
    starts from."""
    Y = as_replicated(net, check_loss(net, loss, Y), "Y", net.sizes[-1])
    fs, z_L = forward_pass(net, X)
    if Y.shape[1] != fs[0].shape[1]:
        raise InputError(f"Y: expected {fs[0].shape[1]} samples like X, got {Y.shape[1]}")
    return fs, z_L, Y


def backprop(net: Network, X: np.ndarray, Y: np.ndarray, *, loss: str = "half_squared") -> Gradients:
    """Gradients of the mean loss by the back-propagation recursion.

    Parameters
    ----------
    net : Network
        R replicas.
    X : ndarray (n, d) or (R, n, d)
    Y : ndarray (n, out) or (R, n, out)
        Targets; for cross_entropy with out >= 2 also class labels 0..out-1, shaped (n,) or (n, 1).
    loss : {"half_squared", "squared", "hinge", "cross_entropy"}
        Per sample; see `nnlab.functions`. cross_entropy needs the softmax output (or, with one
        output unit, sigmoid), hinge an identity or tanh output.

    Returns
    -------
    Gradients
        loss (R,), weights / biases shaped like the network's, deltas (R, n, h_i).
    """
    fs, z_L, Y = forward_checked(net, X, Y, loss)
    check_finite(fs[0], "X")
    check_finite(Y, "Y")
    return recursion(net, fs, z_L, Y, loss)


def recursion(net: Network, fs: tuple, z_L: np.ndarray, Y: np.ndarray, loss: str) -> Gradients:
    """`backprop` after its checks: the recursion on a forward pass (f_0, ..., f_L and z_L, as
    `forward_pass` gives them) and targets Y (1 or R, n, out) as the loss reads them. For callers that
    checked their data once and step many times (the SGD reference, `nnlab.sgd`)."""
    R, n = net.n_replicas, fs[0].shape[1]
    L = len(net.weights)
    delta = output_delta(net.output, loss, fs[L], Y)  # dLoss/dz_L (nnlab.functions)
    deltas: list[np.ndarray] = [np.broadcast_to(delta, (R, n, delta.shape[2]))]
    for i in range(L - 1, 0, -1):
        # delta_i = act'(f_i) * (delta_{i+1} W_{i+1}^T): (R, n, n_out) @ (R, n_out, n_in)
        delta = DERIVATIVES[net.hidden](fs[i]) * (delta @ net.weights[i].transpose(0, 2, 1))
        deltas.insert(0, delta)
    # dLoss/dW_i = f_{i-1}^T delta_i / n: (R, n_in, n) @ (R, n, n_out); biases: the mean of delta_i.
    grad_W = tuple(
        np.broadcast_to(fs[i].transpose(0, 2, 1) @ deltas[i] / n, net.weights[i].shape).copy()
        for i in range(L)
    )
    grad_b = None if net.biases is None else tuple(d.sum(axis=1) / n for d in deltas)
    per_sample = output_loss(net.output, loss, z_L, Y)
    return Gradients(
        loss=np.broadcast_to(per_sample.mean(axis=1), (R,)).copy(),
        weights=grad_W,
        biases=grad_b,
        deltas=tuple(np.ascontiguousarray(d) for d in deltas),
    )
