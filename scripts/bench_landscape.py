"""Benchmark of `nnlab landscape`: certify 200 end points of networks of up to ~1,000 parameters.

A teacher-student sweep (a 6-unit tanh teacher on 20-d Gaussian inputs, n = 256; students of one
hidden tanh layer of 6, 12, 24 and 46 units, 50 seeds each, per-sample SGD for 200 epochs at lr 0.05,
networks saved) gives 200 end points of 133 to 1,013 parameters. The sweep is trained once (not
timed); then `nnlab landscape` (polish, Hessian, classify, group into optima, barriers) is timed on
it from scratch with --jobs 1 and --jobs 2, and the kinds found are printed with the time per end
point of each kind (from --jobs 1). Goal: well under a minute on this 2-core machine.

    python scripts/bench_landscape.py [--seeds 50] [--epochs 200]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from nnlab import endpoints, sweep
from nnlab.experiment import validate


def experiment(seeds: int, epochs: int):
    return validate(
        {
            "name": "bench-landscape",
            "threshold": 1e-4,
            "save_networks": True,
            "task": {"kind": "teacher", "n": 256, "dim": 20, "teacher_width": 6, "orthonormal": True},
            "model": {"depth": 1, "width": [6, 12, 24, 46]},
            "train": {"lr": 0.05, "epochs": epochs, "seeds": seeds},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
