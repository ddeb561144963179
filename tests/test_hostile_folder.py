"""A results folder someone hands you is untrusted input (issue 20): nothing nnlab writes, deletes or
locks may leave it. Every link or special file planted where nnlab owns a path is refused in one
line naming it (exit 2), and a sentinel folder outside is left exactly as it was: same files, same
contents, same modification times."""

import os
import shutil
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nnlab
from nnlab.cli import app
from nnlab.sweep import folder

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
TOML = (
    'name = "h"\nsave_networks = true\n[task]\nkind = "xor"\n[model]\nwidth = 2\n'
    "[train]\nlr = 0.5\nepochs = 30\nseeds = 4\n"
)


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """A results folder of 4 XOR runs with saved networks, summarized and certified once."""
    base = tmp_path_factory.mktemp("stored")
    (base / "h.toml").write_text(TOML)
    out = base / "out"
    assert runner.invoke(app, ["run", str(base / "h.toml"), "--out", str(out), "--quiet"]).exit_code == 0
    assert runner.invoke(app, ["landscape", str(out), "--quiet"]).exit_code == 0
    assert runner.invoke(app, ["figures", str(out), "--figure-format", "png"]).exit_code == 0
    return out


@pytest.fixture
def dirs(tmp_path, stored):
    """(a fresh copy of the results folder, its experiment file, a sentinel folder outside it)."""
    out = tmp_path / "out"
    shutil.copytree(stored, out)
    (tmp_path / "h.toml").write_text(TOML)
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    for name in ("keep.txt", "job-x.arrow", "runs.parquet", "a.png", "options.json"):
        (sentinel / name).write_text(f"mine: {name}\n")
    (sentinel / "sub").mkdir()
    (sentinel / "sub" / "deep.txt").write_text("deep\n")
    return out, tmp_path / "h.toml", sentinel


def snapshot(where: Path) -> dict:
    """Every file and folder under ``where``: its content (files) and modification time."""
    return {
        str(p.relative_to(where)): (p.read_bytes() if p.is_file() else None, p.lstat().st_mtime_ns)
        for p in sorted(where.rglob("*"))
    } | {".": where.lstat().st_mtime_ns}


def refused(args, path: Path, *fragments: str) -> str:
    """nnlab ARGS exits 2 with one line on stderr naming ``path`` (no traceback)."""
    result = runner.invoke(app, [*map(str, args)])
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert str(path) in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def replace_with_link(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    path.symlink_to(target)


# -- 1. landscape/parts a link: `nnlab landscape` deleted every file in the target --------------------


@pytest.mark.parametrize("fresh", [False, True])
def test_landscape_parts_a_link_is_refused(dirs, fresh):
    out, _, sentinel = dirs
    replace_with_link(out / "landscape" / "parts", sentinel)
    before = snapshot(sentinel)
    refused(
        ["landscape", out, "--quiet", *(["--fresh"] if fresh else [])], out / "landscape" / "parts", "a link"
    )
    assert snapshot(sentinel) == before


def test_landscape_a_link_is_refused(dirs):
    out, _, sentinel = dirs
    (sentinel / "parts").mkdir()
    (sentinel / "parts" / "job-x.arrow").write_text("mine")
    replace_with_link(out / "landscape", sentinel)
    before = snapshot(sentinel)
    refused(["landscape", out, "--quiet", "--fresh"], out / "landscape", "a link")
    refused(["run", out / "experiment.toml", "--out", out, "--quiet", "--fresh"], out / "landscape")
    assert snapshot(sentinel) == before


# -- 2. parts a link: `nnlab run --fresh` deleted every file in the target, and wrote parts there ------


@pytest.mark.parametrize("fresh", [False, True])
def test_parts_a_link_is_refused_by_run(dirs, fresh):
    out, toml, sentinel = dirs
    replace_with_link(out / "parts", sentinel)
    before = snapshot(sentinel)
    args = ["run", toml, "--out", out, "--quiet", "--set", "train.seeds=6", *(["--fresh"] if fresh else [])]
    refused(args, out / "parts", "a link", "nnlab never follows links inside a results folder")
    assert snapshot(sentinel) == before


def test_parts_a_link_is_refused_by_readers(dirs):
    """summary, figures, report and nnlab.load merge parts/ into the tables: they refuse it too."""
    out, _, sentinel = dirs
    (out / "runs.parquet").unlink()  # so that a reader would merge from parts/
    replace_with_link(out / "parts", sentinel)
    before = snapshot(sentinel)
    for command in (["summary", out], ["figures", out], ["report", out]):
        refused(command, out / "parts")
    with pytest.raises(folder.UnsafePath, match="a link"):
        nnlab.load(out)
    assert snapshot(sentinel) == before


def test_a_link_inside_parts_is_refused(dirs):
    out, toml, sentinel = dirs
    (out / "parts" / "job-planted.arrow").symlink_to(sentinel / "job-x.arrow")
    before = snapshot(sentinel)
    refused(["run", toml, "--out", out, "--quiet", "--fresh"], out / "parts" / "job-planted.arrow")
    refused(["summary", out], out / "parts" / "job-planted.arrow")
    assert snapshot(sentinel) == before


# -- 3. the lock a link: run and landscape truncated its target and wrote their record there -----------


@pytest.mark.parametrize("command", ["run", "landscape"])
def test_the_lock_a_link_is_refused(dirs, command):
    out, toml, sentinel = dirs
    replace_with_link(out / folder.LOCK, sentinel / "keep.txt")
    before = snapshot(sentinel)
    args = ["run", toml, "--out", out, "--quiet"] if command == "run" else ["landscape", out, "--quiet"]
    refused(args, out / folder.LOCK, "a link")
    assert snapshot(sentinel) == before


def test_a_dangling_lock_link_creates_nothing(dirs):
    out, toml, sentinel = dirs
    replace_with_link(out / folder.LOCK, sentinel / "new.txt")
    before = snapshot(sentinel)
    refused(["run", toml, "--out", out, "--quiet"], out / folder.LOCK, "a link")
    with pytest.raises(folder.UnsafePath):
        with folder.locked(out, "test"):
            pass
    assert not (sentinel / "new.txt").exists()
    assert snapshot(sentinel) == before


# -- 4. figures a link: figures and report overwrote same-named files in the target --------------------


@pytest.mark.parametrize("command", ["figures", "report"])
def test_figures_a_link_is_refused(dirs, command):
    out, _, sentinel = dirs
    (sentinel / "spread.png").write_text("mine")
    replace_with_link(out / "figures", sentinel)
    before = snapshot(sentinel)
    refused([command, out], out / "figures", "a link")
    assert snapshot(sentinel) == before


def test_a_link_inside_figures_is_refused(dirs):
    out, _, sentinel = dirs
    replace_with_link(out / "figures" / "spread.png", sentinel / "a.png")
    before = snapshot(sentinel)
    refused(["figures", out, "--figure-format", "png"], out / "figures" / "spread.png", "a link")
    assert snapshot(sentinel) == before


def test_compare_out_figures_a_link_is_refused(dirs, tmp_path):
    out, _, sentinel = dirs
    shutil.copytree(out, tmp_path / "other")
    dest = tmp_path / "cmp"
    dest.mkdir()
    (dest / "figures").symlink_to(sentinel)
    before = snapshot(sentinel)
    refused(["compare", out, tmp_path / "other", "--out", dest], dest / "figures", "a link")
    assert snapshot(sentinel) == before


# -- Tables and files of the folder's top level ------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["runs.parquet", "experiment.toml", "manifest.json", "endpoints.parquet", "splits.parquet"]
)
def test_a_table_or_file_a_link_is_refused(dirs, name):
    """Replacing a link would not leave the folder, but nothing of nnlab's is one: refused, so that a
    folder never reads or shows what lies elsewhere as its own."""
    out, toml, sentinel = dirs
    shutil.copy(out / name, sentinel / name)
    replace_with_link(out / name, sentinel / name)
    before = snapshot(sentinel)
    refused(["summary", out], out / name, "a link")
    refused(["run", toml, "--out", out, "--quiet"], out / name, "a link")
    assert snapshot(sentinel) == before


