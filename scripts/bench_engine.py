"""Benchmark of the training engine against JAX (+optax) and PyTorch: replica-sample-steps per second,
for SGD and each of nnlab's optimizers.

Configurations (float64, tanh hidden and output layers, loss half_squared, R seeds trained together):

- the engine issue's shapes: n = 1792 digits (scikit-learn's 8x8 digits, the first 1792, pixels / 16,
  one-hot targets +-0.9; random data of the same shapes without scikit-learn), 64 inputs, 10 outputs,
  one hidden layer of 64, 256 or 1024 units with batch 16, or two of 256 with batch 64, 32 seeds
  ("DIG64", "DIG256", "DIG1024", "DIG2x256"); 2 inputs, 8 hidden layers of 16, per-sample, 64 seeds
  ("DEEP8x16"); XOR's 4 points, width 2, per-sample, 4096 seeds ("XOR");
- the reference grid: n = 256 points in 2-D, 1 output, per-sample, 64 seeds, hidden layers x width in
  {1, 3} x {4, 32, 128} ("D1W4" ... "D3W128").

Optimizers, with nnlab's hyperparameters, the same in every engine: sgd (lr 0.05); momentum and
nesterov (lr 0.05, momentum 0.9, dampening 0); adam (lr 0.001, betas 0.9 and 0.999, eps 1e-8) and
adamw (the same, weight decay 0.01, torch's default); no weight decay otherwise, constant lr.

Every engine does the same job as `nnlab.train`: each replica follows its own shuffled order (the same
orders, drawn before timing, for every engine: `train(..., order=...)`), minibatch steps on the
batch-mean loss (a partial last batch is a step), the full-data loss before training and after every
epoch, and the full-data gradient norm at the end.

- JAX: jit + vmap over replicas + lax.scan over epochs and batches, the update rule optax's
  (optax.sgd(lr, momentum=, nesterov=), optax.adam, optax.adamw): these are torch.optim's rules.
  optax.sgd's trace starts at zero, so its first buffer is g, as torch's; its Nesterov step is
  g + mu buf, as torch's; scale_by_adam puts eps outside the square root of the bias-corrected v
  (eps_root = 0), as torch's; optax.adamw adds wd * theta to Adam's direction before scaling by -lr,
  so theta <- theta (1 - lr wd) - lr adam_dir, torch's decoupled decay (on biases too, as nnlab).
  The full-data loss two ways (one batched forward pass, or a scan over the samples for per-sample
  configurations); the faster counts.
- PyTorch: replicas stacked (R, ...), baddbmm, autograd, torch.optim.SGD / Adam / AdamW on the stacked
  tensors. The loss is the sum over replicas of each replica's batch-mean loss: replica r's parameters
  enter only its own term, so the gradient of the sum is each replica's own gradient, and these rules
  are elementwise (Adam's step count is one for all, as all step together), so the stacked optimizer is
  exactly R separate ones (foreach and fused too: the same rules over the same tensors). The fastest of
  torch.optim's implementations (for-loop, foreach, fused) on a short probe counts. PyTorch runs fewer
  epochs (about --seconds' worth), its rate per step.

`--check` verifies that: on two tiny configurations (minibatches with a partial last batch; per-sample)
every peer's final parameters, loss curve and gradient norm equal nnlab's to 1e-10, for every optimizer
and every variant a timing may pick (JAX's two loss passes; torch.optim's for-loop, foreach and fused
implementations).

Timing: each peer runs in its own worker process (one thread, and its default threads), kept alive
over the run. For each configuration nnlab's epochs are calibrated so that its SGD run takes about
--seconds, and at least MIN_EPOCHS (4); JAX runs as many epochs (fixed costs amortize alike). Then for
each optimizer every engine compiles and warms up, and --repeats rounds each time every engine once,
in turn (interleaved), best of the rounds; nnlab's SGD runs in the other optimizers' rounds too, so
that "/ sgd" (nnlab's rate over its SGD rate) also compares moments of the same load. nnlab uses
numba's threads (one per core). GFLOP/s counts 6 x parameters per replica-sample step (the optimizer's
elementwise work not counted); the peak is numpy's float64 matmul (4096 x 4096) on one and on all
cores, measured in the same run. A summary gives each optimizer's least ratios over the
configurations and its GFLOP/s at DIG1024.

    python scripts/bench_engine.py [--configs DIG1024,D1W32] [--optimizers sgd,adam] [--repeats 2]
                                   [--seconds 0.5] [--no-jax] [--no-torch] [--markdown]
    python scripts/bench_engine.py --check
    python scripts/bench_engine.py --no-peers --optimizers sgd,momentum,nesterov,adam,adamw
    python scripts/bench_engine.py --crossover

The default (`make bench`) is every configuration and every optimizer against both peers, about 40
minutes on a 2-core machine (--seconds 0.5, --repeats 2); --configs, --optimizers and --seconds bound it.

--no-peers times nnlab alone with each optimizer on the same job (default configs: the reference grid),
in interleaved rounds (each round runs every optimizer once; best of --repeats rounds), and prints each
one's rate over the first's (sgd).

--crossover measures what `nnlab.sgd.layout` rests on: both compiled layouts, forced, on one thread,
over a grid of shapes and batch sizes (n = 512 samples, 32 seeds), and prints the replica layout's
rate over the lanes'.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

LR = 0.05
# The learning rate of each optimizer (the adaptive ones at Adam's usual step size, so none diverges).
OPTIMIZER_LR = {"sgd": LR, "momentum": LR, "nesterov": LR, "adam": 1e-3, "adamw": 1e-3}
MOMENTUM, BETA1, BETA2, EPS = 0.9, 0.9, 0.999, 1e-8
# Weight decay per optimizer (adamw at torch's default; coupled L2 elsewhere would change the job).
WEIGHT_DECAY = {"adamw": 0.01}
REFERENCE_GRID = ["D1W4", "D1W32", "D1W128", "D3W4", "D3W32", "D3W128"]
CHECK_TOLERANCE = 1e-10
# The fewest epochs nnlab and JAX time: the loss before training and the gradient at the end cost about
# an epoch's work together (the loss pass and the gradient of all n samples), 1 / (epochs + 1) of a run,
# which at 4 epochs still lowers a rate by a fifth, alike for both (GFLOP/s counts the epochs' steps).
MIN_EPOCHS = 4
TORCH_IMPLS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


@dataclass(frozen=True)
class Case:
    """One benchmark configuration: sizes [d, h_1, ..., out], samples, batch, seeds, the most epochs
    a timed run may take (nnlab's are calibrated up to it), data."""

    sizes: tuple[int, ...]
    n: int
    batch: int
    seeds: int
    epochs: int
    data: str  # "digits", "plane" (uniform in [-1, 1]^2) or "xor"

    @property
    def n_params(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=False))


