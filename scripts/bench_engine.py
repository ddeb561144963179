"""Benchmark of the training engine against JAX and PyTorch: replica-sample-steps per second.

Configurations (float64, tanh hidden and output layers, loss half_squared, R seeds trained together):

- the engine issue's shapes: n = 1792 digits (scikit-learn's 8x8 digits, the first 1792, pixels / 16,
  one-hot targets +-0.9; random data of the same shapes without scikit-learn), 64 inputs, 10 outputs,
  one hidden layer of 64, 256 or 1024 units with batch 16, or two of 256 with batch 64, 32 seeds,
  lr 0.05 ("DIG64", "DIG256", "DIG1024", "DIG2x256"); 2 inputs, 8 hidden layers of 16, per-sample
  SGD, 64 seeds ("DEEP8x16"); XOR's 4 points, width 2, per-sample SGD, 4096 seeds ("XOR");
- the reference grid: n = 256 points in 2-D, 1 output, per-sample SGD with lr 0.05, 64 seeds, hidden
  layers x width in {1, 3} x {4, 32, 128} ("D1W4" ... "D3W128").

Rate = R * n * epochs / seconds of one run, steady state (after a warm-up run that compiles), best of
--repeats; the epochs are chosen so that a run takes about a second or more (fixed costs, such as the
loss before training, amortize alike for every engine). Every engine does the same job as
`nnlab.train`: each replica follows its own shuffled order (the same orders, drawn before timing, for
every engine: `train(..., order=...)`; drawing them inside `train` costs nnlab up to 10% at the
smallest networks), minibatch steps on the batch-mean loss, the full-data loss
before training and after every epoch, and the full-data gradient norm at the end (JAX: the faster of
two ways to write the loss pass). "sgd only" is JAX doing the SGD steps alone (no loss curve, no
gradient norm), the stricter comparison. The last two columns divide nnlab's rate by the best JAX
rate (of one thread and default threads) on the same job, and on SGD alone.

The baselines run in their own processes (`--worker`), so that each gets its own thread setting: JAX
(vmap over replicas, jit, lax.scan over epochs and batches) with one XLA thread and with its default
threads, PyTorch (replicas stacked, baddbmm, autograd) with one thread and with its default threads.
nnlab uses numba's threads (one per core). GFLOP/s counts 6 x parameters per replica-sample step; the
peak is numpy's float64 matmul (4096 x 4096, OpenBLAS) on one and on all cores, measured in the same
run. JAX times as many epochs as nnlab; PyTorch, much slower, about a second's worth (its rate is per
step).

    python scripts/bench_engine.py [--configs DIG1024,D1W32] [--repeats 3] [--no-jax] [--no-torch]
                                   [--markdown]
    python scripts/bench_engine.py --crossover
    python scripts/bench_engine.py --optimizers sgd,momentum,nesterov,adam,adamw [--configs ...]

--optimizers times nnlab alone with each optimizer on the same job (default configs: the reference
grid), in interleaved rounds (each round runs every optimizer once; best of --repeats rounds), and
prints each one's rate over SGD's. Adam and AdamW take lr 0.001 (lr 0.05 is SGD's), so that no run
diverges (a diverged replica costs the replica layout nothing).

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
import time
from dataclasses import dataclass

import numpy as np

LR = 0.05
# The learning rate of each optimizer in --optimizers (the adaptive ones at Adam's usual step size).
OPTIMIZER_LR = {"sgd": LR, "momentum": LR, "nesterov": LR, "adam": 1e-3, "adamw": 1e-3}
REFERENCE_GRID = ["D1W4", "D1W32", "D1W128", "D3W4", "D3W32", "D3W128"]


@dataclass(frozen=True)
class Case:
    """One benchmark configuration: sizes [d, h_1, ..., out], samples, batch, seeds, epochs."""

    sizes: tuple[int, ...]
    n: int
    batch: int
    seeds: int
    epochs: int  # what nnlab times; the baselines may time fewer (baseline_epochs)
    data: str  # "digits", "plane" (uniform in [-1, 1]^2) or "xor"

    @property
    def n_params(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=False))


CASES = {
    "DIG64": Case((64, 64, 10), 1792, 16, 32, 10, "digits"),
    "DIG256": Case((64, 256, 10), 1792, 16, 32, 6, "digits"),
    "DIG1024": Case((64, 1024, 10), 1792, 16, 32, 8, "digits"),
    "DIG2x256": Case((64, 256, 256, 10), 1792, 64, 32, 4, "digits"),
    "DEEP8x16": Case((2, *[16] * 8, 1), 256, 1, 64, 40, "plane"),
    "XOR": Case((2, 2, 1), 4, 1, 4096, 1000, "xor"),
    **{
        f"D{depth}W{width}": Case((2, *[width] * depth, 1), 256, 1, 64, epochs, "plane")
        for depth, width, epochs in [
            (1, 4, 200),
            (1, 32, 100),
            (1, 128, 40),
            (3, 4, 200),
            (3, 32, 40),
            (3, 128, 4),
        ]
    },
}


def workload(case: Case):
    """X (n, d), Y (n, out), the initial network's arrays and the orders (R, epochs, n)."""
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
    order = shuffled_orders(range(case.seeds), case.epochs, case.n)
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