# -- Special files: a FIFO would hang a reader or a writer, a socket or device is no file ----------------


@pytest.mark.parametrize(
    ("where", "command"),
    [
        (folder.LOCK, "run"),
        (folder.LOCK, "landscape"),
        ("runs.parquet", "summary"),
        ("parts/job-fifo.arrow", "summary"),
        ("landscape/parts/job-fifo.arrow", "landscape"),
        ("figures/spread.png", "figures"),
    ],
)
def test_a_fifo_is_refused_without_hanging(dirs, where, command):
    out, toml, _ = dirs
    path = out / where
    if os.path.lexists(path):
        path.unlink()
    os.mkfifo(path)
    args = {"run": ["run", toml, "--out", out, "--quiet"], "landscape": ["landscape", out, "--quiet"]}
    refused(args.get(command, [command, out]), path, "a FIFO")


def test_a_socket_in_parts_is_refused(dirs):
    out, _, _ = dirs
    path = out / "parts" / "job-s.arrow"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        refused(["summary", out], path, "a socket")


def test_a_planted_temporary_link_is_refused(dirs):
    """A writer's temporary name (``.NAME.PID.tmp``) planted as a link: refused, never written through."""
    out, toml, sentinel = dirs
    (out / ".runs.parquet.999999.tmp").symlink_to(sentinel / "runs.parquet")
    before = snapshot(sentinel)
    refused(["summary", out], out / ".runs.parquet.999999.tmp", "a link")
    refused(["run", toml, "--out", out, "--quiet"], out / ".runs.parquet.999999.tmp", "a link")
    assert snapshot(sentinel) == before


def test_the_folder_itself_may_be_a_link(dirs, tmp_path):
    """The folder handed over may be reached through a link (the user's choice): it works as usual."""
    out, toml, _ = dirs
    (tmp_path / "alias").symlink_to(out)
    assert runner.invoke(app, ["summary", str(tmp_path / "alias")]).exit_code == 0
    result = runner.invoke(app, ["run", str(toml), "--out", str(tmp_path / "alias"), "--quiet"])
    assert result.exit_code == 0, result.output


def test_write_whole_refuses_a_link_in_place(tmp_path):
    (tmp_path / "target").write_text("mine")
    (tmp_path / "f.txt").symlink_to(tmp_path / "target")
    with pytest.raises(folder.UnsafePath, match="a link"):
        folder.atomic_write_text(tmp_path / "f.txt", "x")
    with pytest.raises(folder.UnsafePath, match="a link"):
        folder.remove(tmp_path / "f.txt")
    assert (tmp_path / "target").read_text() == "mine"


# -- Code execution held ---------------------------------------------------------------------------


def test_nothing_of_the_package_executes_data():
    """No pickle, eval or exec anywhere in nnlab; NPZ read with allow_pickle=False."""
    sources = {p: p.read_text() for p in (ROOT / "nnlab").rglob("*.py")}
    for path, text in sources.items():
        for word in ("import pickle", "pickle.load", "eval(", "exec(", "allow_pickle=True", "marshal"):
            assert word not in text, (path, word)
    assert any("allow_pickle=False" in text for text in sources.values())