CASES = {
    "DIG64": Case((64, 64, 10), 1792, 16, 32, 40, "digits"),
    "DIG256": Case((64, 256, 10), 1792, 16, 32, 24, "digits"),
    "DIG1024": Case((64, 1024, 10), 1792, 16, 32, 16, "digits"),
    "DIG2x256": Case((64, 256, 256, 10), 1792, 64, 32, 16, "digits"),
    "DEEP8x16": Case((2, *[16] * 8, 1), 256, 1, 64, 160, "plane"),
    "XOR": Case((2, 2, 1), 4, 1, 4096, 4000, "xor"),
    **{
        f"D{depth}W{width}": Case((2, *[width] * depth, 1), 256, 1, 64, epochs, "plane")
        for depth, width, epochs in [
            (1, 4, 800),
            (1, 32, 400),
            (1, 128, 160),
            (3, 4, 800),
            (3, 32, 160),
            (3, 128, 16),
        ]
    },
}
# --check's configurations: two hidden layers and a partial last batch (10 = 4 + 4 + 2), and a
# per-sample one; three replicas each.
CHECK_CASES = {
    "CHECK-b4": Case((2, 3, 3, 1), 10, 4, 3, 4, "plane"),
    "CHECK-b1": Case((2, 4, 1), 8, 1, 3, 3, "plane"),
}


def workload(case: Case, epochs: int | None = None):
    """X (n, d), Y (n, out), the initial network and the orders (R, epochs, n): the same in every
    process (fixed seeds)."""
    import nnlab
    from nnlab.sgd import shuffled_orders

    rng = np.random.default_rng(12345)
    if case.data == "digits":
        try:
            from sklearn.datasets import load_digits

            digits = load_digits()
            X, labels = digits.data[: case.n] / 16.0, digits.target[: case.n]
        except ImportError:
            X, labels = rng.uniform(0.0, 1.0, size=(case.n, 64)), rng.integers(0, 10, size=case.n)
        Y = np.where(np.eye(10)[labels] > 0, 0.9, -0.9)
    elif case.data == "xor":
        X = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
        Y = np.array([[-0.9], [0.9], [0.9], [-0.9]])
    else:
        X = rng.uniform(-1.0, 1.0, size=(case.n, 2))
        Y = 0.8 * np.tanh(3.0 * X[:, :1] * X[:, 1:])  # a smooth target inside tanh's range
    net = nnlab.init_network(list(case.sizes), seeds=range(case.seeds))
    order = shuffled_orders(range(case.seeds), case.epochs if epochs is None else epochs, case.n)
    return net, X, Y, order


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up: compilation, caches
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def calibrated_epochs(case: Case, one_epoch, seconds: float = 1.0) -> int:
    """Epochs a slow baseline times: about ``seconds`` of work (timed from one epoch), at most
    case.epochs. ``one_epoch()`` runs one epoch (its first call also warms up)."""
    one_epoch()
    t = time.perf_counter()
    one_epoch()
    return int(max(1, min(case.epochs, round(seconds / max(time.perf_counter() - t, 1e-9)))))


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def epochs_for(run, seconds: float, most: int) -> int:
    """Epochs that make ``run(epochs)`` take about ``seconds`` (at most ``most``): probed with 1, 4,
    16, ... epochs until a run takes a quarter of that (so that a call's fixed cost does not count as
    epochs'), after a warm-up run."""
    run(1)
    e = 1
    while True:
        t = timed(lambda e=e: run(e))
        if t >= seconds / 4 or e >= most:
            return int(max(1, min(most, round(e * seconds / max(t, 1e-9)))))
        e = min(most, 4 * e)


