"""Benchmark of `nnlab landscape`: certify 200 end points of networks of up to ~1,000 parameters.

A teacher-student sweep (a 6-unit tanh teacher on 20-d Gaussian inputs, n = 256; students of one
hidden tanh layer of 6, 12, 24 and 46 units, 50 seeds each, per-sample SGD for 200 epochs at lr 0.05,
networks saved) gives 200 end points of 133 to 1,013 parameters. The sweep is trained once (not
timed); then `nnlab landscape` (polish, Hessian, classify, group into optima, barriers) is timed on
it from scratch with --jobs 1 and --jobs 2 (goal: well under a minute on this 2-core machine).

That is the study as it is: most end points solve the task (loss < 1e-4) and need no spectrum. The
worst case, where every end point is polished and gets its full Hessian spectrum, is timed too: the
same folder with a threshold of 1e-12 that nothing reaches, on the first ``--worst`` seeds of each
width, with --jobs 2, and the seconds per end point printed per width.

    python scripts/bench_landscape.py [--seeds 50] [--epochs 200] [--worst 10]
    python scripts/bench_landscape.py --sizes [--budget 2000]   # seconds per end point, 133 to 76,810
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from nnlab import sweep
from nnlab.sweep import endpoints
from nnlab.sweep.experiment import validate


def exp_dict(seeds: int, epochs: int) -> dict:
    return {
        "name": "bench-landscape",
        "threshold": 1e-4,
        "save_networks": True,
        "task": {"kind": "teacher", "n": 256, "dim": 20, "teacher_width": 6, "orthonormal": True},
        "model": {"depth": 1, "width": [6, 12, 24, 46]},
        "train": {"lr": 0.05, "epochs": epochs, "seeds": seeds},
    }


def experiment(seeds: int, epochs: int):
    return validate(exp_dict(seeds, epochs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--worst", type=int, default=10)
    parser.add_argument("--sizes", action="store_true", help="only the seconds-per-end-point table by size")
    parser.add_argument("--budget", type=int, default=2000, help="L-BFGS budget of the --sizes table")
    args = parser.parse_args()
    if args.sizes:
        sizes_table(budget=args.budget)
        return
    exp = experiment(args.seeds, args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        trained = Path(tmp) / "trained"
        start = time.perf_counter()
        sweep.run(exp, trained, jobs=2)
        runs = pd.read_parquet(trained / "runs.parquet")
        print(
            f"sweep: {len(runs)} end points, {runs['n_params'].min()}-{runs['n_params'].max()} parameters, "
            f"trained in {time.perf_counter() - start:.1f} s (not part of the benchmark)"
        )
        seconds = {}
        for jobs in (1, 2):
            folder = Path(tmp) / f"jobs{jobs}"
            shutil.copytree(trained, folder)
            start = time.perf_counter()
            summary = endpoints.landscape(folder, jobs=jobs)
            seconds[jobs] = time.perf_counter() - start
            print(
                f"nnlab landscape --jobs {jobs}: {seconds[jobs]:.1f} s for {summary['done']} end points "
                f"({seconds[jobs] / summary['done'] * 1e3:.0f} ms each); kinds {summary['kinds']}, "
                f"{summary['optima']} distinct optima"
            )
        table = pd.read_parquet(Path(tmp) / "jobs1" / "endpoints.parquet").merge(runs, on="run_id")
        print(table.groupby(["width", "kind"]).size().unstack(fill_value=0).to_string())
        print(f"speed-up of --jobs 2: {seconds[1] / seconds[2]:.2f}x")
        print(f"worst case: threshold 1e-12, the first {args.worst} seeds of each width, --jobs 2")
        worst = validate({**exp_dict(args.seeds, args.epochs), "threshold": 1e-12})
        for width in exp.model["width"]:
            folder = Path(tmp) / f"worst{width}"
            sub = validate(
                {
                    **exp_dict(args.worst, args.epochs),
                    "threshold": worst.threshold,
                    "model": {"depth": 1, "width": width},
                }
            )
            sweep.run(sub, folder, jobs=2)  # the same runs (a run depends only on its config and seed)
            start = time.perf_counter()
            summary = endpoints.landscape(folder, jobs=2)
            took = time.perf_counter() - start
            P = int(pd.read_parquet(folder / "runs.parquet")["n_params"].iloc[0])
            print(
                f"  width {width} ({P} parameters): {took:.1f} s for {summary['done']} end points, "
                f"{took / summary['done']:.2f} s each; kinds {summary['kinds']}"
            )


def sizes_table(epochs: int = 150, budget: int = 2000, widths=(25, 64, 256, 1000)) -> None:
    """Seconds of `certify` per end point against the parameter count: teacher-student students of
    width 6 and 46 (133 and 1,013 parameters, n = 256) and digits networks 64 -> h -> 10 (n = 1,438),
    one seed each, trained as the studies train them, certified at the study's threshold (as run) and
    at 1e-12, which nothing reaches (the worst case: polished until the budget of ``budget`` L-BFGS
    iterations or a decision). Wall seconds and this process's CPU seconds (certify runs on one BLAS
    thread, so on a shared machine the CPU seconds are the steadier number), as a markdown table."""
    import os

    from nnlab import init_network, tasks
    from nnlab.landscape import Options, certify
    from nnlab.sgd import train

    cases = []
    Xt, Yt = tasks.teacher(n=256, dim=20, teacher_width=6, orthonormal=True)
    for h in (6, 46):
        cases.append(("teacher", [20, h, 1], Xt, Yt, 1e-4, dict(lr=0.05, epochs=200, batch_size=1)))
    Xd, Yd = tasks.digits(target=0.9)
    Xd, Yd = Xd[:1438], Yd[:1438]
    for h in widths:
        cases.append(("digits", [64, h, 10], Xd, Yd, 0.05, dict(lr=0.1, epochs=epochs, batch_size=16)))
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    print("| task | parameters | threshold | wall s | CPU s | kind (reason) |")
    print("|---|--:|--:|--:|--:|---|")
    for name, sizes, X, Y, threshold, how in cases:
        trained = train(init_network(sizes, seeds=0), X, Y, **how).network
        for thr in (threshold, 1e-12):
            start, cpu = time.perf_counter(), time.process_time()
            c = certify(trained, X, Y, threshold=thr, options=Options(lbfgs_iters=budget))
            took, cpu = time.perf_counter() - start, time.process_time() - cpu
            print(
                f"| {name} | {trained.n_params:,} | {thr:.0e} | {took:.2f} | {cpu:.2f} | "
                f"{c.kind[0]} ({c.reason[0]}) |".replace("|grad|", "\\|grad\\|"),
                flush=True,
            )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
