"""Benchmark of the sweep runner: a sweep of many small configurations.

Prints, measured in one run, the share of wall time spent inside training (goal >= 80%) with
--jobs 1 and --jobs 2, and the speed-up of --jobs 2 over --jobs 1 (goal >= 1.7x on 2 cores).
The share is the sum of the jobs' training seconds over (wall seconds x workers); with --jobs 1 the
engine itself uses both cores.

    python scripts/bench_sweep.py [--epochs 200] [--seeds 64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from nnlab import sweep
from nnlab.sweep.experiment import validate


def experiment(epochs: int, seeds: int):
    return validate(
        {
            "name": "bench-sweep",
            "threshold": 1e-3,
            "task": {"kind": "spirals", "n": 100, "noise": 0.05},
            "model": {"depth": [1, 2], "width": [2, 4, 6, 8, 12, 16]},
            "train": {"lr": [0.02, 0.05, 0.1], "epochs": epochs, "seeds": seeds},
        }
    )


def timed(exp, jobs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sweep.run(exp, Path(tmp) / "out", jobs=jobs)
        wall = time.perf_counter() - start
        runs = pd.read_parquet(Path(tmp) / "out" / "runs.parquet")
    return wall, float(runs["seconds"].sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=64)
    args = ap.parse_args(argv)
    exp = experiment(args.epochs, args.seeds)
    n_runs = len(exp.configs()) * len(exp.seeds)
    # Warm-up: this process imports nnlab and loads the compiled kernels, and joblib starts the two
    # loky workers (which do the same), so both timings below see warm processes; joblib reuses the
    # workers across sweeps. The start-up paid once by a cold `nnlab run --jobs 2` is printed apart.
    tiny = experiment(2, 2)
    cold1, _ = timed(tiny, 1)
    cold2, _ = timed(tiny, 2)
    warm2, _ = timed(tiny, 2)
    wall1, train1 = timed(exp, 1)
    wall2, train2 = timed(exp, 2)
    n_configs = len(exp.configs())
    print(f"# {n_configs} configurations x {len(exp.seeds)} seeds = {n_runs} runs, {args.epochs} epochs")
    print(f"--jobs 1: {wall1:6.2f} s wall, {n_runs / wall1:7.1f} runs/s, training share {train1 / wall1:.0%}")
    share2 = train2 / (2 * wall2)
    print(f"--jobs 2: {wall2:6.2f} s wall, {n_runs / wall2:7.1f} runs/s, training share {share2:.0%}")
    print(f"speed-up of --jobs 2 over --jobs 1: {wall1 / wall2:.2f}x")
    print(f"(start-up of the two workers, paid once per sweep: {cold2 - warm2:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