# ---------------------------------------------------------------------------------------------------
# nnlab (in this process).


def nnlab_run(case: Case, optimizer: str, epochs: int, data=None):
    """() -> TrainResult: nnlab.train on the benchmark's job with ``optimizer``."""
    import nnlab

    net, X, Y, order = data or workload(case, epochs)
    return functools.partial(
        nnlab.train,
        net,
        X,
        Y,
        lr=OPTIMIZER_LR[optimizer],
        epochs=epochs,
        batch_size=case.batch,
        order=order[:, :epochs],
        optimizer=optimizer,
        weight_decay=WEIGHT_DECAY.get(optimizer, 0.0),
    )


def nnlab_epochs(case: Case, seconds: float) -> int:
    """nnlab's epochs for ``case``: its SGD run takes about ``seconds``, and at least MIN_EPOCHS (at
    most case.epochs)."""
    data = workload(case, case.epochs)
    epochs = epochs_for(lambda e: nnlab_run(case, "sgd", e, data)(), seconds, case.epochs)
    return max(epochs, min(MIN_EPOCHS, case.epochs))


def optimizer_rates(names: list[str], optimizers: list[str], repeats: int, seconds: float) -> None:
    """nnlab alone with each optimizer, interleaved rounds, best of ``repeats``; prints a table of
    rates and ratios to the first optimizer's."""
    from nnlab.sgd import layout

    print(f"# interleaved rounds: {repeats}; lr {', '.join(f'{o} {OPTIMIZER_LR[o]:g}' for o in optimizers)}")
    header = [
        "config",
        "layout",
        "epochs",
        *(f"{o} steps/s" for o in optimizers),
        *(f"{o}/{optimizers[0]}" for o in optimizers[1:]),
    ]
    rows = []
    for name in names:
        case = CASES[name]
        epochs = nnlab_epochs(case, seconds)
        runs, best, diverged = {}, {}, {}
        for opt in optimizers:
            runs[opt] = nnlab_run(case, opt, epochs)
            diverged[opt] = int(runs[opt]().diverged.sum())  # warm-up (compiles on first use)
            best[opt] = float("inf")
        for _ in range(repeats):
            for opt in optimizers:
                best[opt] = min(best[opt], timed(runs[opt]))
        rate = {o: case.seeds * case.n * epochs / best[o] for o in optimizers}
        flag = {o: f" ({diverged[o]} div.)" if diverged[o] else "" for o in optimizers}
        row = [name, layout(case.sizes, case.batch), str(epochs)]
        row += [f"{rate[o]:,.0f}{flag[o]}" for o in optimizers]
        row += [f"{rate[o] / rate[optimizers[0]]:.2f}" for o in optimizers[1:]]
        rows.append(row)
        print("# " + " ".join(row), file=sys.stderr, flush=True)
    print_table(header, rows, markdown=True)


CROSSOVER_SHAPES = [
    [64, 16, 10],
    [64, 32, 10],
    [64, 64, 10],
    [2, 32, 1],
    [2, 64, 1],
    [2, 128, 1],
    [2, 32, 32, 1],
    [2, 64, 64, 1],
    [2, 16, 16, 16, 1],
    [2, 128, 128, 1],
    [2, 128, 128, 128, 1],
    [64, 512, 10],
]


