"""A results folder kept safe (nnlab.sweep.folder, and how run, landscape, summary and report use it): the
lock, whole files, disk and permission errors, orphan temporary files."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nnlab import sweep
from nnlab.cli import app
from nnlab.sweep import folder
from nnlab.sweep.experiment import load

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
TOML = (
    'name = "f"\n[task]\nkind = "xor"\n[model]\nwidth = [2, 3]\n[train]\nlr = {lr}\nepochs = 20\nseeds = 40\n'
)


def experiment(tmp_path, lr=0.1) -> Path:
    path = tmp_path / f"e{lr}.toml"
    path.write_text(TOML.format(lr=lr))
    return path


def run(*args):
    return runner.invoke(app, ["run", *map(str, args), "--quiet"])


def one_line(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_a_second_writer_is_refused_in_one_line_and_mixes_nothing(tmp_path):
    out = tmp_path / "out"
    assert run(experiment(tmp_path), "--out", out).exit_code == 0
    before = sorted(p.name for p in (out / "parts").iterdir())
    with folder.locked(out, "nnlab run"):  # a sweep writing into the folder
        # Another experiment into the same folder, or a landscape: refused, whatever they would do.
        line = one_line(run(experiment(tmp_path, lr=0.3), "--out", out), 1, f"{out}: in use by nnlab run")
        assert f"pid {os.getpid()}" in line and "wait for it to finish" in line
        # The lock before anything: its merge would write the running sweep's tables.
        one_line(runner.invoke(app, ["landscape", str(out)]), 1, f"{out}: in use by nnlab run")
        with pytest.raises(folder.FolderBusy):
            with folder.locked(out, "nnlab landscape"):
                pass
    assert sorted(p.name for p in (out / "parts").iterdir()) == before
    assert load(out / "experiment.toml").train["lr"] == 0.1


def test_the_lock_of_a_killed_holder_is_recovered(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from nnlab.sweep import folder\n"
            f"with folder.locked({str(out)!r}, 'x'):\n print(1, flush=True)\n input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert holder.stdout.readline().strip() == b"1"
    one_line(run(experiment(tmp_path), "--out", out), 1, "in use by x (pid")
    holder.kill()  # kill -9: no chance to let go
    holder.wait()
    assert run(experiment(tmp_path), "--out", out).exit_code == 0


def test_a_full_disk_is_one_line_exit_1_saying_what_was_kept(tmp_path, monkeypatch):
    out = tmp_path / "out"
    written = []
    real = sweep.store.write_arrow

    def full(tmp):
        tmp.write_bytes(b"half a part")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def filling(table, path):
        if written:
            folder.write_whole(path, full)
        written.append(path)
        real(table, path)

    monkeypatch.setattr(sweep.store, "write_arrow", filling)
    one_line(
        run(experiment(tmp_path), "--out", out),
        1,
        "cannot write",
        "No space left on device",
        f"32/80 runs stored in {out}/",
        "rerun to resume",
    )
    monkeypatch.undo()
    assert not list((out / "parts").glob(".*.tmp"))  # no half part left behind
    assert run(experiment(tmp_path), "--out", out).exit_code == 0  # the stored part is valid
    assert len(pd.read_parquet(out / "runs.parquet")) == 80


def test_a_write_cut_short_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "experiment.toml"
    folder.atomic_write_text(path, "old")

    def full(self, *args, **kwargs):
        Path.write_bytes(self, b"ne")  # half written, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(folder.StorageError, match=r"cannot write .*experiment.toml: No space left on device"):
        folder.atomic_write_text(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["experiment.toml"]


def test_an_unwritable_folder_is_one_line_exit_1(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    real = os.open

    def denied(path, *args, **kwargs):
        if Path(path).parent == out:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)  # the first file a run writes is its lock
    one_line(
        run(experiment(tmp_path), "--out", out), 1, f"cannot write {out}: Permission denied", "0/80 runs"
    )


def test_summary_of_a_folder_it_cannot_write_reads_the_parts_in_memory(tmp_path, monkeypatch):
    out = tmp_path / "out"
    sweep.run(load(experiment(tmp_path)), out)
    expected = pd.read_parquet(out / "runs.parquet")
    (out / "runs.parquet").unlink()  # a merge cut short: summary has to merge the parts
    real = folder.write_whole

    def read_only(path, write, suffix=""):
        if Path(path).parent == out:
            raise folder.StorageError(f"cannot write {path}: Read-only file system")
        real(path, write, suffix)

    monkeypatch.setattr(folder, "write_whole", read_only)
    result = runner.invoke(app, ["summary", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "Read-only file system; the tables were merged from parts/ for this command only" in result.stderr
    assert len(result.stdout.strip().splitlines()) == 3  # a header, two configurations
    got = sweep.read_results(out)
    assert got.warnings and len(got.runs) == len(expected) and not (out / "runs.parquet").exists()


def test_figures_into_a_folder_it_cannot_write_are_one_line_exit_1(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    out = tmp_path / "out"
    sweep.run(load(experiment(tmp_path)), out)

    def denied(self, path, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(Figure, "savefig", denied)
    one_line(
        runner.invoke(app, ["figures", str(out)]), 1, f"cannot write {out}/figures/", "Permission denied"
    )
    assert not [p for p in (out / "figures").iterdir() if p.name.endswith(".tmp.png")]


def test_orphan_temporary_files_of_dead_writers_are_removed(tmp_path):
    out = tmp_path / "out"
    sweep.run(load(experiment(tmp_path)), out)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # a process that has ended
    orphans = [out / f".runs.parquet.{pid}.tmp", out / "parts" / f".job-1.arrow.{pid}.tmp"]
    live = out / f".curves.parquet.{os.getppid()}.tmp"  # a writer still at work
    for path in [*orphans, live]:
        path.write_bytes(b"half")
    sweep.run(load(experiment(tmp_path)), out)
    assert not any(p.exists() for p in orphans) and live.exists()


def test_experiment_toml_is_never_seen_empty(tmp_path, monkeypatch):
    """Written to a temporary name and renamed: the file is whole at every moment."""
    out = tmp_path / "out"
    sweep.run(load(experiment(tmp_path)), out)
    seen = []
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == "experiment.toml":
            seen.append((Path(dst).read_text(), Path(src).read_text()))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    sweep.run(load(experiment(tmp_path), ["threshold=0.01"]), out)
    ((old, new),) = seen
    assert old and "threshold = 0.01" in new
