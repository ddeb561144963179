"""Benchmark of the training engine: replica-sample-steps per second.

Reference workload: n = 256 points in 2-D, tanh hidden and tanh output, loss half_squared, per-sample
SGD with lr 0.05, 20 epochs, 64 seeds per configuration, float64; configurations (hidden layers x
width) in {1, 3} x {4, 32, 128}. Rate = 64 * 256 * 20 / seconds of one `train` call, steady state
(after a warm-up call), best of --repeats.

Every engine does the same job as `nnlab.train`: each replica follows its own shuffled order, and the
full-data loss is computed before training and after every epoch; "jax-sgd" is JAX doing the SGD
steps alone (no loss curve), the stricter comparison. Printed in one run: nnlab's rate, the numpy
reference path's rate, and JAX's, PyTorch's and scikit-learn's when installed (the `bench` extra),
each with nnlab's ratio to it. JAX and PyTorch run on one thread (vmap over seeds, jit, lax.scan over
samples for JAX; a batched per-sample loop for PyTorch); scikit-learn trains one MLPRegressor per
seed with its own SGD (no replica axis), as a familiar point of comparison. The slow baselines
(numpy reference, PyTorch, scikit-learn; JAX on the largest network) time fewer epochs, since their
rate is per step.

    python scripts/bench_engine.py [--configs D1W4,D3W128] [--repeats 3] [--no-others]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

# One thread for the baselines' BLAS / XLA (set before they are imported).
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import nnlab  # noqa: E402
from nnlab.sgd import shuffled_orders  # noqa: E402

N, D, EPOCHS, R, LR = 256, 2, 20, 64, 0.05
CONFIGS = {f"D{depth}W{width}": (depth, width) for depth in (1, 3) for width in (4, 32, 128)}
JAX_ISSUE = {  # measured by the issue's author with JAX 0.10 on this machine, for reference
    "D1W4": 8.35e6,
    "D1W32": 3.42e6,
    "D1W128": 1.15e6,
    "D3W4": 4.04e6,
    "D3W32": 416e3,
    "D3W128": 7.7e3,
}


def workload(depth: int, width: int):
    rng = np.random.default_rng(12345)
    X = rng.uniform(-1.0, 1.0, size=(N, D))
    Y = 0.8 * np.tanh(3.0 * X[:, :1] * X[:, 1:])  # a smooth target inside tanh's range
    sizes = [D] + [width] * depth + [1]
    net = nnlab.init_network(sizes, seeds=range(R))
    order = shuffled_orders(range(R), EPOCHS, N)
    return net, X, Y, order


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up: compilation, caches
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def rate_nnlab(net, X, Y, order, repeats):
    return R * N * EPOCHS / best_time(lambda: nnlab.train(net, X, Y, lr=LR, epochs=EPOCHS), repeats)


def rate_numpy(net, X, Y, order, repeats):
    # The reference is slow at large widths: time fewer epochs (the rate is per step).
    epochs = 2
    fn = lambda: nnlab.train(net, X, Y, lr=LR, epochs=epochs, order=order[:, :epochs], engine="numpy")  # noqa: E731
    return R * N * epochs / best_time(fn, max(1, repeats - 1))


def baseline_epochs(net) -> int:
    """Epochs the slow baselines time (their rate is per step): fewer on the largest networks."""
    return EPOCHS if net.n_params < 10_000 else 4


def rate_jax(net, X, Y, order, repeats, with_curve=True):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    L = len(net.weights)

    def forward(params, x):
        f = x
        for W, b in params:
            f = jnp.tanh(f @ W + b)
        return f

    def sample_loss(params, x, y):
        return 0.5 * jnp.sum((y - forward(params, x)) ** 2)

    grad = jax.grad(sample_loss)

    def epoch(params, idx, Xj, Yj):
        def step(p, i):
            g = grad(p, Xj[i], Yj[i])
            return jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g), None

        params, _ = jax.lax.scan(step, params, idx)
        full = jnp.mean(0.5 * jnp.sum((Yj - forward(params, Xj)) ** 2, axis=-1))
        return params, full

    run_epoch = jax.jit(jax.vmap(epoch, in_axes=(0, 0, None, None)))

    def full_loss(p, Xj, Yj):
        return jnp.mean(0.5 * jnp.sum((Yj - forward(p, Xj)) ** 2, axis=-1))

    full0 = jax.jit(jax.vmap(full_loss, in_axes=(0, None, None)))
    params0 = [(jnp.asarray(net.weights[i]), jnp.asarray(net.biases[i])) for i in range(L)]
    Xj, Yj, oj = jnp.asarray(X), jnp.asarray(Y), jnp.asarray(order)

    def epoch_sgd(params, idx, Xj, Yj):
        def step(p, i):
            g = grad(p, Xj[i], Yj[i])
            return jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g), None

        return jax.lax.scan(step, params, idx)[0]

    run_sgd = jax.jit(jax.vmap(epoch_sgd, in_axes=(0, 0, None, None)))

    epochs = baseline_epochs(net)

    def fn():
        p = params0
        if not with_curve:  # SGD alone, as in the issue's measurement
            for e in range(epochs):
                p = run_sgd(p, oj[:, e], Xj, Yj)
            jax.block_until_ready(p)
            return
        curve = [full0(p, Xj, Yj)]
        for e in range(epochs):
            p, full = run_epoch(p, oj[:, e], Xj, Yj)
            curve.append(full)
        jax.block_until_ready(curve)

    return R * N * epochs / best_time(fn, repeats), f"jax {jax.__version__}"


def rate_torch(net, X, Y, order, repeats):
    import torch

    torch.set_num_threads(1)
    Ws = [torch.tensor(W) for W in net.weights]
    bs = [torch.tensor(b) for b in net.biases]
    Xt, Yt, ot = torch.tensor(X), torch.tensor(Y), torch.tensor(order)
    epochs = 2

    def forward(Ws, bs, x):  # x (R, n, d)
        f = x
        for W, b in zip(Ws, bs, strict=True):
            f = torch.tanh(torch.baddbmm(b[:, None, :], f, W))
        return f

    def fn():
        W = [w.clone().requires_grad_(True) for w in Ws]
        b = [v.clone().requires_grad_(True) for v in bs]
        for e in range(epochs):
            for t in range(N):
                i = ot[:, e, t]
                x, y = Xt[i][:, None, :], Yt[i][:, None, :]
                loss = 0.5 * ((y - forward(W, b, x)) ** 2).sum()  # sum over replicas: separable
                grads = torch.autograd.grad(loss, W + b)
                with torch.no_grad():
                    for p, g in zip(W + b, grads, strict=True):
                        p -= LR * g
            with torch.no_grad():
                forward(W, b, Xt[None].expand(R, -1, -1))

    return R * N * epochs / best_time(fn, max(1, repeats - 1)), f"torch {torch.__version__}"


def rate_sklearn(net, X, Y, order, repeats):
    import sklearn
    from sklearn.neural_network import MLPRegressor

    depth, width = len(net.weights) - 1, net.weights[0].shape[2]
    seeds = 8 if net.n_params < 10_000 else 2  # one model per seed; the rate is per replica-sample-step
    epochs = baseline_epochs(net)

    def fn():
        for s in range(seeds):
            m = MLPRegressor(
                hidden_layer_sizes=(width,) * depth,
                activation="tanh",
                solver="sgd",
                batch_size=1,
                learning_rate_init=LR,
                momentum=0.0,
                alpha=0.0,
                max_iter=epochs,
                tol=0.0,
                n_iter_no_change=epochs + 1,
                shuffle=True,
                random_state=s,
            )
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m.fit(X, Y[:, 0])

    return seeds * N * epochs / best_time(fn, 1), f"scikit-learn {sklearn.__version__}"


def flops_per_step(net) -> float:
    return 6.0 * net.n_params


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, e.g. D1W4,D3W128")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-others", action="store_true", help="skip JAX, PyTorch and scikit-learn")
    ap.add_argument("--no-numpy", action="store_true", help="skip the numpy reference path")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        print(f"--configs: unknown {unknown}; choose from {', '.join(CONFIGS)}", file=sys.stderr)
        return 2
    import numba

    print(
        f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__} "
        f"({numba.get_num_threads()} threads)"
    )
    jax_sgd = lambda *a: rate_jax(*a, with_curve=False)  # noqa: E731
    others = (
        []
        if args.no_others
        else [("jax", rate_jax), ("jax-sgd", jax_sgd), ("torch", rate_torch), ("sklearn", rate_sklearn)]
    )
    header = f"{'config':7} {'nnlab steps/s':>14} {'GFLOP/s':>8}"
    if not args.no_numpy:
        header += f" {'numpy ref':>11} {'x ref':>6}"
    print(header + "".join(f" {name:>11} {'x ' + name:>9}" for name, _ in others))
    for name in names:
        depth, width = CONFIGS[name]
        net, X, Y, order = workload(depth, width)
        rate = rate_nnlab(net, X, Y, order, args.repeats)
        line = f"{name:7} {rate:14,.0f} {rate * flops_per_step(net) / 1e9:8.2f}"
        if not args.no_numpy:
            ref = rate_numpy(net, X, Y, order, args.repeats)
            line += f" {ref:11,.0f} {rate / ref:6.1f}"
        for _, fn in others:
            try:
                other, _ = fn(net, X, Y, order, args.repeats)
                line += f" {other:11,.0f} {rate / other:9.2f}"
            except ImportError:
                line += f" {'-':>11} {'-':>9}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