def crossover(repeats: int) -> None:
    """Both layouts forced, one engine thread: the replica layout's rate over the lanes'."""
    import nnlab
    from nnlab import sgd

    rng = np.random.default_rng(0)
    chosen = sgd.layout
    print("sizes                      batch  weights/layer  params       lanes     replica  ratio  chosen")
    try:
        for sizes in CROSSOVER_SHAPES:
            for batch in (1, 2, 4, 16, 32):
                n = 512
                X, Y = rng.uniform(-1, 1, (n, sizes[0])), rng.uniform(-0.5, 0.5, (n, sizes[-1]))
                net = nnlab.init_network(sizes, seeds=range(32))
                rates = {}
                for name in sgd.LAYOUTS:
                    sgd.layout = lambda s, b, name=name: name

                    def run(epochs, net=net, X=X, Y=Y, batch=batch):
                        nnlab.train(net, X, Y, lr=0.01, epochs=epochs, batch_size=batch, threads=1)

                    epochs = calibrated_epochs(
                        Case(tuple(sizes), n, batch, 32, 100, ""), lambda run=run: run(1)
                    )
                    rates[name] = 32 * n * epochs / best_time(lambda run=run, e=epochs: run(e), repeats)
                sgd.layout = chosen
                widest = max(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
                ratio = rates["replica"] / rates["lanes"]
                print(
                    f"{str(sizes):26} {batch:5} {widest:14,} {net.n_params:7,} {rates['lanes']:11,.0f} "
                    f"{rates['replica']:11,.0f} {ratio:6.2f}  {chosen(sizes, batch)}",
                    flush=True,
                )
    finally:
        sgd.layout = chosen


def machine_peak() -> tuple[float, float]:
    """GFLOP/s of a 4096 x 4096 float64 matmul with one BLAS thread and with all of them."""
    from threadpoolctl import threadpool_limits

    A, B = np.random.default_rng(0).random((2, 4096, 4096))
    peaks = []
    for threads in (1, os.cpu_count() or 1):
        with threadpool_limits(threads, user_api="blas"):
            peaks.append(2 * 4096**3 / best_time(lambda: A @ B, 2) / 1e9)
    return peaks[0], peaks[1]


def cpu_kind() -> str:
    """The CPU's model name, vendor family/model and vector extensions (Linux's /proc/cpuinfo; else
    what platform knows), e.g. "Intel(R) Xeon(R) Processor (GenuineIntel 6/167), AVX-512 (avx512f)"."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() and key.strip() not in info:
                    info[key.strip()] = value.strip()
                if not line.strip() and info:
                    break  # the first processor's block
    except OSError:
        return platform.processor() or platform.machine()
    flags = set(info.get("flags", "").split())
    if "avx512f" in flags:
        vector = "AVX-512 (avx512f)"
    elif "avx2" in flags:
        vector = "AVX2 (no avx512f)"
    else:
        vector = "no AVX2"
    kind = f"{info.get('vendor_id', '?')} {info.get('cpu family', '?')}/{info.get('model', '?')}"
    return f"{info.get('model name', platform.machine())} ({kind}), {vector}"


# ---------------------------------------------------------------------------------------------------
# Peers (each in a worker process with its own thread setting).


def jax_job(case: Case, optimizer: str, epochs: int, variant: str | None = None):
    """JAX + optax doing train's job: jit + vmap over replicas + scan, the faster of two ways to write
    the loss pass. Returns (run, result, epochs, version, variant): run() times the job (compiled and
    warmed up); result() gives (weights, biases, loss curve (R, epochs + 1), grad norm (R,)). A
    ``variant`` ("batched loss", "scan loss") forces that one."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    net, X, Y, order = workload(case, epochs)
    B, n = case.batch, case.n
    full_batches, rest = divmod(n, B)
    lr = OPTIMIZER_LR[optimizer]
    tx = {
        "sgd": lambda: optax.sgd(lr),
        "momentum": lambda: optax.sgd(lr, momentum=MOMENTUM),
        "nesterov": lambda: optax.sgd(lr, momentum=MOMENTUM, nesterov=True),
        "adam": lambda: optax.adam(lr, b1=BETA1, b2=BETA2, eps=EPS),
        "adamw": lambda: optax.adamw(lr, b1=BETA1, b2=BETA2, eps=EPS, weight_decay=WEIGHT_DECAY["adamw"]),
    }[optimizer]()

    def forward(params, x):
        f = x
        for W, b in params:
            f = jnp.tanh(f @ W + b)
        return f

    def batch_loss(params, x, y):  # the batch-mean loss, x (m, d)
        return jnp.mean(0.5 * jnp.sum((y - forward(params, x)) ** 2, axis=-1))

    grad = jax.grad(batch_loss)

    def step(carry, idx):
        params, state = carry
        updates, state = tx.update(grad(params, Xj[idx], Yj[idx]), state, params)
        return (optax.apply_updates(params, updates), state), None

    def epoch_steps(carry, idx):
        carry, _ = jax.lax.scan(step, carry, idx[: full_batches * B].reshape(full_batches, B))
        if rest:
            carry, _ = step(carry, idx[full_batches * B :])
        return carry

    def loss_by_scan(params, X, Y):  # the full-data loss sample by sample, as the per-sample steps see them
        def add(total, i):
            return total + 0.5 * jnp.sum((Y[i] - forward(params, X[i])) ** 2), None

        return jax.lax.scan(add, 0.0, jnp.arange(X.shape[0]))[0] / X.shape[0]

    def same_job(params, orders, full_loss):  # one replica: orders (E, n)
        first = full_loss(params, Xj, Yj)

        def epoch(carry, idx):
            carry = epoch_steps(carry, idx)
            return carry, full_loss(carry[0], Xj, Yj)

        (params, _), curve = jax.lax.scan(epoch, (params, tx.init(params)), orders)
        g = grad(params, Xj, Yj)
        norm = jnp.sqrt(sum(jnp.sum(a * a) for a in jax.tree_util.tree_leaves(g)))
        return params, jnp.concatenate([first[None], curve]), norm

    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(net.weights, net.biases, strict=True)]
    oj = jnp.asarray(order)
    losses = [batch_loss] + ([loss_by_scan] if B == 1 else [])  # (with minibatches the batched wins)
    if variant:
        losses = [{"batched loss": batch_loss, "scan loss": loss_by_scan}[variant]]
    runs = []
    for full_loss in losses:
        fn = jax.jit(jax.vmap(lambda p, o, full_loss=full_loss: same_job(p, o, full_loss)))
        run = functools.partial(lambda fn: jax.block_until_ready(fn(params, oj)), fn)
        run()  # compiles
        seconds = timed(run) if len(losses) > 1 else 0.0  # (one variant: warm already)
        runs.append((seconds, run, "batched loss" if full_loss is batch_loss else "scan loss"))
    _, run, variant = min(runs, key=lambda r: r[0])

    def result():
        params, curve, norm = run()
        return [np.asarray(W) for W, _ in params], [np.asarray(b) for _, b in params], curve, norm

    return run, result, epochs, jax.__version__, variant


