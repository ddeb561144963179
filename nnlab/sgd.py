"""Stochastic gradient descent and its variants on all replicas at once.

For each batch of sample indices (in the given order, or a per-replica shuffle every epoch), with
g = dLoss_batch/dtheta for every weight and bias array theta, Loss_batch the mean over the batch of
the per-sample loss (the last, partial batch of an epoch uses its own mean), plain SGD steps

    theta <- theta - lr_t * g

and momentum, Nesterov, Adam and AdamW follow torch.optim's rules (`OptimizerSpec`), with a state per
replica and parameter starting at zero and the learning rate lr_t of update step t from a schedule.
Two engines compute the same trajectories: "numpy", the readable reference built on `backprop`, and
"numba", the compiled kernels of `nnlab._kernels`.

A replica whose batch loss (before the step) or end-of-epoch loss is not finite has diverged: it stops
updating (its optimizer state too) and is flagged; the other replicas are unaffected.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from nnlab.errors import InputError
from nnlab.network import (
    Network,
    ParamLayout,
    as_replicated,
    backprop,
    check_choice,
    check_finite,
    check_loss,
    forward_pass,
    loss_of,
    recursion,
)
from nnlab.schema import MAX_EPOCHS, MAX_INT

ENGINES = ("auto", "numba", "numpy")
# The shuffled order is generated in slices of epochs so its memory stays bounded (about 32 MB).
ORDER_BUDGET = 4_000_000


OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "linear", "step")
# The optimizers that use a field (every one uses weight_decay, the schedule and warmup).
_USED_BY = {
    "momentum": ("momentum", "nesterov"),
    "beta1": ("adam", "adamw"),
    "beta2": ("adam", "adamw"),
    "eps": ("adam", "adamw"),
}


@dataclass(frozen=True)
class OptimizerSpec:
    """How `train` updates the parameters: the rule and the learning-rate schedule (all but lr).

    `train` builds one from its keywords of the same names; its fields are checked here, each bad one
    a one-line ValueError naming it. With g the gradient of the batch-mean loss, for every weight and
    bias array theta, a state per replica and array starting at zero and t = 1, 2, ... the update
    step (torch.optim's rules):

    - weight_decay wd: g <- g + wd theta (coupled L2) for all but adamw; adamw first scales
      theta <- theta (1 - lr_t wd) (decoupled);
    - "sgd": theta <- theta - lr_t g;
    - "momentum" (heavy ball, dampening 0): buf <- momentum buf + g (= g at the first step),
      theta <- theta - lr_t buf; "nesterov": the same buf, theta <- theta - lr_t (g + momentum buf);
    - "adam", "adamw": m <- beta1 m + (1 - beta1) g, v <- beta2 v + (1 - beta2) g^2,
      theta <- theta - lr_t (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps).

    The schedule gives lr_t for update steps t = 0 .. T-1 of the whole run (T = epochs x steps per
    epoch, ceil(n / batch_size), a partial last batch counting as a step): "constant" lr; "cosine"
    lr (1 + cos(pi t / T)) / 2; "linear" lr (1 - t / T); "step" lr gamma^(epoch // step_every), epoch
    = t // steps per epoch. A warmup of w > 0 steps multiplies any of them by min(1, (t + 1) / w).

    A field the chosen optimizer or schedule does not use must keep its default (a different value
    is refused, naming who uses it).
    """

    optimizer: str = "sgd"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup: int = 0
    gamma: float = 0.1
    step_every: int | None = None

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        for name in ("momentum", "beta1", "beta2"):
            _check_number(name, getattr(self, name), "a number in [0, 1)", lambda x: 0.0 <= x < 1.0)
        _check_number("eps", self.eps, "a finite number > 0", lambda x: x > 0.0)
        _check_number("weight_decay", self.weight_decay, "a finite number >= 0", lambda x: x >= 0.0)
        _check_number("gamma", self.gamma, "a finite number > 0", lambda x: x > 0.0)
        if not _is_int(self.warmup) or self.warmup < 0:
            raise InputError(f"warmup: expected an int >= 0 (update steps), got {self.warmup!r}")
        if self.step_every is not None and (not _is_int(self.step_every) or self.step_every < 1):
            raise InputError(f"step_every: expected an int >= 1 (epochs), got {self.step_every!r}")
        defaults = OptimizerSpec.__dataclass_fields__
        for name, users in _USED_BY.items():
            if self.optimizer not in users and getattr(self, name) != defaults[name].default:
                raise InputError(f"{name}: {' and '.join(users)} use it, not {self.optimizer}")
        if self.schedule != "step":
            for name in ("gamma", "step_every"):
                if getattr(self, name) != defaults[name].default:
                    raise InputError(f"{name}: the step schedule uses it, not {self.schedule}")
        elif self.step_every is None:
            raise InputError("step_every: the step schedule needs it (an int >= 1, in epochs)")

    @property
    def state_size(self) -> int:
        """The arrays of state the optimizer keeps per parameter array: 0, 1 (buf) or 2 (m, v)."""
        return {"sgd": 0, "momentum": 1, "nesterov": 1}.get(self.optimizer, 2)

    def rates(self, lr: float, epochs: int, steps_per_epoch: int, first: int, count: int) -> np.ndarray:
        """(count, 3): for update steps t = first .. first + count - 1 (from 0) of a run of
        ``epochs`` x ``steps_per_epoch`` steps, (lr_t, 1 - beta1^(t+1), sqrt(1 - beta2^(t+1))).
        Every engine reads its step constants here, so they are the same numbers everywhere."""
        t = np.arange(first, first + count, dtype=np.float64)
        T = float(epochs * steps_per_epoch)
        if self.schedule == "cosine":
            lr_t = lr * (1.0 + np.cos(np.pi * t / T)) / 2.0
        elif self.schedule == "linear":
            lr_t = lr * (1.0 - t / T)
        elif self.schedule == "step":
            epoch = np.arange(first, first + count) // steps_per_epoch
            lr_t = lr * self.gamma ** (epoch // self.step_every).astype(np.float64)
        else:
            lr_t = np.full(count, float(lr))
        if self.warmup > 0:
            lr_t = lr_t * np.minimum(1.0, (t + 1.0) / self.warmup)
        out = np.empty((count, 3))
        out[:, 0] = lr_t
        out[:, 1] = 1.0 - self.beta1 ** (t + 1.0)
        out[:, 2] = np.sqrt(1.0 - self.beta2 ** (t + 1.0))
        return out


def unused_fields(optimizer: str, schedule: str) -> tuple[str, ...]:
    """The fields of `OptimizerSpec` that ``optimizer`` with ``schedule`` does not read (an experiment
    sweeping optimizers keeps those at their defaults for the rules that ignore them)."""
    unused = [name for name, users in _USED_BY.items() if optimizer not in users]
    return (*unused, *(("gamma", "step_every") if schedule != "step" else ()))


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_number(name: str, value: object, what: str, ok) -> None:
    number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not ok(float(value)):
        raise InputError(f"{name}: expected {what}, got {value!r}")


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What `train` returns.

    Attributes
    ----------
    network : Network
        The trained replicas.
    loss_curve : ndarray (R, epochs + 1)
        Full-data mean loss before training (column 0) and after each epoch.
    grad_norm : ndarray (R,)
        Euclidean norm of the full-data gradient (all weights and biases) at the end.
    diverged : ndarray (R,) of bool
        True where a loss became non-finite; that replica stopped updating there.
    """

    network: Network
    loss_curve: np.ndarray
    grad_norm: np.ndarray
    diverged: np.ndarray


def shuffle_keys(seeds: Sequence[int]) -> np.ndarray:
    """(R,) uint64: the key of each replica's shuffling stream, drawn from
    ``SeedSequence(seed, spawn_key=(1,))`` (its initialization uses spawn_key (0,))."""
    return np.array(
        [np.random.SeedSequence(int(s), spawn_key=(1,)).generate_state(1, np.uint64)[0] for s in seeds],
        dtype=np.uint64,
    )


def shuffled_orders(seeds: Sequence[int], epochs: int, n: int, *, first_epoch: int = 0) -> np.ndarray:
    """(R, epochs, n) int64: the sample order of the replica with seed ``seeds[r]`` in epochs
    ``first_epoch, ..., first_epoch + epochs - 1``, a Fisher-Yates shuffle of range(n) driven by
    SplitMix64 from the replica's key and the epoch. This is the order `train` follows by default."""
    from nnlab._kernels import shuffled_orders as kernel

    return kernel(shuffle_keys(seeds), int(first_epoch), int(epochs), int(n))


def _check_int(name: str, value: object, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= high:
        raise InputError(f"{name}: expected an int in 1..{high:_}, got {value!r}")


def _kernel_ready(A: np.ndarray) -> np.ndarray:
    """``A`` as the kernels' signature wants it (a copy only when it is not already)."""
    if A.flags.writeable and A.flags.c_contiguous and A.dtype == np.float64:
        return A
    return np.array(A, dtype=np.float64, order="C")


def _check_positive(name: str, value: object, kind: type) -> None:
    ok = isinstance(value, kind | np.integer if kind is int else int | float | np.number)
    if isinstance(value, bool) or not ok or not np.isfinite(value) or value <= 0:
        what = "an int >= 1" if kind is int else "a finite number > 0"
        raise InputError(f"{name}: expected {what}, got {value!r}")


def _order_chunks(
    order: np.ndarray | None,
    keys: np.ndarray | None,
    R: int,
    epochs: int,
    n: int,
) -> Iterator[np.ndarray]:
    """Yield (1 or R, e, n) int64 slices of the epoch order, e epochs at a time."""
    if order is not None:
        o = order if order.ndim == 3 else order[None]
        step = max(1, ORDER_BUDGET // max(1, o.shape[0] * n))
        for e0 in range(0, epochs, step):
            yield np.ascontiguousarray(o[:, e0 : e0 + step], dtype=np.int64)
        return
    from nnlab._kernels import shuffled_orders as kernel

    step = max(1, ORDER_BUDGET // max(1, R * n))
    for e0 in range(0, epochs, step):
        yield kernel(keys, e0, min(step, epochs - e0), n)


def _check_order(order: object, R: int, epochs: int, n: int) -> np.ndarray:
    o = np.asarray(order)
    if not np.issubdtype(o.dtype, np.integer):
        raise InputError(f"order: expected an int array of sample indices, got dtype {o.dtype}")
    if o.shape not in ((epochs, n), (R, epochs, n)):
        raise InputError(
            f"order: expected shape (epochs, n) = {(epochs, n)} or (R, epochs, n) = "
            f"{(R, epochs, n)}, got {o.shape}"
        )
    if o.size and (o.min() < 0 or o.max() >= n):
        raise InputError(f"order: sample indices must lie in [0, {n}), got [{o.min()}, {o.max()}]")
    return o


def train(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    lr: float,
    epochs: int,
    batch_size: int = 1,
    loss: str = "half_squared",
    optimizer: str = "sgd",
    momentum: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    warmup: int = 0,
    gamma: float = 0.1,
    step_every: int | None = None,
    seeds: int | Sequence[int] | None = None,
    order: np.ndarray | None = None,
    engine: str = "auto",
    threads: int | None = None,
) -> TrainResult:
    """Train all replicas of ``net`` with SGD or one of its variants.

    Parameters
    ----------
    net : Network
        R replicas; not modified.
    X : ndarray (n, d) or (R, n, d)
    Y : ndarray (n, out) or (R, n, out)
        Targets; for cross_entropy with out >= 2 also class labels 0..out-1, shaped (n,) or (n, 1).
    lr : float
        Learning rate, > 0 (the schedule's peak).
    epochs : int
        Passes over the data, >= 1.
    batch_size : int
        Samples per step; 1 is the textbook's stochastic gradient descent.
    loss : {"half_squared", "squared", "hinge", "cross_entropy"}
        See `nnlab.functions`; cross_entropy needs the softmax output (with one output unit, softmax
        or sigmoid), hinge an identity or tanh output.
    optimizer : {"sgd", "momentum", "nesterov", "adam", "adamw"}
        The update rule, as torch.optim's (`OptimizerSpec` gives the formulas); "sgd" is plain SGD.
    momentum : float
        momentum and nesterov's coefficient, in [0, 1).
    beta1, beta2, eps : float
        adam and adamw's: beta1, beta2 in [0, 1), eps > 0.
    weight_decay : float
        >= 0: coupled L2 (g + wd theta) for all but adamw, decoupled for adamw.
    schedule : {"constant", "cosine", "linear", "step"}
        The learning rate lr_t of each update step over the whole run (`OptimizerSpec`).
    warmup : int
        Update steps of a linear warmup, lr_t times min(1, (t + 1) / warmup); 0: none.
    gamma, step_every : float, int
        The step schedule's: lr times gamma every step_every epochs.
    seeds : int or sequence of int, optional
        Shuffling seeds, one per replica; default ``net.seeds``, else 0..R-1. Replica r visits the
        samples in the order ``shuffled_orders(seeds, epochs, n)[r]``, which depends on its seed only.
    order : int ndarray (epochs, n) or (R, epochs, n), optional
        Explicit sample order for all replicas or per replica; overrides the shuffling.
    engine : {"auto", "numba", "numpy"}
        "numpy" is the readable reference; "auto" means "numba".
    threads : int, optional
        Threads of the compiled engine (default: numba's, one per core).

    Returns
    -------
    TrainResult
    """
    if not isinstance(net, Network):
        raise InputError(f"net: expected a Network, got {type(net).__name__}")
    _check_positive("lr", lr, float)
    # The bounds of experiment files (nnlab.schema): every epoch's loss is kept, and batch sizes are
    # int64 in the kernels (larger than n means the full batch).
    _check_int("epochs", epochs, MAX_EPOCHS)
    _check_int("batch_size", batch_size, MAX_INT)
    spec = OptimizerSpec(
        optimizer, momentum, beta1, beta2, eps, weight_decay, schedule, warmup, gamma, step_every
    )
    Y = check_loss(net, loss, Y)
    check_choice("engine", engine, ENGINES)
    if threads is not None:
        _check_positive("threads", threads, int)
    R = net.n_replicas
    X3 = as_replicated(net, X, "X", net.sizes[0])
    Y3 = as_replicated(net, Y, "Y", net.sizes[-1])
    n = X3.shape[1]
    if Y3.shape[1] != n:
        raise InputError(f"Y: expected {n} samples like X, got {Y3.shape[1]}")
    if n == 0:
        raise InputError("X: expected at least one sample, got 0")
    check_finite(X3, "X")
    check_finite(Y3, "Y")
    keys = None
    if order is not None:
        order = _check_order(order, R, epochs, n)
    else:
        if seeds is None:
            seed_list = list(net.seeds) if net.seeds is not None else list(range(R))
        else:
            seed_list = [seeds] if isinstance(seeds, int | np.integer) else list(seeds)
            if len(seed_list) != R or any(
                isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0 for s in seed_list
            ):
                raise InputError(f"seeds: expected {R} non-negative ints (one per replica), got {seeds!r}")
        keys = shuffle_keys(seed_list)
    chunks = _order_chunks(order, keys, R, epochs, n)
    run = (net, X3, Y3, chunks, float(lr), int(epochs), int(batch_size), loss, spec)
    if engine == "numpy":
        return _train_numpy(*run)
    return _train_compiled(*run, threads)


def _rate_slices(
    chunks: Iterator[np.ndarray], spec: OptimizerSpec, lr: float, epochs: int, steps: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each slice of the epoch order with its update steps' constants (`OptimizerSpec.rates`)."""
    t = 0
    for order in chunks:
        count = order.shape[1] * steps
        yield order, spec.rates(lr, epochs, steps, t, count)
        t += count


def _train_numpy(
    net: Network,
    X3: np.ndarray,
    Y3: np.ndarray,
    chunks: Iterator[np.ndarray],
    lr: float,
    epochs: int,
    batch_size: int,
    loss: str,
    spec: OptimizerSpec,
) -> TrainResult:
    """The reference: one back-propagation (`backprop`'s recursion) per batch across all replicas,
    then one update of every parameter array (`_update`)."""
    R, n = net.n_replicas, X3.shape[1]
    L = len(net.weights)
    # The parameter arrays theta: W_1 .. W_L, then b_1 .. b_L; the optimizer's state alike.
    theta = [w.copy() for w in net.weights] + ([] if net.biases is None else [v.copy() for v in net.biases])
    state = [[np.zeros_like(p) for p in theta] for _ in range(spec.state_size)]

    def network(seeds=None):
        return Network(tuple(theta[:L]), tuple(theta[L:]) or None, net.hidden, net.output, seeds)

    steps = -(-n // batch_size)
    curve = np.empty((R, epochs + 1))
    with np.errstate(all="ignore"):
        curve[:, 0] = loss_of(net, X3, Y3, loss=loss)
        active = np.isfinite(curve[:, 0])
        rx = np.arange(X3.shape[0])[:, None]
        e = 0
        for order, rates in _rate_slices(chunks, spec, lr, epochs, steps):
            j = 0  # the update step within the slice
            for order_e in order.transpose(1, 0, 2):  # (1 or R, n)
                for start in range(0, n, batch_size):
                    idx = order_e[:, start : start + batch_size]
                    # (1 or R, batch, d): replica r's batch is X3[r or 0, idx[r or 0]].
                    Xb, Yb = X3[rx, idx], Y3[rx, idx]
                    cur = network()
                    # train checked X3 and Y3 once: each step is the recursion alone.
                    g = recursion(cur, *forward_pass(cur, Xb), Yb, loss)
                    active &= np.isfinite(g.loss)
                    grads = list(g.weights) + ([] if g.biases is None else list(g.biases))
                    for i, (p, gp) in enumerate(zip(theta, grads, strict=True)):
                        new, new_state = _update(spec, p, gp, [s[i] for s in state], *rates[j])
                        keep = active.reshape((R,) + (1,) * (p.ndim - 1))
                        theta[i] = np.where(keep, new, p)
                        for s, ns in zip(state, new_state, strict=True):
                            s[i] = np.where(keep, ns, s[i])
                    j += 1
                e += 1
                curve[:, e] = loss_of(network(), X3, Y3, loss=loss)
                active &= np.isfinite(curve[:, e])
        final = network(net.seeds)
        g = backprop(final, X3, Y3, loss=loss)
        sq = sum((gw**2).sum(axis=(1, 2)) for gw in g.weights)
        if g.biases is not None:
            sq = sq + sum((gb**2).sum(axis=1) for gb in g.biases)
        grad_norm = np.sqrt(sq)
    return TrainResult(final, curve, grad_norm, ~active)


def _update(
    spec: OptimizerSpec,
    theta: np.ndarray,
    g: np.ndarray,
    state: list[np.ndarray],
    lr_t: float,
    bc1: float,
    bc2_sqrt: float,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One step of ``spec``'s rule on one parameter array theta with gradient g (the batch mean)
    and its state (buf, or m and v); bc1 = 1 - beta1^t, bc2_sqrt = sqrt(1 - beta2^t). Returns the
    new theta and state. Arranged as torch.optim computes them."""
    wd = spec.weight_decay
    if spec.optimizer == "adamw":
        theta = theta * (1.0 - lr_t * wd)
    elif wd != 0.0:
        g = g + wd * theta
    if spec.optimizer == "sgd":
        return theta - lr_t * g, []
    if spec.optimizer in ("momentum", "nesterov"):
        buf = spec.momentum * state[0] + g  # the state starts at zero: buf = g at the first step
        step = buf if spec.optimizer == "momentum" else g + spec.momentum * buf
        return theta - lr_t * step, [buf]
    m = spec.beta1 * state[0] + (1.0 - spec.beta1) * g
    v = spec.beta2 * state[1] + (1.0 - spec.beta2) * g * g
    denom = np.sqrt(v) / bc2_sqrt + spec.eps
    return theta - (lr_t / bc1) * (m / denom), [m, v]


# ---------------------------------------------------------------------------------------------------
# The compiled engine: pack the replicas into the kernels' layout, run, unpack.

LAYOUTS = ("lanes", "replica")
# Where the replica layout overtakes the lanes (`scripts/bench_engine.py --crossover`, one engine
# thread, measured on an Intel Xeon with AVX-512 and 2 MB of L2 per core): with a minibatch, once a
# layer has 2048 weights (its matrix products then beat 16 replicas' sample-by-sample passes; around
# 1024-1600 the two are within 20% either way); with per-sample SGD, once a replica has 32768
# parameters (16 replicas' weights, 4 MB, no longer stay in a core's cache; around it the two are
# within 20%). REPLICA_PARAMS is that machine's; another machine's threshold scales with its L2 over
# its lanes (`nnlab.machine.replica_params`, what `layout` uses). REPLICA_LAYER compares two kinds of
# vector code and is kept on every machine.
REPLICA_LAYER = 2048
REPLICA_PARAMS = 32768


def layout(sizes: Sequence[int], batch_size: int) -> str:
    """The compiled layout `train` uses for a network of ``sizes`` trained with ``batch_size``.

    "lanes" keeps 16 replicas (8 without AVX-512: `nnlab.machine`) in one vector and runs the samples
    one by one: every weight of those replicas streams once per sample, which suits small networks and
    per-sample SGD. "replica" trains one replica at a time, each minibatch step a few matrix products
    (BLAS) on weights that stay in the core's cache: the layout of wide layers with minibatches, and
    of large networks (from `nnlab.machine.replica_params` parameters: 32768 on a machine with
    AVX-512 and 2 MB of L2 per core). The choice depends on the architecture, the batch size and the
    machine only, never on the number of replicas or threads, so on one machine a run's numbers
    depend only on its configuration and seed.
    """
    from nnlab import machine

    pairs = list(zip(sizes[:-1], sizes[1:], strict=False))
    widest = max(a * b for a, b in pairs)
    params = sum(a * b + b for a, b in pairs)
    if params >= machine.replica_params(machine.host().l2_bytes, machine.lanes()) or (
        batch_size >= 2 and widest >= REPLICA_LAYER
    ):
        return "replica"
    return "lanes"


def train_memory(
    sizes: Sequence[int],
    *,
    replicas: int,
    n: int,
    epochs: int,
    batch_size: int = 1,
    bias: bool = True,
    threads: int = 2,
    optimizer: str = "sgd",
) -> dict[str, int]:
    """The bytes `train` allocates for a run of ``replicas`` seeds of ``sizes`` on n samples shared by
    the replicas (beyond the caller's network and data), by part; the largest at once is their sum.

    - ``parameters``: the kernels' copy of every replica's weights and biases, the optimizer's state
      in the same layout (momentum and nesterov one copy, adam and adamw two) and the trained network
      returned (float64, R x P each; the lane layout pads R to a multiple of its lanes, the replica layout
      each layer to a multiple of 8 numbers);
    - ``orders``: the shuffled sample orders, generated ORDER_BUDGET indices (32 MB) at a time, and
      the same epochs' step constants (learning rate and bias corrections, three numbers a step);
    - ``curves``: the loss curve, R x (epochs + 1), and one slice's part of it;
    - ``buffers``: each engine thread's activations, deltas and gradient (replica layout: up to 256
      samples' activations of every layer; lanes: four samples' for 16 or 8 replicas);
    - ``data``: X and Y as one contiguous float64 copy.
    """
    from nnlab import machine

    check_choice("optimizer", optimizer, OPTIMIZERS)
    sizes = [int(s) for s in sizes]
    R = int(replicas)
    widths = sum(sizes)
    wmax = max(sizes)
    if layout(sizes, batch_size) == "lanes":
        P = sum(a * b + (b if bias else 0) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        lanes = machine.lanes()
        rows = -(-R // lanes) * lanes
        per_thread = lanes * (4 * widths + 2 * wmax + 4 * sizes[-1] + P)
    else:

        def up(x: int) -> int:
            return -(-x // 8) * 8

        P = sum(up(a * b) + (up(b) if bias else 0) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        rows = R
        block = max(8, min(256, (131072 // widths) // 8 * 8))  # nnlab._kernels.loss_block
        # (a rule other than plain SGD also keeps one replica's gradient)
        per_thread = max(min(batch_size, n), block) * (widths + 2 * wmax) + P * (optimizer != "sgd")
    chunk = min(int(epochs), max(1, ORDER_BUDGET // max(1, R * n)))  # epochs per slice of orders
    state = OptimizerSpec(optimizer).state_size
    steps = -(-int(n) // int(batch_size))
    return {
        "parameters": 8 * ((1 + state) * rows * P + R * P),
        "orders": 8 * chunk * (R * n + 3 * steps),
        "curves": 8 * R * (int(epochs) + 1 + chunk),
        "buffers": 8 * per_thread * min(int(threads), R),
        "data": 8 * n * (sizes[0] + sizes[-1]),
    }


# Seconds per replica-sample step on one engine thread, the step and its share of the full-data
# loss pass together, as (a, b): a + b * parameters. Measured on this project's machine (AMD EPYC,
# Zen 4, float64, 32 replicas; XOR to the 1000-unit digits network): the lanes within about 30%,
# except deep narrow networks (up to 60% high); the replica layout within 15%.
STEP_SECONDS = {"lanes": (45e-9, 0.6e-9), "replica": (0.0, 0.28e-9), "replica per sample": (0.0, 0.5e-9)}


# Seconds per parameter per update step that a rule adds to plain SGD's step, one engine thread,
# measured on this project's machine (Intel Xeon, AVX-512; 2026-12-08, after Adam's square root went
# to Newton's iteration): the extra time of momentum and Adam over SGD in one process, best of five
# interleaved, on XOR, the teacher (width 6 and 24), a 2-32-32-1 spiral network and a 64-256-64
# network per sample (lanes and replica layouts), and the digits with batches of 16: momentum
# 0.05-0.25 ns (0.64 on a batched replica network), Adam 0.8-1.2 ns (1.4). Adam's cost is the division
# of every parameter's step; per sample on the teacher it makes a step 1.9x plain SGD's.
UPDATE_SECONDS = {"sgd": 0.0, "momentum": 0.15e-9, "nesterov": 0.15e-9, "adam": 1.0e-9, "adamw": 1.0e-9}


def train_seconds(
    sizes: Sequence[int],
    *,
    replicas: int,
    n: int,
    epochs: int,
    batch_size: int = 1,
    bias: bool = True,
    optimizer: str = "sgd",
    rates: dict | None = None,
) -> float:
    """A rough estimate of the seconds `train` takes for ``replicas`` seeds of ``sizes`` on n
    samples with one engine thread: replicas x epochs x n steps at ``rates`` (kind -> (a, b): a + b P
    seconds a replica-sample step, P parameters; `STEP_SECONDS` when not given, else this machine's
    from `nnlab.sweep.planning.step_rates`; a compile on first use adds about 20-40 s per layout), and
    for a rule other than plain SGD, its cost per update step (`UPDATE_SECONDS`). The lane layout's
    padding of ``replicas`` to whole lanes is not counted here (`nnlab.sweep.planning` counts it)."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
    sizes = [int(s) for s in sizes]
    P = sum(a * b + (b if bias else 0) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    kind = layout(sizes, batch_size)
    if kind == "replica" and batch_size == 1:
        kind = "replica per sample"
    a, b = (rates or STEP_SECONDS)[kind]
    steps = -(-int(n) // int(batch_size))
    return float(replicas) * epochs * (n * (a + b * P) + steps * UPDATE_SECONDS[optimizer] * P)


def uncompiled(layouts: Sequence[str]) -> list[str]:
    """The layouts among ``layouts`` whose compiled kernels are neither loaded in this process nor in
    numba's disk cache: their first use compiles them (about 20-40 s each, once per installation
    and change of nnlab/_kernels.py). Reads numba's cache index; when that cannot be read, nothing is
    reported."""
    from nnlab import _kernels as K

    entries = {"lanes": (K.lanes_train, K.lanes_evaluate), "replica": (K.replica_train, K.replica_evaluate)}
    out = []
    for name in dict.fromkeys(layouts):
        try:
            # A dispatcher with signatures is compiled here; else its cache index must list one.
            cached = all(f.signatures or f._cache._cache_file._load_index() for f in entries[name])
        except Exception:  # numba's cache internals are not a public interface: stay silent
            cached = True
        if not cached:
            out.append(name)
    return out


def _plan(net: Network, align: int = 1) -> tuple[ParamLayout, np.ndarray, np.ndarray]:
    """The kernels' view of `ParamLayout` (offsets multiples of ``align``): the layout, lay (L, 4) =
    n_in, n_out, W offset, b offset (-1: none) per layer, and foff (L + 1,), the offsets of f_i."""
    layout = ParamLayout(tuple(net.sizes), net.biases is not None, align)
    L = len(net.weights)
    lay = np.array([(*net.sizes[i : i + 2], *layout.offsets[i + 1]) for i in range(L)], dtype=np.int64)
    foff = np.concatenate([[0], np.cumsum(net.sizes[:-1])]).astype(np.int64)
    return layout, lay, foff


def _pack(net: Network, layout: ParamLayout) -> np.ndarray:
    """(R, P): `ParamLayout.pack` into a 64-byte aligned buffer (with P a multiple of 8, every row
    starts on a 64-byte boundary)."""
    from nnlab._kernels import aligned_zeros

    return layout.pack(net, aligned_zeros(net.n_replicas * layout.size).reshape(net.n_replicas, -1))


def _unpack(net: Network, layout: ParamLayout, flat: np.ndarray) -> Network:
    """The trained network (copies, so that the kernels' buffer can go) with ``net``'s seeds."""
    trained = layout.unpack(np.ascontiguousarray(flat).copy(), hidden=net.hidden, output=net.output)
    return Network(trained.weights, trained.biases, net.hidden, net.output, net.seeds)


def _to_lanes(flat: np.ndarray, lanes: int) -> np.ndarray:
    """(R, P) -> (C, P, lanes), padding replicas with zeros, on a 64-byte boundary (whole cache
    lines for the kernels' vector loads)."""
    from nnlab._kernels import aligned_zeros

    R, P = flat.shape
    C = -(-R // lanes)
    padded = np.zeros((C * lanes, P))
    padded[:R] = flat
    out = aligned_zeros(C * P * lanes).reshape(C, P, lanes)
    out[:] = padded.reshape(C, lanes, P).transpose(0, 2, 1)
    return out


def _from_lanes(params: np.ndarray, R: int) -> np.ndarray:
    C, P, lanes = params.shape
    return params.transpose(0, 2, 1).reshape(C * lanes, P)[:R]


@functools.cache
def _blas_threads():
    """threadpoolctl's controller of the BLAS libraries loaded (scipy's, which the kernels call)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _train_compiled(
    net: Network,
    X3: np.ndarray,
    Y3: np.ndarray,
    chunks: Iterator[np.ndarray],
    lr: float,
    epochs: int,
    batch_size: int,
    loss: str,
    spec: OptimizerSpec,
    threads: int | None,
) -> TrainResult:
    import numba

    from nnlab import _kernels as K

    R = net.n_replicas
    # The one array type the kernels are compiled for: C-contiguous, float64 and writeable (numba
    # compiles a read-only array, a view of a read-only X, as a type of its own: 20-40 s, silently).
    X3, Y3 = _kernel_ready(X3), _kernel_ready(Y3)
    codes = (K.ACTIVATION_CODES[net.hidden], K.ACTIVATION_CODES[net.output], K.LOSS_CODES[loss])
    rule = K.Rule(
        K.OPTIMIZER_CODES[spec.optimizer],
        float(spec.momentum),
        float(spec.beta1),
        float(spec.beta2),
        float(spec.eps),
        float(spec.weight_decay),
    )
    S = spec.state_size
    if layout(net.sizes, batch_size) == "lanes":
        packed, lay, foff = _plan(net)
        P = packed.size
        params = _to_lanes(_pack(net, packed), K.LANES)
        # The optimizer's state: S arrays laid out like params, one after the other in each chunk.
        state = K.aligned_zeros(params.shape[0] * S * P * K.LANES).reshape(params.shape[0], S * P, K.LANES)
        blas = contextlib.nullcontext()

        def run(order, rates, active, part):
            K.lanes_train(
                params, state, lay, foff, X3, Y3, order, rates, rule, batch_size, *codes, active, part
            )

        def evaluate(want_grad, loss, gnorm):
            K.lanes_evaluate(params, lay, foff, X3, Y3, *codes, want_grad, loss, gnorm)

        def result():
            return _from_lanes(params, R)
    else:
        packed, lay, foff = _plan(net, align=8)
        P = packed.size
        params = _pack(net, packed)
        state = K.aligned_zeros(R * S * P).reshape(R, S * P)
        gemm = K.blas_dgemm()
        # One BLAS thread: the kernels call it from every engine thread at once.
        blas = _blas_threads().limit(limits=1, user_api="blas")

        kspec = K.Spec(lay, foff, *codes)

        def run(order, rates, active, part):
            K.replica_train(gemm, params, state, kspec, X3, Y3, order, rates, rule, batch_size, active, part)

        def evaluate(want_grad, loss, gnorm):
            K.replica_evaluate(gemm, params, kspec, X3, Y3, want_grad, loss, gnorm)

        def result():
            return params

    curve = np.empty((R, epochs + 1))
    grad_norm = np.zeros(R)
    previous = numba.get_num_threads()
    steps = -(-X3.shape[1] // batch_size)
    try:
        if threads is not None:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        with blas:
            first = np.empty(R)
            evaluate(False, first, grad_norm)
            curve[:, 0] = first
            active = np.isfinite(first).astype(np.uint8)
            e = 1
            for order, rates in _rate_slices(chunks, spec, lr, epochs, steps):
                E = order.shape[1]
                part = np.empty((R, E))
                run(order, rates, active, part)
                curve[:, e : e + E] = part
                e += E
            last = np.empty(R)
            evaluate(True, last, grad_norm)
    finally:
        numba.set_num_threads(previous)
    return TrainResult(_unpack(net, packed, result()), curve, grad_norm, active == 0)
