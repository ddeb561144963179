"""Wall time of `nnlab run EXPERIMENT --dry-run` for every canonical experiment, each in a fresh
process as a user would start it (interpreter, imports, the plan), against the 2 s it must stay under.

    python scripts/time_dry_runs.py [--repeats 3]

Prints one line per experiment: the fastest and slowest of the repeats. Exit 1 when the fastest of
an experiment is over 2 s (the slowest includes whatever else the machine was doing).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
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