# ---------------------------------------------------------------------------------------------------
# nnlab (in this process).


def rate_nnlab(case: Case, repeats: int) -> tuple[float, str, int]:
    import nnlab
    from nnlab.sgd import layout

    net, X, Y, order = workload(case)
    result = {}

    def run():
        result["r"] = nnlab.train(net, X, Y, lr=LR, epochs=case.epochs, batch_size=case.batch, order=order)

    seconds = best_time(run, repeats)
    diverged = int(result["r"].diverged.sum())
    return case.seeds * case.n * case.epochs / seconds, layout(case.sizes, case.batch), diverged


def optimizer_rates(names: list[str], optimizers: list[str], repeats: int) -> None:
    """nnlab's rate with each optimizer (weight decay 0.01 for adamw), interleaved rounds, best of
    ``repeats``; prints a table of rates and ratios to SGD."""
    import nnlab
    from nnlab.sgd import layout

    print(f"# interleaved rounds: {repeats}; lr {', '.join(f'{o} {OPTIMIZER_LR[o]:g}' for o in optimizers)}")
    header = [
        "config",
        "layout",
        *(f"{o} steps/s" for o in optimizers),
        *(f"{o}/sgd" for o in optimizers[1:]),
    ]
    rows = []
    for name in names:
        case = CASES[name]
        net, X, Y, order = workload(case)
        runs, best, diverged = {}, {}, {}
        for opt in optimizers:
            runs[opt] = functools.partial(
                nnlab.train,
                net,
                X,
                Y,
                lr=OPTIMIZER_LR[opt],
                epochs=case.epochs,
                batch_size=case.batch,
                order=order,
                optimizer=opt,
                weight_decay=0.01 if opt == "adamw" else 0.0,
            )
            diverged[opt] = int(runs[opt]().diverged.sum())  # warm-up (compiles on first use)
            best[opt] = float("inf")
        for _ in range(repeats):
            for opt in optimizers:
                t = time.perf_counter()
                runs[opt]()
                best[opt] = min(best[opt], time.perf_counter() - t)
        rate = {o: case.seeds * case.n * case.epochs / best[o] for o in optimizers}
        flag = {o: f" ({diverged[o]} div.)" if diverged[o] else "" for o in optimizers}
        row = [name, layout(case.sizes, case.batch), *(f"{rate[o]:,.0f}{flag[o]}" for o in optimizers)]
        row += [f"{rate[o] / rate[optimizers[0]]:.2f}" for o in optimizers[1:]]
        rows.append(row)
        print("# " + " ".join(row), file=sys.stderr, flush=True)
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---", "---"] + ["--:"] * (len(header) - 2)) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


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


# ---------------------------------------------------------------------------------------------------
# Baselines (each in a worker process with its own thread setting).


