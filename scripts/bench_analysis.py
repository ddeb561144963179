"""Benchmark of the analysis against the training: a large XOR sweep, then `nnlab summary` and
`nnlab figures` on its folder, each in its own process.

Prints the wall time of training (`nnlab run`, its merge included) and, for summary and figures,
the wall time, its ratio to the training time and the peak memory (the process's maximum resident
set). Goals on a 20,000-run sweep: summary <= 0.25x the training time and <= 400 MB; figures <= 1x
and <= 700 MB.

    python scripts/bench_analysis.py [--seeds 1000] [--epochs 300] [--jobs 2] [--keep DIR]
                                     [--code DIR] [--skip-figures]

The sweep is 4 widths x 5 learning rates x SEEDS seeds (1,000: 20,000 runs; 5,000: 10^5). ``--code``
runs summary and figures with another checkout's nnlab (PYTHONPATH=DIR) on the same folder, to
compare before and after; ``--keep`` trains into DIR (kept, and reused when it holds the sweep).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOML = """name = "bench-analysis"
threshold = 1e-3
[task]
kind = "xor"
[model]
width = [2, 3, 4, 8]
[train]
lr = [0.03, 0.1, 0.3, 1.0, 3.0]
epochs = {epochs}
seeds = {seeds}
"""


def measured(args: list[str], code: Path) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of ``python -m nnlab ARGS`` run with nnlab from ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nnlab", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status:
        sys.exit(f"nnlab {' '.join(args)} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # (kB on Linux)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="train into this folder (kept; reused when it holds the sweep)")
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--skip-figures", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nnlab-bench-") as tmp:
        out = args.keep or Path(tmp) / "out"
        toml = Path(tmp) / "bench.toml"
        toml.write_text(TOML.format(epochs=args.epochs, seeds=args.seeds))
        runs = 20 * args.seeds
        train, train_mb = measured(
            ["run", str(toml), "--out", str(out), "--jobs", str(args.jobs), "--quiet"], args.code
        )
        print(f"{runs:,} runs x {args.epochs} epochs, --jobs {args.jobs}: training {train:.1f} s (and merge)")
        print(f"folder: {sum(p.stat().st_size for p in out.rglob('*') if p.is_file()) / 2**20:.0f} MB")
        steps = [("summary", ["summary", str(out), "--format", "csv"], 0.25, 400)]
        if not args.skip_figures:
            steps.append(("figures", ["figures", str(out), "--format", "png"], 1.0, 700))
        for name, command, goal_ratio, goal_mb in steps:
            wall, mb = measured(command, args.code)
            print(
                f"{name:8s} {wall:7.1f} s = {wall / train:5.2f}x training (goal <= {goal_ratio}x), "
                f"peak {mb:6.0f} MB (goal <= {goal_mb})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
