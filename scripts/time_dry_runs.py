"""Wall time of `nnlab run EXPERIMENT --dry-run` for every canonical experiment, each in a fresh
process as a user would start it (interpreter, imports, the plan), against the 2 s it must stay under.

    python scripts/time_dry_runs.py [--repeats 3]
    python scripts/time_dry_runs.py --estimates [--train NAME ...] [--jobs 2]

Prints one line per experiment: the fastest and slowest of the repeats. Exit 1 when the fastest of
an experiment is over 2 s (the slowest includes whatever else the machine was doing).

``--estimates`` checks the plan's time instead: per experiment, the dry run's estimate for a fresh
folder (``--jobs``, compiling left out) against the real time, that of the sessions recorded in
results/NAME/manifest.json (each session's start to end, merge included; the estimate compared then
leaves out the command's own start, `nnlab.sweep.planning.PROCESS_SECONDS`, which comes before a
session starts) and, for the experiments named with ``--train``, of the whole command training it
now into a temporary folder; then the ratio real / estimate
(goal: within 1.5x on an idle machine) and the load average, since a shared machine slows the real
time and not the estimate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 2.0


def _session_seconds(folder: Path, jobs: int) -> float | None:
    """The wall time of the sessions in ``folder``'s manifest.json that trained every run with
    ``jobs`` workers (the last such), or None."""
    try:
        sessions = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("sessions", [])
    except (OSError, ValueError):
        return None
    whole = [s for s in sessions if s.get("jobs") == jobs and not s.get("runs_reused") and s.get("end")]
    if not whole:
        return None
    s = whole[-1]
    return (dt.datetime.fromisoformat(s["end"]) - dt.datetime.fromisoformat(s["start"])).total_seconds()


def estimates(train: list[str], jobs: int) -> int:
    """The plan's estimate against the recorded and (``train``) measured times; see the docstring."""
    from nnlab.sweep.experiment import load
    from nnlab.sweep.planning import PROCESS_SECONDS
    from nnlab.sweep.runner import dry_run

    print(f"load average (1, 5, 15 min) at start: {', '.join(f'{a:.1f}' for a in os.getloadavg())}")
    print(f"{'experiment':20s} {'estimate':>9s} {'recorded':>9s} {'ratio':>6s} {'now':>8s} {'ratio':>6s}")
    for path in sorted((ROOT / "experiments").glob("*.toml")):
        exp = load(path)
        with tempfile.TemporaryDirectory(prefix="nnlab-plan-") as tmp:
            plan = dry_run(exp, Path(tmp) / "out", jobs=jobs)
        estimate = plan.train_seconds
        recorded = _session_seconds(ROOT / "results" / path.stem, jobs)
        now = None
        if path.stem in train:
            with tempfile.TemporaryDirectory(prefix="nnlab-real-") as tmp:
                start = time.perf_counter()
                command = ["run", str(path), "--out", f"{tmp}/out", "--jobs", str(jobs), "--quiet"]
                subprocess.run(
                    [sys.executable, "-m", "nnlab", *command],
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                )
                now = time.perf_counter() - start

        shown = [
            ("-", "-") if t is None else (f"{t:.1f} s", f"{t / (estimate - start):.2f}")
            for t, start in ((recorded, PROCESS_SECONDS), (now, 0.0))
        ]
        print(
            f"{path.stem:20s} {estimate:7.1f} s {shown[0][0]:>9s} {shown[0][1]:>6s} {shown[1][0]:>8s} "
            f"{shown[1][1]:>6s}",
            flush=True,
        )
    print(f"load average (1, 5, 15 min) at end: {', '.join(f'{a:.1f}' for a in os.getloadavg())}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--estimates", action="store_true", help="the plan's time against the real time")
    parser.add_argument("--train", nargs="*", default=[], help="with --estimates: train these now")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if args.estimates:
        return estimates(args.train, args.jobs)
    worst = 0.0
    for path in sorted((ROOT / "experiments").glob("*.toml")):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "nnlab",
                    "run",
                    str(path),
                    "--dry-run",
                    "--out",
                    str(ROOT / "results" / path.stem),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                print(f"{path.name}: exit {done.returncode}: {done.stderr.strip()}", file=sys.stderr)
                return 1
        worst = max(worst, min(times))
        print(f"{path.stem:18s} fastest {min(times):.2f} s, slowest {max(times):.2f} s")
    print(
        f"all under {LIMIT:g} s: {'yes' if worst < LIMIT else 'no'} "
        f"(fastest of the slowest experiment: {worst:.2f} s)"
    )
    return 0 if worst < LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
