"""What a running sweep prints (nnlab.sweep.progress), and `nnlab run` printing it."""

import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from nnlab import sgd
from nnlab.cli import app
from nnlab.sweep import progress

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_plain_lines_every_step_and_not_too_often():
    clock, out = Clock(), StringIO()
    report = progress.PlainProgress("quick", stream=out, step=0.1, interval=2.0, clock=clock)
    report(20, 100)  # reused from an earlier session: no line, and not counted in the rate
    for done, now in [(25, 1.0), (40, 1.5), (41, 2.5), (50, 3.0), (80, 10.0), (100, 12.0)]:
        clock.now = now
        report(done, 100)
    assert out.getvalue().splitlines() == [
        # 25 is not 10% past 20; 40 is, but before 2 s; 41 is both (16 runs in the 1.5 s since the
        # first were done: 59 left ~ 6 s).
        "quick: 41/100 runs (41%), 2 s, about 6 s left",
        "quick: 80/100 runs (80%), 10 s, about 3 s left",
        "quick: 100/100 runs (100%), 12 s",
    ]


def test_the_time_left_leaves_the_compile_out():
    """The first job pays the kernels' compile (90 s here): the pace is counted from its end."""
    clock, out = Clock(), StringIO()
    report = progress.PlainProgress("quick", stream=out, step=0.1, interval=2.0, clock=clock)
    report(0, 100)
    for done, now in [(10, 90.0), (30, 92.0)]:
        clock.now = now
        report(done, 100)
    assert out.getvalue().splitlines() == [
        "quick: 10/100 runs (10%), 1 min 30 s",
        "quick: 30/100 runs (30%), 1 min 32 s, about 7 s left",
    ]


def test_a_short_sweep_prints_nothing():
    clock, out = Clock(), StringIO()
    report = progress.PlainProgress("quick", stream=out, clock=clock)
    report(0, 10)
    for done in range(1, 11):
        clock.now = done * 0.1
        report(done, 10)
    assert out.getvalue() == ""


def test_clock_text():
    assert [progress.clock(s) for s in (0.4, 59, 61, 3599, 3600, 7 * 3600 + 125)] == [
        "0 s",
        "59 s",
        "1 min 01 s",
        "59 min 59 s",
        "1 h 00 min",
        "7 h 02 min",
    ]


def write(tmp_path, seeds=8):
    path = tmp_path / "p.toml"
    model = "[model]\nwidth = [1, 2, 3, 4]\n"
    path.write_text(f'name = "p"\n[task]\nkind = "xor"\n{model}[train]\nepochs = 20\nseeds = {seeds}\n')
    return path


def test_run_prints_progress_lines_the_compile_note_and_its_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "INTERVAL", 0.0)  # every 5% at once
    monkeypatch.setattr(sgd, "uncompiled", lambda layouts: ["lanes"])
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(write(tmp_path, seeds=4)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("nnlab: compiling the lanes kernels: about 20-40 s each, once")
    # (No time left on the first line: the first job's pace is the compile's.)
    expected = [r"p: 4/16 runs \(25%\), \d+ s"]
    expected += [rf"p: {k * 4}/16 runs \({k * 25}%\), \d+ s, about \d+ s left" for k in (2, 3)]
    expected.append(r"p: 16/16 runs \(100%\), \d+ s")
    assert len(lines) == 6 and all(
        re.fullmatch(e, line) for e, line in zip(expected, lines[1:-1], strict=True)
    )
    counts = "this session: 16 trained, 0 reused, 0 failed"
    assert lines[-1] == f"16/16 runs in {out}/ (runs.parquet, curves.parquet); {counts}"
    # More seeds: the stored runs are reused, and --quiet prints the last line only.
    result = runner.invoke(app, ["run", str(write(tmp_path, seeds=8)), "--out", str(out), "--quiet"])
    assert result.stdout.splitlines() == [
        f"32/32 runs in {out}/ (runs.parquet, curves.parquet); this session: 16 trained, 16 reused, 0 failed"
    ]
    assert len(pd.read_parquet(out / "runs.parquet")) == 32


def test_no_compile_note_once_the_kernels_are_cached(tmp_path):
    sgd.train(__import__("nnlab").init_network([2, 2, 1]), [[0.0, 1.0]], [[0.5]], lr=0.1, epochs=1)
    assert sgd.uncompiled(["lanes"]) == []
    result = runner.invoke(app, ["run", str(write(tmp_path)), "--out", str(tmp_path / "o")])
    assert "compiling" not in result.stdout


def test_uncompiled_reads_numba_s_cache(tmp_path):
    """With an empty cache folder every layout is still to compile (nothing is compiled to find out)."""
    code = "from nnlab.sgd import uncompiled; print(uncompiled(['lanes', 'replica', 'lanes']))"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "['lanes', 'replica']", done.stderr