def jax_rates(case: Case, repeats: int) -> dict[str, float]:
    """JAX doing the same job as train, and SGD alone; jit + vmap over replicas + scan."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    net, X, Y, order = workload(case)
    B, n = case.batch, case.n
    full_batches, rest = divmod(n, B)

    def forward(params, x):
        f = x
        for W, b in params:
            f = jnp.tanh(f @ W + b)
        return f

    def batch_loss(params, x, y):  # the batch-mean loss, x (m, d)
        return jnp.mean(0.5 * jnp.sum((y - forward(params, x)) ** 2, axis=-1))

    grad = jax.grad(batch_loss)

    def step(params, idx):
        g = grad(params, Xj[idx], Yj[idx])
        return jax.tree_util.tree_map(lambda a, b: a - LR * b, params, g), None

    def epoch_sgd(params, idx):
        params, _ = jax.lax.scan(step, params, idx[: full_batches * B].reshape(full_batches, B))
        if rest:
            params, _ = step(params, idx[full_batches * B :])
        return params

    def loss_by_scan(params, X, Y):  # the full-data loss sample by sample, as the SGD steps see them
        def add(total, i):
            return total + 0.5 * jnp.sum((Y[i] - forward(params, X[i])) ** 2), None

        return jax.lax.scan(add, 0.0, jnp.arange(X.shape[0]))[0] / X.shape[0]

    def same_job(params, orders, full_loss):  # one replica: orders (E, n)
        first = full_loss(params, Xj, Yj)

        def epoch(p, idx):
            p = epoch_sgd(p, idx)
            return p, full_loss(p, Xj, Yj)

        params, curve = jax.lax.scan(epoch, params, orders)
        g = grad(params, Xj, Yj)
        norm = jnp.sqrt(sum(jnp.sum(a * a) for a in jax.tree_util.tree_leaves(g)))
        return params, jnp.concatenate([first[None], curve]), norm

    def sgd_only(params, orders):
        return jax.lax.scan(lambda p, idx: (epoch_sgd(p, idx), None), params, orders)[0]

    Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(net.weights, net.biases, strict=True)]
    epochs = case.epochs  # as many as nnlab: the first loss and the last gradient amortize alike
    oj = jnp.asarray(order[:, :epochs])
    # The full-data loss two ways: one batched forward pass (faster for wide layers), or a scan over
    # the samples (faster for the smallest networks); the faster counts.
    variants = {
        "same": jax.jit(jax.vmap(lambda p, o: same_job(p, o, batch_loss))),
        "sgd": jax.jit(jax.vmap(sgd_only)),
    }
    if B == 1:  # (with minibatches the batched pass always wins)
        variants["same_scan"] = jax.jit(jax.vmap(lambda p, o: same_job(p, o, loss_by_scan)))
    out = {}
    for name, fn in variants.items():
        seconds = best_time(lambda fn=fn: jax.block_until_ready(fn(params, oj)), repeats)
        out[name] = case.seeds * n * epochs / seconds
    out["same"] = max(out["same"], out.pop("same_scan", 0.0))
    out["version"] = jax.__version__
    return out


def torch_rates(case: Case, repeats: int) -> dict[str, float]:
    """PyTorch doing the same job as train: replicas stacked (R, ...), baddbmm, autograd."""
    import torch

    net, X, Y, order = workload(case)
    R, B, n = case.seeds, case.batch, case.n
    Ws = [torch.tensor(W) for W in net.weights]
    bs = [torch.tensor(b) for b in net.biases]
    Xt, Yt, ot = torch.tensor(X), torch.tensor(Y), torch.tensor(order)

    def forward(W, b, x):  # x (R, m, d)
        f = x
        for Wi, bi in zip(W, b, strict=True):
            f = torch.tanh(torch.baddbmm(bi[:, None, :], f, Wi))
        return f

    def full_loss(W, b):
        with torch.no_grad():
            f = forward(W, b, Xt[None].expand(R, -1, -1))
            return (0.5 * ((Yt[None] - f) ** 2).sum(-1)).mean(-1)

    def run(epochs):
        W = [w.clone().requires_grad_(True) for w in Ws]
        b = [v.clone().requires_grad_(True) for v in bs]
        curve = [full_loss(W, b)]
        for e in range(epochs):
            for start in range(0, n, B):
                i = ot[:, e, start : start + B]  # (R, m)
                x, y = Xt[i], Yt[i]
                # Sum over replicas of each replica's batch-mean loss: the replicas are separable.
                loss = (0.5 * ((y - forward(W, b, x)) ** 2).sum(-1)).mean(-1).sum()
                grads = torch.autograd.grad(loss, W + b)
                with torch.no_grad():
                    for p, g in zip(W + b, grads, strict=True):
                        p -= LR * g
            curve.append(full_loss(W, b))
        f = forward(W, b, Xt[None].expand(R, -1, -1))
        loss = (0.5 * ((Yt[None] - f) ** 2).sum(-1)).mean(-1).sum()
        grads = torch.autograd.grad(loss, W + b)
        return torch.sqrt(sum((g * g).flatten(1).sum(1) for g in grads)), curve

    epochs = calibrated_epochs(case, lambda: run(1))
    seconds = best_time(lambda: run(epochs), max(1, repeats - 1))
    return {"same": R * n * epochs / seconds, "version": torch.__version__}


def worker(args) -> int:
    """Print one JSON line per configuration: the baseline's rates."""
    for name in args.configs.split(","):
        case = CASES[name]
        fn = jax_rates if args.worker == "jax" else torch_rates
        try:
            rates = fn(case, args.repeats)
        except Exception as err:  # a baseline that fails is reported, not fatal
            rates = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps({"config": name, **rates}), flush=True)
    return 0