def torch_job(case: Case, optimizer: str, epochs: int, seconds: float, variant: str | None = None):
    """PyTorch doing train's job: replicas stacked (R, ...), baddbmm, autograd, torch.optim (its
    fastest implementation here); about ``seconds`` of epochs (at most ``epochs``). Returns what
    jax_job does, the variant being the implementation (``variant`` forces one)."""
    import torch

    net, X, Y, order = workload(case, epochs)
    R, B, n = case.seeds, case.batch, case.n
    Ws = [torch.tensor(W) for W in net.weights]
    bs = [torch.tensor(b) for b in net.biases]
    Xt, Yt, ot = torch.tensor(X), torch.tensor(Y), torch.tensor(order)
    lr = OPTIMIZER_LR[optimizer]
    make = {
        "sgd": lambda p, **impl: torch.optim.SGD(p, lr=lr, **impl),
        "momentum": lambda p, **impl: torch.optim.SGD(p, lr=lr, momentum=MOMENTUM, **impl),
        "nesterov": lambda p, **impl: torch.optim.SGD(p, lr=lr, momentum=MOMENTUM, nesterov=True, **impl),
        "adam": lambda p, **impl: torch.optim.Adam(p, lr=lr, betas=(BETA1, BETA2), eps=EPS, **impl),
        "adamw": lambda p, **impl: torch.optim.AdamW(
            p, lr=lr, betas=(BETA1, BETA2), eps=EPS, weight_decay=WEIGHT_DECAY["adamw"], **impl
        ),
    }[optimizer]

    def forward(W, b, x):  # x (R, m, d)
        f = x
        for Wi, bi in zip(W, b, strict=True):
            f = torch.tanh(torch.baddbmm(bi[:, None, :], f, Wi))
        return f

    def loss_sum(W, b, x, y):  # sum over replicas of each replica's batch-mean loss: separable
        return (0.5 * ((y - forward(W, b, x)) ** 2).sum(-1)).mean(-1).sum()

    def full_loss(W, b):
        with torch.no_grad():
            f = forward(W, b, Xt[None].expand(R, -1, -1))
            return (0.5 * ((Yt[None] - f) ** 2).sum(-1)).mean(-1)

    def run(epochs, impl="for-loop", steps=None):  # steps: stop after that many (a probe)
        W = [w.clone().requires_grad_(True) for w in Ws]
        b = [v.clone().requires_grad_(True) for v in bs]
        opt = make(W + b, **TORCH_IMPLS[impl])
        curve = [full_loss(W, b)]
        for e in range(epochs):
            for start in range(0, n, B):
                i = ot[:, e, start : start + B]  # (R, m)
                opt.zero_grad()
                loss_sum(W, b, Xt[i], Yt[i]).backward()
                opt.step()
                steps = None if steps is None else steps - 1
                if steps == 0:
                    return None
            curve.append(full_loss(W, b))
        grads = torch.autograd.grad(loss_sum(W, b, Xt[None].expand(R, -1, -1), Yt[None]), W + b)
        norm = torch.sqrt(sum((g * g).flatten(1).sum(1) for g in grads))
        return W, b, torch.stack(curve, 1), norm

    # torch.optim's implementations (a Python loop over the arrays, foreach, fused): the fastest counts,
    # on a probe of 4 steps, then of 16 minibatch or 128 per-sample steps for those within 1.5x of it.
    per_epoch = -(-n // B)

    def per_step(impl: str, steps: int) -> float:
        e = min(epochs, -(-steps // per_epoch))
        return timed(lambda: run(e, impl, steps=steps)) / min(steps, e * per_epoch)

    times = {}
    for impl in [variant] if variant else TORCH_IMPLS:
        try:
            run(1, impl, steps=1)  # warm-up
            times[impl] = per_step(impl, 4)
        except (RuntimeError, ValueError):  # an implementation this build lacks for CPU tensors
            pass
    fastest = min(times.values())
    times = {i: per_step(i, 16 if B > 1 else 128) for i, t in times.items() if t <= 1.5 * fastest}
    impl = min(times, key=times.get)
    # Epochs for about ``seconds``, from the probe (its steps without the loss passes).
    e = int(max(1, min(epochs, round(seconds / (times[impl] * per_epoch)))))

    def result():
        W, b, curve, norm = run(epochs, impl)
        return [w.detach().numpy() for w in W], [v.detach().numpy() for v in b], curve, norm

    return functools.partial(run, e, impl), result, e, f"{torch.__version__}", impl


def worker(kind: str) -> int:
    """Serve the main process over stdin/stdout, one JSON line each way: {"cmd": "prepare", "config",
    "optimizer", "epochs", "seconds"} builds and warms up a job (replies its epochs and the library's
    version); {"cmd": "time"} runs it once (replies seconds); {"cmd": "result"} replies its outputs."""
    job, chosen = None, {}  # chosen: the variant picked for each configuration (JAX: its first optimizer's)
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["cmd"] == "prepare":
                case = {**CASES, **CHECK_CASES}[msg["config"]]
                started = time.perf_counter()
                if kind == "jax":
                    variant = msg.get("variant") or chosen.get(msg["config"])
                    job = jax_job(case, msg["optimizer"], msg["epochs"], variant)
                    chosen[msg["config"]] = job[4]
                else:
                    job = torch_job(case, msg["optimizer"], msg["epochs"], msg["seconds"], msg.get("variant"))
                reply = {"epochs": job[2], "version": job[3], "variant": job[4]}  # (warmed up)
                reply["prepare_seconds"] = time.perf_counter() - started
            elif msg["cmd"] == "time":
                reply = {"seconds": timed(job[0])}
            else:
                W, b, curve, norm = job[1]()
                reply = {
                    "weights": [w.tolist() for w in W],
                    "biases": [v.tolist() for v in b],
                    "curve": np.asarray(curve).tolist(),
                    "grad_norm": np.asarray(norm).tolist(),
                }
        except Exception as err:  # a peer that fails is reported, not fatal
            reply = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps(reply), flush=True)
    return 0


class Peer:
    """A worker process of one peer ("jax" or "torch") with one thread or its default threads."""

    def __init__(self, kind: str, threads: str):
        self.kind, self.threads, self.version = kind, threads, None
        env = dict(os.environ)
        if kind == "jax" and threads == "1":
            env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        if kind == "torch" and threads == "1":
            env["OMP_NUM_THREADS"] = "1"
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )

    @property
    def title(self) -> str:
        return (
            f"{'JAX' if self.kind == 'jax' else 'PyTorch'} {'1 thread' if self.threads == '1' else 'default'}"
        )

    def ask(self, **msg) -> dict:
        """The worker's reply to ``msg``; {"error": ...} when it failed or has exited."""
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            for line in self.proc.stdout:
                if line.startswith("{"):
                    reply = json.loads(line)
                    self.version = reply.get("version", self.version)
                    return reply
        except (BrokenPipeError, OSError):
            pass
        self.log.seek(0)
        return {"error": f"{self.title} exited: {self.log.read().strip().splitlines()[-1:]}"}

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()
        self.log.close()


def check(peers: list[Peer]) -> int:
    """Each peer's final parameters, loss curve and gradient norm against nnlab's on CHECK_CASES, for
    every optimizer and every variant a timing may pick; returns the number of failures."""
    variants = {"jax": ["batched loss", "scan loss"], "torch": list(TORCH_IMPLS)}
    columns = [(peer, v) for peer in peers for v in variants[peer.kind]]
    for label, case in CHECK_CASES.items():
        print(f"# {label}: sizes {list(case.sizes)}, n {case.n}, batch {case.batch}, {case.epochs} epochs")
    print(f"# max |peer - nnlab| over final parameters, loss curve, gradient norm (<= {CHECK_TOLERANCE:g})")
    rows, failures = [], 0
    for label, case in CHECK_CASES.items():
        for opt in OPTIMIZER_LR:
            r = nnlab_run(case, opt, case.epochs)()
            ours = [*r.network.weights, *r.network.biases, r.loss_curve, r.grad_norm]
            row = [label, opt]
            for peer, variant in columns:
                if variant == "scan loss" and case.batch > 1:
                    row.append("(per-sample only)")
                    continue
                msg = {"config": label, "optimizer": opt, "epochs": case.epochs, "seconds": 0.0}
                reply = peer.ask(cmd="prepare", variant=variant, **msg)
                reply = reply if "error" in reply else peer.ask(cmd="result")
                if "error" in reply:
                    row.append(reply["error"])
                    failures += 1
                    continue
                theirs = [*reply["weights"], *reply["biases"], reply["curve"], reply["grad_norm"]]
                diff = max(
                    float(np.max(np.abs(np.asarray(b) - a))) for a, b in zip(ours, theirs, strict=True)
                )
                ok = diff <= CHECK_TOLERANCE
                failures += not ok
                row.append(f"{diff:.1e} {'ok' if ok else 'DIFFERS'}")
            rows.append(row)
    print_table(["config", "optimizer", *(f"{p.title.split()[0]} {v}" for p, v in columns)], rows, True)
    return failures


def peer_rates(
    names: list[str], optimizers: list[str], peers: list[Peer], repeats: int, seconds: float, peak: float
) -> list[list[str]]:
    """The table's rows, one per (config, optimizer): nnlab's rate and each peer's, interleaved rounds."""
    from nnlab.sgd import layout

    rows = []
    for name in names:
        case = CASES[name]
        started = time.perf_counter()
        epochs = nnlab_epochs(case, seconds)
        data = workload(case, epochs)
        for opt in optimizers:
            engines = {"nnlab": nnlab_run(case, opt, epochs, data)}
            diverged = int(engines["nnlab"]().diverged.sum())  # warm-up
            steps, variants, prepared = {"nnlab": epochs, "nnlab sgd": epochs}, {}, []
            if opt != "sgd":  # nnlab's SGD in the same rounds: the ratio to it from the same moments
                engines["nnlab sgd"] = nnlab_run(case, "sgd", epochs, data)
            for peer in peers:
                reply = peer.ask(cmd="prepare", config=name, optimizer=opt, epochs=epochs, seconds=seconds)
                if "error" in reply:
                    print(f"# {peer.title} {name} {opt}: {reply['error']}", file=sys.stderr, flush=True)
                else:
                    engines[peer.title] = functools.partial(peer.ask, cmd="time")
                    steps[peer.title] = reply["epochs"]
                    variants[peer.title] = reply["variant"]
                    prepared.append(f"{peer.title} {reply['prepare_seconds']:.0f} s")
            best = dict.fromkeys(engines, float("inf"))
            for _ in range(repeats):  # interleaved: each round times every engine once, in turn
                for title, run in engines.items():
                    if title.startswith("nnlab"):
                        best[title] = min(best[title], timed(run))
                    else:
                        best[title] = min(best[title], run().get("seconds", float("inf")))
            rate = {t: case.seeds * case.n * steps[t] / best[t] for t in engines}
            rate.setdefault("nnlab sgd", rate["nnlab"])
            lay = layout(case.sizes, case.batch)
            rows.append(table_row(name, opt, case, lay, rate, variants, peak, diverged))
            elapsed = time.perf_counter() - started
            note = f"{epochs} epochs; {elapsed:.0f} s into the configuration; prepared: {', '.join(prepared)}"
            print(f"# {' '.join(rows[-1])} ({note})", file=sys.stderr, flush=True)
    return rows


def table_row(name, opt, case, lay, rate, variants, peak, diverged) -> list[str]:
    """config, optimizer, layout, nnlab, / sgd, best JAX, best PyTorch, x best peer, x JAX, GFLOP/s,
    % peak; ``rate`` by engine title, ``variants`` by peer title (PyTorch's implementation shown)."""

    def best_of(kind: str) -> tuple[float, str]:
        found = [
            (r, ("1t" if t.endswith("thread") else "def") + (f", {variants[t]}" if kind == "PyTorch" else ""))
            for t, r in rate.items()
            if t.startswith(kind) and np.isfinite(r)
        ]
        return max(found) if found else (0.0, "")

    ours = rate["nnlab"]
    jax_best, torch_best = best_of("JAX"), best_of("PyTorch")
    peer = max(jax_best[0], torch_best[0])
    gflops = ours * 6 * case.n_params / 1e9
    return [
        name,
        opt,
        lay,
        f"{ours:,.0f}" + (f" ({diverged} div.)" if diverged else ""),
        f"{ours / rate['nnlab sgd']:.2f}",
        f"{jax_best[0]:,.0f} ({jax_best[1]})" if jax_best[0] else "-",
        f"{torch_best[0]:,.0f} ({torch_best[1]})" if torch_best[0] else "-",
        f"{ours / peer:.2f}" if peer else "-",
        f"{ours / jax_best[0]:.2f}" if jax_best[0] else "-",
        f"{gflops:.2f}",
        f"{100 * gflops / peak:.0f}%",
    ]


TABLE_HEADER = [
    "config",
    "optimizer",
    "layout",
    "nnlab",
    "/ sgd",
    "best JAX",
    "best PyTorch",
    "x best peer",
    "x JAX",
    "GFLOP/s",
    "% peak",
]


def print_table(header: list[str], rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---"] * 3 + ["--:"] * (len(header) - 3)) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
        for row in rows:
            print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def summary(rows: list[list[str]], optimizers: list[str]) -> None:
    """Per optimizer: the least ratio to the best peer and to JAX over the configurations, the range
    of nnlab's rate over SGD's, and GFLOP/s with % of the peak at DIG1024 (W1024 b16)."""
    print("\n| optimizer | least x best peer | least x JAX | nnlab / sgd | DIG1024 GFLOP/s (% peak) |")
    print("|---|--:|--:|--:|--:|")
    for opt in optimizers:
        mine = [r for r in rows if r[1] == opt]

        def least(column: int, mine=mine) -> str:
            values = [(float(r[column]), r[0]) for r in mine if r[column] != "-"]
            return f"{min(values)[0]:.2f} ({min(values)[1]})" if values else "-"

        ratios = [float(r[4]) for r in mine if r[4] != "-"]
        span = f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "-"
        wide = [f"{r[9]} ({r[10]})" for r in mine if r[0] == "DIG1024"]
        print(f"| {opt} | {least(7)} | {least(8)} | {span} | {wide[0] if wide else '-'} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    ap.add_argument(
        "--optimizers", default=",".join(OPTIMIZER_LR), help=f"comma-separated, of: {', '.join(OPTIMIZER_LR)}"
    )
    ap.add_argument("--repeats", type=int, default=2, help="interleaved rounds (best of)")
    ap.add_argument("--seconds", type=float, default=0.5, help="about how long nnlab's SGD run takes")
    ap.add_argument("--no-jax", action="store_true", help="skip JAX")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    ap.add_argument("--no-peers", action="store_true", help="nnlab alone, each optimizer's rate over sgd's")
    ap.add_argument("--check", action="store_true", help="peers' final parameters against nnlab's")
    ap.add_argument("--markdown", action="store_true", help="print the table in markdown")
    ap.add_argument("--crossover", action="store_true", help="time both layouts over a grid of shapes")
    ap.add_argument("--worker", choices=["jax", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.crossover:
        crossover(args.repeats)
        return 0
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    if args.no_peers and args.configs == ap.get_default("configs"):
        names = REFERENCE_GRID
    unknown = [c for c in names if c not in CASES]
    if unknown:
        print(f"--configs: unknown {unknown}; choose from {', '.join(CASES)}", file=sys.stderr)
        return 2
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    if not optimizers or any(o not in OPTIMIZER_LR for o in optimizers):
        print(f"--optimizers: choose from {', '.join(OPTIMIZER_LR)}", file=sys.stderr)
        return 2
    import numba

    started = time.perf_counter()
    load = os.getloadavg()
    print(
        f"# {cpu_kind()}; {os.cpu_count()} cores; python {platform.python_version()}, numpy "
        f"{np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads); load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    if args.no_peers:
        optimizer_rates(names, optimizers, args.repeats, args.seconds)
        print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0
    kinds = ([] if args.no_jax else ["jax"]) + ([] if args.no_torch else ["torch"])
    if args.check:
        peers = [Peer(kind, "default") for kind in kinds]
        try:
            return 1 if check(peers) else 0
        finally:
            for peer in peers:
                peer.close()
    one, peak = machine_peak()
    print(f"# float64 matmul peak: {one:.1f} GFLOP/s on one core, {peak:.1f} GFLOP/s on {os.cpu_count()}")
    print(
        f"# {args.repeats} interleaved rounds, best of; nnlab's SGD run about {args.seconds:g} s; "
        "lr " + ", ".join(f"{o} {OPTIMIZER_LR[o]:g}" for o in optimizers)
    )
    peers = [Peer(kind, threads) for kind in kinds for threads in ("1", "default")]
    try:
        rows = peer_rates(names, optimizers, peers, args.repeats, args.seconds, peak)
        versions = ", ".join(f"{p.title} {p.version}" for p in peers)
    finally:
        for peer in peers:
            peer.close()
    print(f"# {versions}; (1t) one thread, (def) default threads; x: nnlab's rate over the peer's")
    print_table(TABLE_HEADER, rows, args.markdown)
    summary(rows, optimizers)
    elapsed = time.perf_counter() - started
    print(
        f"# {elapsed / 60:.1f} minutes; load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
