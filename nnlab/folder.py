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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, folders are not locked
    fcntl = None

LOCK = ".nnlab.lock"
_TMP = re.compile(r"^\..+\.(\d+)\.tmp(\.\w+)?$")


class FolderBusy(RuntimeError):
    """Another nnlab process is writing into the results folder."""


class StorageError(RuntimeError):
    """A file of a results folder could not be written (disk full, no permission, ...)."""


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
    with writing(path):
        try:
            write(tmp)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk leaves no half file behind
            raise


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


def clean_orphans(*folders: Path) -> int:
    """Remove the temporary files (``.NAME.PID.tmp``) left in ``folders`` by writers that died
    before their rename (killed merges, parts cut short); returns how many. A file whose writer
    is still running is kept."""
    removed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _TMP.match(path.name)
            if match and path.is_file() and not _alive(int(match.group(1))):
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
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FolderBusy(
                    f"{folder}: in use by {_holder(fd)}; wait for it to finish, or stop it first"
                ) from None
        since = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        record = {"command": command, "pid": os.getpid(), "host": socket.gethostname(), "since": since}
        with contextlib.suppress(OSError):  # the record only names the holder in a refusal
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