def run_worker(kind: str, threads: str, names: list[str], repeats: int) -> dict[str, dict]:
    """Run a baseline worker process; threads "1" or "default"."""
    env = dict(os.environ)
    if kind == "jax" and threads == "1":
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    if kind == "torch" and threads == "1":
        env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, __file__, "--worker", kind, "--configs", ",".join(names)]
    cmd += ["--repeats", str(repeats)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            out[row["config"]] = row
    if proc.returncode != 0 and not out:
        print(
            f"# {kind} ({threads} threads) failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr
        )
    return out


def _cpu_name() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-jax", action="store_true", help="skip JAX")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    ap.add_argument("--markdown", action="store_true", help="print the table in markdown")
    ap.add_argument("--crossover", action="store_true", help="time both layouts over a grid of shapes")
    ap.add_argument(
        "--optimizers", help="nnlab only: comma-separated optimizers (the first, sgd, is the baseline)"
    )
    ap.add_argument("--worker", choices=["jax", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.crossover:
        crossover(args.repeats)
        return 0
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    if args.optimizers and args.configs == ap.get_default("configs"):
        names = REFERENCE_GRID
    unknown = [c for c in names if c not in CASES]
    if unknown:
        print(f"--configs: unknown {unknown}; choose from {', '.join(CASES)}", file=sys.stderr)
        return 2
    import numba

    if args.optimizers:
        optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
        if not optimizers or any(o not in OPTIMIZER_LR for o in optimizers):
            print(f"--optimizers: choose from {', '.join(OPTIMIZER_LR)}", file=sys.stderr)
            return 2
        print(
            f"# {_cpu_name()}, {os.cpu_count()} cores, numba {numba.__version__} "
            f"({numba.get_num_threads()} threads); load average {os.getloadavg()[0]:.2f}"
        )
        optimizer_rates(names, optimizers, args.repeats)
        print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0

    one, peak = machine_peak()
    load = os.getloadavg()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, numpy {np.__version__}, numba {numba.__version__} "
        f"({numba.get_num_threads()} threads); load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"# float64 matmul peak: {one:.1f} GFLOP/s on one core, {peak:.1f} GFLOP/s on {os.cpu_count()}")
    nn = {}
    for name in names:
        nn[name] = rate_nnlab(CASES[name], args.repeats)
        print(
            f"# nnlab {name}: {nn[name][0]:,.0f} steps/s ({nn[name][1]} layout)", file=sys.stderr, flush=True
        )
    base = {}
    kinds = ([] if args.no_jax else ["jax"]) + ([] if args.no_torch else ["torch"])
    for kind in kinds:
        for threads in ("1", "default"):
            base[kind, threads] = run_worker(kind, threads, names, args.repeats)
            versions = {row.get("version") for row in base[kind, threads].values()} - {None}
            print(f"# {kind} {', '.join(versions)} ({threads} threads) done", file=sys.stderr, flush=True)
    columns = [
        ("jax", "1", "same"),
        ("jax", "default", "same"),
        ("jax", "1", "sgd"),
        ("jax", "default", "sgd"),
    ]
    columns = [c for c in columns if c[0] in kinds] + [
        ("torch", t, "same") for t in ("1", "default") if "torch" in kinds
    ]
    titles = {
        ("jax", "1", "same"): "JAX 1 thread",
        ("jax", "default", "same"): "JAX default",
        ("jax", "1", "sgd"): "JAX sgd-only 1t",
        ("jax", "default", "sgd"): "JAX sgd-only def",
        ("torch", "1", "same"): "PyTorch 1 thread",
        ("torch", "default", "same"): "PyTorch default",
    }
    header = ["config", "layout", "nnlab", "GFLOP/s", "% peak"]
    for c in columns:
        header += [titles[c], "x"]
    header += ["x JAX (same job)", "x JAX (sgd only)"]
    rows = []
    for name in names:
        rate, lay, diverged = nn[name]
        gflops = rate * 6 * CASES[name].n_params / 1e9
        row = [name + (f" ({diverged} div.)" if diverged else ""), lay, f"{rate:,.0f}", f"{gflops:.2f}"]
        row.append(f"{100 * gflops / peak:.0f}%")
        best = {"same": 0.0, "sgd": 0.0}
        for kind, threads, what in columns:
            other = base[kind, threads].get(name, {}).get(what)
            if other:
                row += [f"{other:,.0f}", f"{rate / other:.2f}"]
                if kind == "jax":
                    best[what] = max(best[what], other)
            else:
                row += ["-", "-"]
        row += [f"{rate / best[w]:.2f}" if best[w] else "-" for w in ("same", "sgd")]
        rows.append(row)
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(["---", "---"] + ["--:"] * (len(header) - 2)) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
        for row in rows:
            print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
