"""A results folder kept safe: one writer at a time, whole files only, and disk errors said plainly.

- `locked`: `nnlab run` and `nnlab landscape` hold the folder's lock (an advisory ``flock`` on
  DIR/.nnlab.lock) while they write. A second writer is refused at once, in one line naming the
  holder, rather than waiting: two sweeps into one folder would otherwise train the same runs
  twice, or mix two experiments. The kernel drops the lock when its holder dies, however it dies
  (kill -9 included), so a stale lock never needs clearing by hand. Readers (summary, figures,
  report) take no lock.
- `atomic_write_text` and every table writer write to a temporary name carrying the writer's pid
  (``.NAME.PID.tmp``), then rename: a reader sees the old file or the new one, never half of one.
  `clean_orphans` removes the temporary files of writers that died before their rename.
- `writing` turns an OSError (a full disk, a folder without write permission) into a
  `StorageError` that names the file; the caller adds what was kept.
- A folder someone hands you is untrusted: nothing nnlab writes, deletes or locks may leave it.
  Every path nnlab owns inside it (`FILES`, `FOLDERS` and what those folders hold) must be a
  regular file or a real folder, never a link, a FIFO, a socket or a device: `vet` checks them all
  before a command touches the folder, and `make_dir`, `remove`, `entries`, `write_whole` and
  `locked` check again at the moment they act (``O_NOFOLLOW`` for the lock). A refusal is an
  `UnsafePath` (bad input: one line naming the path, exit 2). The folder itself may be reached
  through a link: that is the user's choice, not something planted inside it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from nnlab.errors import InputError
from nnlab.schema import LANDSCAPE_TABLES, SPLITS_TABLE, TABLES

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, folders are not locked
    fcntl = None

LOCK = ".nnlab.lock"
_TMP = re.compile(r"^\..+\.(\d+)\.tmp(\.\w+)?$")


# What nnlab owns inside a results folder: these names directly in it, these folders and every
# entry of theirs (the nested ones as "a/b").
FILES = (LOCK, "experiment.toml", "manifest.json", "report.md", *TABLES, *LANDSCAPE_TABLES, SPLITS_TABLE)
FOLDERS = ("parts", "landscape", "landscape/parts", "figures")


class UnsafePath(InputError):
    """A path nnlab owns inside a results folder is a link or a special file: nnlab would write,
    delete or lock outside the folder, or hang on a FIFO. Bad input, never followed."""


class FolderBusy(RuntimeError):
    """Another nnlab process is writing into the results folder."""


class StorageError(RuntimeError):
    """A file of a results folder could not be written (disk full, no permission, ...)."""


def _what(mode: int) -> str:
    kinds = [
        (stat.S_ISLNK, "a link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ]
    return next((name for test, name in kinds if test(mode)), "a special file")


def check(path: Path, *, folder: bool = False) -> bool:
    """Whether ``path`` exists; UnsafePath when it exists as anything but a regular file (a real
    folder when ``folder``): a link (even to a file inside), a FIFO, a socket or a device. The link
    itself is looked at (lstat), never what it points to."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    except NotADirectoryError:  # a parent is a file: nothing of ours can be there
        return False
    if folder and stat.S_ISDIR(mode) or not folder and stat.S_ISREG(mode):
        return True
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):  # nothing would be followed: only in the way
        what = "a folder" if stat.S_ISDIR(mode) else "a file"
        want = "a folder" if folder else "a table" if path.suffix == ".parquet" else "a file"
        raise UnsafePath(f"{path}: {what}, not {want}; move it away and rerun")
    want = "a folder" if folder else "a regular file"
    what = _what(mode)
    if stat.S_ISLNK(mode):
        with contextlib.suppress(OSError):
            what += f" to {os.readlink(path)}"
    never = "follows links" if stat.S_ISLNK(mode) else "opens special files"
    raise UnsafePath(
        f"{path}: {what}, where nnlab keeps {want}; nnlab never {never} inside a results folder "
        "(remove it, or use another folder)"
    )


def entries(folder: Path, *, folders: tuple[str, ...] = ()) -> list[Path]:
    """The entries of one of nnlab's folders (none when it is missing), each checked to be a
    regular file (`check`), or a real folder for the names ``folders``: what ``iterdir`` returns is
    never trusted to be what its name says."""
    if not check(folder, folder=True):
        return []
    paths = sorted(folder.iterdir())
    for path in paths:
        check(path, folder=path.name in folders)
    return paths


