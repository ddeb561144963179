"""Jobs run in parallel, and every run of them ends: in this process, on loky worker processes, or
on a Dask cluster, each job's outcome yielded as it finishes.

What can go wrong outside a job, and what happens then:

- A worker process dies (killed, or taken by the kernel's out-of-memory killer). loky then fails
  every job in flight; those jobs are run again, up to `RETRIES` times each, with one line
  through ``notify`` per loss. A Dask scheduler retries a task itself when its worker dies (its
  ``allowed-failures``, 3 by default) and then marks it failed: that job is reported and the run
  goes on. A job given up is reported like a failed job, so the sweep ends and a rerun resumes.
- The Dask cluster loses every worker (a job fails with KilledWorker while none is left, or no
  worker comes for `NO_WORKERS` seconds): the remaining jobs are abandoned (reported), so a run
  never waits forever, and `Pool.stopped` says "the cluster lost its workers".
- The Dask scheduler goes away: the remaining jobs are abandoned the same way, and `Pool.stopped`
  says so. distributed's own logging (tracebacks of lost connections) is silenced while a pool
  is open: each of these is said in one line.
- `SAME_FAILURES` jobs in a row fail with the same error (MemoryError on every job of a sweep that
  cannot fit): the remaining jobs are not started, and `Pool.stopped` says why in one line.
- The parent process dies (SIGKILL, SIGTERM): loky workers are killed with it by the kernel
  (Linux ``PR_SET_PDEATHSIG``; elsewhere they exit as soon as they find their parent gone), so no
  orphan keeps running or holding the parent's output pipes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from nnlab.errors import InputError
from nnlab.sweep.folder import StorageError

RETRIES = 2  # a job whose worker died is run at most 1 + RETRIES times
SAME_FAILURES = 5  # this many jobs in a row failing with the same error stop the run
NO_WORKERS = 60.0  # seconds a Dask cluster may have no worker before its jobs are abandoned
POLL = 2.0  # seconds between checks of a Dask cluster's workers while no job finishes
TIMEOUT = 10.0  # seconds a Dask scheduler has to answer when the pool connects


class ConnectError(InputError):
    """The Dask scheduler cannot be reached (bad input: the address)."""


def _libc_prctl() -> Callable | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


@functools.cache
def _prctl() -> Callable | None:
    return _libc_prctl() if sys.platform.startswith("linux") else None


def die_with(parent: int) -> None:
    """Make this worker process die when ``parent`` (its parent process) does.

    On Linux the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``; cheap, so
    it is set again before every job). Elsewhere a daemon thread checks the parent every second.
    Either way a worker whose parent is already gone exits at once.
    """
    prctl = _prctl()
    if prctl is not None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    else:
        _watch_parent(parent)
    if os.getppid() != parent:
        os._exit(1)


@functools.cache
def _watch_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="nnlab-parent-watch").start()


def call(work: Callable, item: Any, args: tuple, parent: int | None) -> tuple[Any, str]:
    """``work(item, *args)`` in a worker: (its value, "") or (None, "Type: message") when it raised,
    so that one failing job never stops the others."""
    if parent is not None and os.getpid() != parent:
        die_with(parent)
    try:
        return work(item, *args), ""
    except StorageError:
        raise  # a full disk or a folder without permission stops the run, whatever the job
    except Exception as err:  # reported per job; the run goes on
        return None, f"{type(err).__name__}: {err}"


def _reason(message: str) -> str:
    """An error with its numbers masked: MemoryErrors of different sizes are the same failure."""
    return re.sub(r"\d+(\.\d+)?", "#", message)


class Pool:
    """Where jobs run: ``jobs`` loky worker processes (this process alone when ``jobs`` is 1), or a
    Dask cluster (``scheduler``, or a loopback LocalCluster of ``jobs`` workers).

    A context manager: entering connects to Dask (a ConnectError when the scheduler cannot be
    reached, before anything is written), leaving closes the client and any LocalCluster.

    Attributes
    ----------
    stopped : str or None
        After `map`: why the remaining jobs were not run (repeated identical failures, a cluster
        without workers, a scheduler gone), and what a rerun does, in one line; or None.
    stopped_jobs : int
        How many of the last failures `map` yielded the stop covers (said by ``stopped``, not one by one).
    """

    def __init__(
        self,
        *,
        jobs: int = 1,
        backend: str = "loky",
        scheduler: str | None = None,
        notify: Callable[[str], None] | None = None,
    ):
        self.jobs, self.backend, self.scheduler = jobs, backend, scheduler
        self.notify = notify or (lambda message: None)
        self.stopped: str | None = None
        self.stopped_jobs = 0
        self.client = self.cluster = None
        self._logs = contextlib.ExitStack()

    @property
    def local(self) -> bool:
        """Jobs run in this process, one after the other."""
        return self.jobs == 1 and self.backend != "dask"

    @property
    def shared_disk(self) -> bool:
        """Jobs run on this machine, so that they can write their outputs themselves. They should:
        loky's workers send their results back through one pipe, and a worker killed while sending
        a large one leaves it half written, which stalls the pool for good; a few bytes are sent
        in one piece. (A Dask worker may sit on another machine; each has its own connection.)"""
        return self.backend != "dask"

    def __enter__(self) -> Pool:
        if self.backend == "dask":
            self._logs.enter_context(_quiet_logs())
            try:
                self.client, self.cluster = _dask_client(self.scheduler, self.jobs)
            except BaseException:
                self._logs.close()
                raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            # A scheduler gone away makes closing complain, and may raise: nothing is left to close.
            with contextlib.suppress(Exception):
                if self.client is not None:
                    self.client.close(timeout=5)
            with contextlib.suppress(Exception):
                if self.cluster is not None:
                    self.cluster.close()
        finally:
            self.client = self.cluster = None
            self._logs.close()

    def map(
        self, work: Callable, todo: Iterable, args: tuple = (), *, describe: Callable[[Any], str] = str
    ) -> Iterator[tuple[Any, Any, str]]:
        """(item, ``work(item, *args)``, "") for every item of ``todo`` as it finishes, or (item, None,
        error) when it failed, its error prefixed by ``describe(item)``. After `SAME_FAILURES`
        identical failures in a row the rest is not run and `stopped` says so."""
        self.stopped, self.stopped_jobs = None, 0
        todo = list(todo)
        if self.local:
            outcomes = ((item, *call(work, item, args, None)) for item in todo)
        elif self.backend == "dask":
            outcomes = self._dask(work, todo, args)
        else:
            outcomes = self._loky(work, todo, args)
        run = same = 0
        last = None
        for item, value, error in outcomes:
            run += 1
            if not error:
                same, last = 0, None
                yield item, value, ""
                continue
            error = " ".join(error.split())  # one line: a Dask error may span several
            reason = _reason(error)
            same, last = (same + 1, reason) if reason == last else (1, reason)
            yield item, None, f"{describe(item)}: {error}"
            if self.stopped:  # the backend gave up on the rest itself (a cluster without workers)
                continue
            if same >= SAME_FAILURES and run < len(todo):
                self.stopped = (
                    f"stopped after {same} jobs in a row failed the same way ({error}); "
                    f"{len(todo) - run} jobs not run"
                )
                self.stopped_jobs = SAME_FAILURES
                outcomes.close()
                return

    def _loky(self, work: Callable, todo: list, args: tuple) -> Iterator[tuple[Any, Any, str]]:
        """On loky workers. When a worker dies, loky fails every job in flight: they are run again in
        a fresh pool, last, at most RETRIES times each."""
        from joblib import Parallel, delayed, parallel_config
        from joblib.externals.loky.process_executor import BrokenProcessPool

        losses = dict.fromkeys(range(len(todo)), 0)
        queue = list(range(len(todo)))
        parent = os.getpid()
        while queue:
            dispatched: list[int] = []
            finished: set[int] = set()

            def feed(queue=queue, dispatched=dispatched):
                for i in queue:
                    dispatched.append(i)  # joblib takes an item only when a worker is free for it
                    yield delayed(_numbered)(i, work, todo[i], args, parent)

            try:
                with parallel_config(backend="loky", inner_max_num_threads=1):
                    runner = Parallel(
                        n_jobs=self.jobs, return_as="generator_unordered", batch_size=1, pre_dispatch="n_jobs"
                    )
                    for i, (value, error) in runner(feed()):
                        finished.add(i)
                        yield todo[i], value, error
                queue = []
            except BrokenProcessPool:
                lost = [i for i in dispatched if i not in finished]
                waiting = [i for i in queue if i not in finished and i not in lost]
                retry, given_up = [], []
                for i in lost:
                    losses[i] += 1
                    (retry if losses[i] <= RETRIES else given_up).append(i)
                self.notify(
                    f"a worker process died; {len(lost)} jobs in flight lost"
                    + (f", run again ({len(retry)})" if retry else "")
                    + (f", given up after {RETRIES + 1} tries ({len(given_up)})" if given_up else "")
                )
                for i in given_up:
                    yield todo[i], None, f"lost with its worker process {RETRIES + 1} times (out of memory?)"
                queue = waiting + sorted(retry, key=lambda i: losses[i])

    def _dask(self, work: Callable, todo: list, args: tuple) -> Iterator[tuple[Any, Any, str]]:
        """On the Dask cluster. The scheduler reruns a task whose worker died, up to its
        allowed-failures; then the task fails with KilledWorker, reported as this job's error. A
        cluster left without workers, or a scheduler gone, ends the run: the remaining jobs are
        reported not run, and `stopped` says why."""
        from dask.distributed import wait

        client = self.client
        futures = {client.submit(call, work, item, args, None, pure=False): item for item in todo}
        pending = set(futures)
        alone_since = None
        seen, checked = _workers(client), time.monotonic()
        failed_with_workers = 0

        def check() -> set[str]:
            """The workers now; one that left is said in one line (the scheduler reruns its jobs)."""
            now = _workers(client)
            if seen - now:
                self.notify(f"a Dask worker was lost ({', '.join(sorted(seen - now))}); its jobs run again")
            return now

        def give_up(why: str, what: str, lost: int = 0) -> Iterator[tuple[Any, Any, str]]:
            """Report every pending job not run; `stopped` says ``why`` and what a rerun does."""
            nonlocal pending
            left = [futures[f] for f in pending]
            for future in pending:
                future.cancel()
            pending = set()
            with_them = f"{lost} jobs lost with them, " if lost else ""
            self.stopped = (
                f"{why} ({with_them}{len(left)} jobs not run); a rerun keeps everything stored and runs "
                f"the rest, {what}"
            )
            self.stopped_jobs = len(left) + lost
            for item in left:
                yield item, None, f"not run: {why}"

        again = "once the scheduler has workers again"
        try:
            while pending:
                if time.monotonic() - checked > 0.5:
                    seen, checked = check(), time.monotonic()
                try:
                    done, pending = wait(pending, timeout=POLL, return_when="FIRST_COMPLETED")
                except TimeoutError:  # dask's, a subclass of the builtin
                    done = set()
                for future in done:
                    item = futures.pop(future)
                    if future.status == "finished":
                        yield item, *future.result()
                        failed_with_workers = 0
                        continue
                    if future.status == "cancelled":  # only the scheduler's going away cancels
                        raise _SchedulerGone
                    error = future.exception()
                    lost = type(error).__name__ == "KilledWorker"
                    failed_with_workers = failed_with_workers + 1 if lost else 0
                    yield item, None, _failure(error)
                    if lost and not _workers(client):
                        yield from give_up("the cluster lost its workers", again, failed_with_workers)
                        break
                if done or seen:
                    alone_since = None
                elif alone_since is None:
                    alone_since = time.monotonic()
                elif time.monotonic() - alone_since > NO_WORKERS:
                    why = f"the cluster lost its workers: none for {NO_WORKERS:.0f} s"
                    yield from give_up(why, again)
            check()  # a loss near the end is said too
        except Exception as err:  # the scheduler went away: its connection, its futures cancelled
            if (
                not isinstance(err, _SchedulerGone)
                and client.status not in ("closed", "closing")
                and _alive(client)
            ):
                raise
            for future in list(pending):
                if future.done() and future.status == "finished":  # (finished before it went)
                    pending.discard(future)
                    yield futures.pop(future), *future.result()
            yield from give_up(
                f"the Dask scheduler at {self.scheduler or 'the local cluster'} went away", "once it is back"
            )
        finally:
            for future in pending:
                future.cancel()


class _SchedulerGone(Exception):
    """A future was cancelled: only the scheduler's going away does that here."""


