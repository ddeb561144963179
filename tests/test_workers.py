"""Jobs in parallel that always end (nnlab.sweep.workers): a lost worker reported and its job retried a
bounded number of times, Dask's failed tasks reported rather than waited on, repeated identical
failures stopping the run, and, through `nnlab run`, a killed worker and a killed parent (loky and
Dask) that end, after a resume, with the tables of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from nnlab import sweep
from nnlab.sweep import workers
from nnlab.sweep.experiment import load
from tests._jobs import deadly, failing, square

ROOT = Path(__file__).resolve().parent.parent


def test_a_lost_loky_worker_is_reported_and_its_job_run_again(tmp_path):
    notices = []
    with workers.Pool(jobs=2, notify=notices.append) as pool:
        got = {item: value for item, value, error in pool.map(square, range(8), (str(tmp_path / "m"),))}
    assert got == {x: x * x for x in range(8)}
    assert len(notices) == 1 and notices[0].startswith("a worker process died;") and "run again" in notices[0]


def test_a_job_that_always_kills_its_worker_is_given_up_and_the_others_finish():
    notices = []
    with workers.Pool(jobs=2, notify=notices.append) as pool:
        out = list(pool.map(deadly, [0], describe=lambda x: f"job {x}"))
    assert out == [(0, None, "job 0: lost with its worker process 3 times (out of memory?)")]
    assert len(notices) == 1 + workers.RETRIES and "given up after 3 tries" in notices[-1]


def test_identical_failures_in_a_row_stop_the_run():
    pool = workers.Pool()
    out = list(pool.map(failing, [5, 6, -1, 7, 8, 9, 10, 11, 12, 13]))
    # The success resets the count; then five MemoryErrors (their sizes differ) stop it.
    assert [item for item, _, _ in out] == [5, 6, -1, 7, 8, 9, 10, 11]
    assert pool.stopped == (
        "stopped after 5 jobs in a row failed the same way (MemoryError: Unable to allocate 12 GiB); "
        "2 jobs not run"
    )
    assert "11: MemoryError" in out[-1][2]


def test_dask_reports_a_task_its_workers_died_on_and_ends():
    """A task the scheduler marked failed (its workers killed) is reported; the run does not wait."""
    pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with workers.Pool(jobs=1, backend="dask") as pool:
            out = list(pool.map(deadly, [0], describe=lambda x: f"job {x}"))
    assert out == [(0, None, "job 0: KilledWorker: every worker that ran it died (out of memory?)")]


# ------------------------------------------------------------------------------------------------
# Through `nnlab run`: a worker killed, then the parent; no orphan; a resume ends identical.

TOML = """name = "w"
[task]
kind = "teacher"
n = 64
[model]
width = [4, 8]
[train]
epochs = 800
seeds = 96
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole")
    (folder / "w.toml").write_text(TOML)
    sweep.run(load(folder / "w.toml"), folder / "out")
    return folder / "w.toml", tables(folder / "out")


def tables(out):
    runs = pd.read_parquet(out / "runs.parquet").drop(columns="seconds").sort_values("run_id")
    curves = pd.read_parquet(out / "curves.parquet").sort_values(["run_id", "epoch"])
    return runs.reset_index(drop=True), curves.reset_index(drop=True)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("backend", ["loky", "dask"])
def test_a_killed_worker_then_a_killed_parent_resume_to_the_same_tables(tmp_path, uninterrupted, backend):
    if backend == "dask":
        pytest.importorskip("distributed")
    path, expected = uninterrupted
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "nnlab", "run", str(path), "--quiet", "--jobs", "2", "--backend", backend]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*cmd, "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    lines = []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    parts = out / "parts"

    def stored() -> int:
        return len(list(parts.glob("job-*.arrow"))) if parts.is_dir() else 0

    wait_for(lambda: stored() >= 1 or proc.poll() is not None, "a first part")
    kids = children(proc.pid)
    trainers = [p for p in kids if "resource_tracker" not in (Path("/proc") / str(p) / "cmdline").read_text()]
    os.kill(trainers[0], signal.SIGKILL)
    wait_for(
        lambda: any("worker" in line and "lost" in line for line in lines) or proc.poll() is not None,
        "a notice",
    )
    before = stored()
    if proc.poll() is None:
        wait_for(lambda: stored() > before or proc.poll() is not None, "another part")
    kids += children(proc.pid)  # with the workers started again
    proc.send_signal(signal.SIGKILL)  # the parent alone
    proc.wait()
    wait_for(lambda: not any(alive(p) for p in kids), "the workers to die with their parent", 10)
    notices = [line for line in lines if "lost" in line]
    assert notices and all(line.startswith("nnlab: a ") for line in notices), lines
    assert "Traceback" not in "".join(lines)
    sweep.run(load(path), out)  # the resume (a run's numbers do not depend on the backend)
    for got, want in zip(tables(out), expected, strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_sigterm_ends_a_run_like_ctrl_c(tmp_path, uninterrupted):
    """kill (SIGTERM) says what is stored and exits 130, as Ctrl-C does; workers die with their parent
    whatever the signal (the test above)."""
    from typer.testing import CliRunner

    from nnlab.cli import app

    path, _ = uninterrupted
    out = tmp_path / "out"

    def terminate() -> None:
        wait_for(
            lambda: len(list((out / "parts").glob("job-*.arrow"))) >= 1 if out.is_dir() else False, "a part"
        )
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate, daemon=True).start()
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 130, result.output
    assert result.stderr.startswith("nnlab: interrupted: ") and "/192 runs stored in" in result.stderr
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handed back


def test_a_sweep_whose_jobs_all_fail_alike_stops_with_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from nnlab.cli import app

    def out_of_memory(job, exp, threads):
        raise MemoryError(f"Unable to allocate {job.config.width * 3.7:.1f} GiB")

    monkeypatch.setattr(sweep.runner, "run_job", out_of_memory)
    path = tmp_path / "e.toml"
    path.write_text('name = "e"\n[task]\nkind = "xor"\n[model]\nwidth = [2, 3]\n[train]\nseeds = 200\n')
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("nnlab: stopped after 5 jobs in a row failed the same way (MemoryError: Unable to")
    assert "; 9 jobs not run (the first: depth=1 width=3 lr=0.05 seeds=0..31); rerun to resume" in line