def vet(root: Path) -> None:
    """Check every path nnlab owns in the results folder ``root`` (`FILES`, `FOLDERS` and their
    entries, temporary files included); UnsafePath names the first that is a link or a special
    file. A missing path is fine: it is made when needed, by `make_dir` or `write_whole`."""
    root = Path(root)
    if not root.is_dir():
        return
    for path in root.iterdir():  # temporary files of writers (``.NAME.PID.tmp``) too
        if path.name in FILES or _TMP.match(path.name):
            check(path)
    for name in FOLDERS:
        inner = tuple(n.removeprefix(f"{name}/") for n in FOLDERS if n.startswith(f"{name}/"))
        entries(root / name, folders=inner)


def make_dir(path: Path) -> Path:
    """Make one of nnlab's folders (its parent must exist); UnsafePath when a link or a file is
    in its place, StorageError when it cannot be made."""
    with writing(path):
        if not check(path, folder=True):
            with contextlib.suppress(FileExistsError):  # made meanwhile: checked below
                path.mkdir()
    check(path, folder=True)
    return path


def remove(path: Path) -> None:
    """Delete one of nnlab's files (nothing when missing); a link or special file is refused."""
    if check(path):
        with writing(path):
            path.unlink(missing_ok=True)


def tmp_name(path: Path, suffix: str = "") -> Path:
    """The temporary name a writer of ``path`` uses before its rename: ``.NAME.PID.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """OSError while writing ``path`` -> StorageError("cannot write PATH: reason")."""
    try:
        yield
    except OSError as err:
        raise StorageError(f"cannot write {path}: {err.strerror or err}") from None


def write_whole(path: Path, write: Callable[[Path], object], suffix: str = "") -> None:
    """``write(tmp)`` to a temporary name (`tmp_name`, ending in ``suffix``), then rename it to
    ``path``: whole or not at all. StorageError on failure, with the temporary file removed."""
    tmp = tmp_name(path, suffix)
    check(path)  # a link in its place would be replaced, but nothing of nnlab's is one
    with writing(path):
        # A file (or link) planted under this writer's temporary name goes, not followed.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        try:
            write(tmp)
            _fsync(tmp)  # the data on disk before the name: a crash never leaves an empty file named
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk leaves no half file behind
            raise


def _fsync(path: Path) -> None:
    """Flush ``path``'s data to the disk (a whole-file rename is atomic for readers, but only an
    fsync before it makes it whole after a power cut)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """`write_whole` of a text file (UTF-8)."""
    write_whole(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def clean_orphans(root: Path, *inside: str) -> int:
    """Remove the temporary files (``.NAME.PID.tmp``) left in the results folder ``root`` and its
    folders ``inside`` (names relative to it) by writers that died before their rename (killed
    merges, parts cut short); returns how many. A file whose writer is still running is kept."""
    removed = 0
    for folder in [root, *(root / name for name in inside)]:
        if not (folder == root and folder.is_dir() or check(folder, folder=True)):
            continue
        for path in folder.iterdir():
            match = _TMP.match(path.name)
            # (A link is removed, never followed: unlink acts on the name.)
            if match and (path.is_symlink() or path.is_file()) and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
    return removed


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder recorded it."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"{info['command']} (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another nnlab process"


@contextlib.contextmanager
def locked(folder: Path, command: str) -> Iterator[None]:
    """Hold ``folder``'s lock (creating the folder) while writing into it.

    Raises
    ------
    FolderBusy
        Another process holds it.
    StorageError
        The folder or its lock file cannot be created.
    """
    folder = Path(folder)
    path = folder / LOCK
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    check(path)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        with writing(folder):
            fd = os.open(path, flags, 0o644)
    except StorageError:
        check(path)  # a link planted meanwhile (ELOOP): say so
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device planted meanwhile
        os.close(fd)
        check(path)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FolderBusy(
                    f"{folder}: in use by {_holder(fd)}; wait for it to finish, or stop it first"
                ) from None
        vet(folder)  # (under the lock: nothing of nnlab's changes it meanwhile)
        since = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        record = {"command": command, "pid": os.getpid(), "host": socket.gethostname(), "since": since}
        with contextlib.suppress(OSError):  # the record only names the holder in a refusal
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