def _alive(client) -> bool:
    """Whether the client's scheduler still answers."""
    try:
        client.scheduler_info()
    except Exception:
        return False
    return client.status == "running"


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """distributed's loggers (and tornado's, under it) silenced while a pool is open: a worker or
    scheduler lost is said in one line by `Pool`, not by pages of logged tracebacks."""
    names = [
        n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in ("distributed", "tornado")
    ]
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", *names)]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _failure(error: BaseException) -> str:
    if type(error).__name__ == "KilledWorker":  # Dask's message spans a paragraph
        return "KilledWorker: every worker that ran it died (out of memory?)"
    return f"{type(error).__name__}: {error}"


def _numbered(i: int, work: Callable, item: Any, args: tuple, parent: int) -> tuple[int, tuple[Any, str]]:
    """`call`, with the item's index: joblib yields unordered results."""
    return i, call(work, item, args, parent)


def _workers(client) -> set[str]:
    """The addresses of the cluster's workers (none when its scheduler is gone)."""
    try:
        return set(client.scheduler_info().get("workers", {}))
    except Exception:  # a scheduler that went away has no workers either
        return set()


def _dask_client(scheduler: str | None, jobs: int):
    """A distributed Client on ``scheduler``, or on a new loopback LocalCluster of ``jobs`` worker
    processes; returns (client, cluster or None)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:
        raise ConnectError(
            "--backend dask: needs the 'distributed' package (pip install 'nnlab[dask]')"
        ) from err
    if scheduler:
        try:
            _reachable(scheduler)
        except (OSError, ValueError) as err:
            raise ConnectError(f"--scheduler: cannot reach {scheduler}: {err}") from None
        _identify(scheduler, TIMEOUT)
        try:
            return Client(scheduler, timeout=f"{TIMEOUT:g}s"), None
        except (OSError, TimeoutError, ValueError) as err:
            raise ConnectError(f"--scheduler: cannot reach {scheduler}: {err}") from None
    # Dask's own logs of lost workers span many lines; `Pool` reports each loss in one.
    cluster = LocalCluster(
        n_workers=jobs,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    return Client(cluster), cluster


def _identify(scheduler: str, timeout: float) -> None:
    """ConnectError unless a Dask scheduler answers at ``scheduler`` within ``timeout`` seconds.
    distributed's own Client waits forever on a server that accepts and says nothing, and reads
    another protocol's bytes as frame lengths (a MemoryError): a deadline over the whole exchange."""
    import asyncio
    import concurrent.futures

    from distributed.comm import connect

    async def ask() -> object:
        comm = await connect(scheduler, timeout=timeout)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    try:
        # In a thread of its own: asyncio.run needs one without a running loop (a notebook has one).
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            answer = thread.submit(asyncio.run, asyncio.wait_for(ask(), timeout)).result()
    except TimeoutError:
        raise ConnectError(
            f"--scheduler: {scheduler} accepted the connection but did not answer as a Dask scheduler "
            f"within {timeout:g} s"
        ) from None
    except Exception as err:  # another protocol: anything may come of reading its bytes
        why = f"{type(err).__name__}: {' '.join(str(err).split())}"[:120]
        raise ConnectError(f"--scheduler: {scheduler} does not answer as a Dask scheduler ({why})") from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise ConnectError(f"--scheduler: {scheduler} answered, but not as a Dask scheduler")


def _reachable(scheduler: str) -> None:
    """An OSError at once when nothing listens at a tcp:// address (Dask would retry for its
    whole timeout); other protocols are left to Dask."""
    match = re.fullmatch(r"(?:tcp://)?\[?([^\]/]+?)\]?:(\d+)/?", scheduler)
    if match:
        socket.create_connection((match.group(1), int(match.group(2))), timeout=10).close()
