"""Jobs for tests/test_workers.py, in a module of their own: a worker process imports this (light)
module to run them, not the test module with its imports."""

import os
import signal
from pathlib import Path


def square(x: int, marker: str) -> int:
    """x squared; the item 3 kills its worker process the first time (``marker`` remembers it)."""
    if x == 3 and not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def deadly(x: int) -> int:
    """Kills its worker process, every time."""
    os.kill(os.getpid(), signal.SIGKILL)


def failing(x: int) -> int:
    """A MemoryError for x >= 0, whose message depends on x."""
    if x >= 0:
        raise MemoryError(f"Unable to allocate {x + 1} GiB")
    return x
