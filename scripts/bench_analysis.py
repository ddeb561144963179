"""Benchmark of the analysis against the training: large XOR sweeps, then `nnlab summary` and
`nnlab figures` on each folder, each in its own process.

Prints, per sweep size, the wall time of training (`nnlab run`, its merge included), the folder's
size (tables and parts/), and for summary and figures the wall time, its ratio to the training time
and the peak memory (the process's maximum resident set); then the same as a markdown table, with
the CPU and the load average (the machine may be shared). Goals on a 20,000-run sweep: summary <=
0.25x the training time and <= 400 MB; figures <= 1x and <= 700 MB.

    python scripts/bench_analysis.py [--seeds 1000 5000] [--epochs 300] [--jobs 2] [--keep DIR]
                                     [--code DIR] [--skip-figures]

Each sweep is 4 widths x 5 learning rates x SEEDS seeds (1,000: 20,000 runs; 5,000: 10^5).
``--code`` runs summary and figures with another checkout's nnlab (PYTHONPATH=DIR) on the same
folders, to compare before and after; ``--keep`` trains into DIR/SEEDS (kept, and reused when it
holds the sweep: its training time is then the resume's, not the training's).
"""

from __future__ import annotations

import argparse
import os
import platform
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


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def megabytes(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20 if path.exists() else 0.0


def bench(seeds: int, args, root: Path) -> list[tuple]:
    """Train one sweep of ``seeds`` seeds and measure its analysis; returns the table's rows."""
    out = root / str(seeds)
    toml = root / f"bench-{seeds}.toml"
    toml.write_text(TOML.format(epochs=args.epochs, seeds=seeds))
    runs = 20 * seeds
    train, _ = measured(["run", str(toml), "--out", str(out), "--jobs", str(args.jobs), "--quiet"], args.code)
    total, parts = megabytes(out), megabytes(out / "parts")
    print(f"{runs:,} runs x {args.epochs} epochs, --jobs {args.jobs}: training {train:.1f} s (and merge)")
    print(f"folder: {total:.0f} MB ({parts:.0f} MB of it parts/)")
    rows = [(runs, "training (`nnlab run`, merge included)", train, 1.0, None, "")]
    steps = [("summary", ["summary", str(out), "--format", "csv"], 0.25, 400)]
    if not args.skip_figures:
        steps.append(("figures", ["figures", str(out), "--figure-format", "png"], 1.0, 700))
    for name, command, goal_ratio, goal_mb in steps:
        wall, mb = measured(command, args.code)
        print(
            f"{name:8s} {wall:7.1f} s = {wall / train:5.2f}x training (goal <= {goal_ratio}x), "
            f"peak {mb:6.0f} MB (goal <= {goal_mb})",
            flush=True,
        )
        goal = f"<= {goal_ratio}x, <= {goal_mb} MB" if runs == 20_000 else ""
        rows.append((runs, f"`nnlab {name}`", wall, wall / train, mb, goal))
    rows.append((runs, "folder on disk", None, None, None, f"{total:.0f} MB, parts/ {parts:.0f} MB of it"))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="train into DIR/SEEDS (kept; reused when it holds the sweep)")
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--skip-figures", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    load = [os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="nnlab-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for seeds in args.seeds:
            rows += bench(seeds, args, root)
            load.append(os.getloadavg())
    averages = ", ".join(f"{a[0]:.1f}" for a in load)
    print(f"\n{cpu_name()}, {os.cpu_count()} cores; load (1 min) at start, after each sweep: {averages}")
    print("\n| runs | step | wall | x training | peak memory | goal / note |\n|---|---|---|---|---|---|")
    for runs, step, wall, ratio, mb, goal in rows:
        cells = [
            f"{runs:,}",
            step,
            "" if wall is None else f"{wall:.1f} s",
            "" if ratio is None else ("1" if ratio == 1.0 else f"{ratio:.2f}x"),
            "" if mb is None else f"{mb:,.0f} MB",
            goal,
        ]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
