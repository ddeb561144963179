"""The sweep runner: an experiment's grid of runs, trained in jobs, stored as they finish.

A run is (configuration, seed). Runs are grouped into jobs (a configuration and a chunk of its
seeds, trained together on the engine's replica axis), run through joblib, and each finished job is
written at once as one part file (its runs and their curves; written to a temporary name and
renamed), so an interrupted sweep loses at most the jobs in flight and a rerun skips every stored
run. At the end the parts are merged into runs.parquet and curves.parquet, next to experiment.toml
(resolved) and manifest.json.

pandas and pyarrow are imported where they are used: worker processes only train, and starting
one without them saves about half a second.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnlab.functions import CLASSIFICATION, check_pairing, targets
from nnlab.network import accuracy, flat_params, init_network, loss_of
from nnlab.schema import AXES, COLUMN_OF, Config
from nnlab.sgd import train
from nnlab.sweep import folder, workers
from nnlab.sweep.experiment import Experiment, ExperimentError, task_columns
from nnlab.sweep.planning import SEEDS_PER_JOB, data_shape, preview, refuse
from nnlab.sweep.store import (
    PART,
    PARTS,
    check_out_dir,
    check_out_path,
    curve_statistics,
    merge,
    recorded_epochs,
    runs_without_networks,
    stale_runs,
    stored_run_ids,
    write_part,
)
from nnlab.tasks import make_task, split

if TYPE_CHECKING:
    pass
MANIFEST_EVERY = 5.0  # seconds: how often a running sweep brings manifest.json's counts up to date


@dataclass(frozen=True)
class Job:
    """One configuration and a chunk of its seeds."""

    config: Config
    seeds: tuple[int, ...]

    @property
    def key(self) -> str:
        """16 hex digits naming the job (its configuration and seeds): its part file is job-KEY.arrow."""
        return hashlib.sha256(f"{self.config.key}|{self.seeds}".encode()).hexdigest()[:16]


def load_data(exp: Experiment) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The experiment's training data and held-out split (None without test_fraction)."""
    params = {k: v for k, v in exp.task.items() if k not in ("kind", "test_fraction")}
    try:
        X, Y = make_task(exp.task["kind"], params)
        if exp.task["test_fraction"] > 0:
            return split(X, Y, test_fraction=exp.task["test_fraction"], seed=exp.task["seed"])
    except ValueError as err:
        # The tasks name their own parameters ("n: ..."); in an experiment they live in [task].
        message = str(err)
        raise ExperimentError(message if message.startswith("task") else f"task.{message}") from None
    return X, Y, None, None


# Output activations with a bounded range: a target outside it can never be fitted.
_OUTPUT_RANGE = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0)}


def _target_warnings(exp: Experiment, Y: np.ndarray) -> list[str]:
    """A warning per bounded output activation of the experiment that its targets leave."""
    out = []
    for name in _values(exp.model["output"]):
        lo, hi = _OUTPUT_RANGE.get(name, (-np.inf, np.inf))
        if Y.size and (Y.min() < lo or Y.max() > hi):
            out.append(
                f"task: targets span [{Y.min():g}, {Y.max():g}], outside the range [{lo:g}, {hi:g}] of "
                f"model.output = {name!r}; the loss cannot reach zero (scale the targets)"
            )
    return out


def _values(value) -> list:
    return value if isinstance(value, list) else [value]


def check_targets(exp: Experiment, Y: np.ndarray) -> None:
    """An ExperimentError unless every loss of the grid accepts the task's targets Y (n, out), with
    every output activation for that many units."""
    hints = {
        ("digits", "cross_entropy"): ' (set task.encoding = "onehot")',
        ("digits", "hinge"): " (set task.target = 1)",
        ("file", "cross_entropy"): " (a column of class labels: set task.classes)",
    }
    for loss in _values(exp.train["loss"]):
        for output in _values(exp.model["output"]):
            try:
                check_pairing(output, loss, Y.shape[1])
            except ValueError as err:
                raise ExperimentError(f"model.output, train.loss: {err}") from None
        try:
            targets(loss, Y, Y.shape[1])
        except ValueError as err:
            message = str(err).removeprefix("Y: ")
            hint = hints.get((exp.task["kind"], loss), "")
            raise ExperimentError(f"task: its targets do not suit train.loss: {message}{hint}") from None


def plan(exp: Experiment, done: set[str]) -> list[Job]:
    """Jobs for the runs not in ``done``, SEEDS_PER_JOB seeds at most per job."""
    jobs = []
    for config in exp.configs():
        todo = [s for s in exp.seeds if config.run_id(s) not in done]
        for i in range(0, len(todo), SEEDS_PER_JOB):
            jobs.append(Job(config, tuple(todo[i : i + SEEDS_PER_JOB])))
    # Largest first, so the workers finish together (the order never changes a run's numbers).
    return sorted(jobs, key=lambda j: -_cost(j.config) * len(j.seeds))


def _cost(c: Config) -> float:
    """Relative work of one run: parameters (without the data's sizes) times epochs."""
    return (c.width * c.width * max(c.depth - 1, 0) + 4 * c.width) * c.epochs / c.batch_size


def run_job(job: Job, exp: Experiment, threads: int | None) -> dict[str, np.ndarray | list]:
    """Train one job; returns its runs as columns (one entry per seed, as in runs.parquet) plus
    ``curve``, the loss curves shaped (seeds, epochs + 1), and with ``save_networks`` ``params``,
    the final networks shaped (seeds, n_params) (see `nnlab.network.flat_params`).

    Plain numpy and lists: a worker process needs neither pandas nor pyarrow.
    """
    c = job.config
    X, Y, X_test, Y_test = load_data(exp)
    sizes = [X.shape[1], *c.sizes_hidden, Y.shape[1]]
    net = init_network(
        sizes,
        seeds=list(job.seeds),
        hidden=c.hidden,
        output=c.output,
        bias=c.bias,
        init=c.init,
        scale=c.init_scale,
    )
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        result = train(
            net,
            X,
            Y,
            lr=c.lr,
            epochs=c.epochs,
            batch_size=c.batch_size,
            loss=c.loss,
            threads=threads,
            **c.optimizer_fields,
        )
    seconds = (time.perf_counter() - start) / len(job.seeds)
    curve = result.loss_curve
    r = len(job.seeds)
    columns = {
        "run_id": [c.run_id(s) for s in job.seeds],
        "experiment": [exp.name] * r,
        "task": [exp.task["kind"]] * r,
        **{name: [value] * r for name, value in task_columns(exp.task).items()},
        # Every axis (nnlab.schema.Config's fields), under its runs.parquet name.
        **{COLUMN_OF.get(a, a): [getattr(c, a)] * r for a in AXES},
        "seed": np.array(job.seeds, dtype=np.int64),
        "n_params": np.full(r, net.n_params),
        "final_loss": curve[:, -1],
        "best_loss": np.nanmin(np.where(np.isfinite(curve), curve, np.nan), axis=1),
        "final_grad_norm": result.grad_norm,
        "diverged": result.diverged,
        "seconds": np.full(r, seconds),
    }
    with np.errstate(all="ignore"):
        if X_test is not None:
            columns["test_loss"] = loss_of(result.network, X_test, Y_test, loss=c.loss)
        if c.loss in CLASSIFICATION:
            columns["train_accuracy"] = accuracy(result.network, X, Y, loss=c.loss)
            if X_test is not None:
                columns["test_accuracy"] = accuracy(result.network, X_test, Y_test, loss=c.loss)
    # From every epoch, whatever is kept of the curve (merge counts them again from a whole curve).
    columns.update(curve_statistics(curve, exp.threshold))
    kept = recorded_epochs(c.epochs, exp.train.get("record", "all"))
    if len(kept) < curve.shape[1]:
        columns["curve_epochs"] = np.broadcast_to(kept, (r, len(kept)))
        curve = curve[:, kept]
    columns["curve"] = curve
    if exp.save_networks:
        columns["params"] = flat_params(result.network)
    return columns


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def dry_run(exp: Experiment, out: Path, *, jobs: int = 1, scheduler: str | None = None):
    """The plan (`nnlab.sweep.planning.Plan`) of running ``exp`` into ``out``, the runs stored there
    counted as done; reads the data's shape only, writes nothing (``nnlab run --dry-run``)."""
    out = Path(out)
    done = stored_run_ids(out) if out.is_dir() else set()
    return preview(exp, shape=data_shape(exp), jobs=jobs, done=done, remote=bool(scheduler))


def _train_and_store(job: Job, exp: Experiment, threads: int | None, parts: Path) -> int:
    """`run_job`, its part file written where it ran; returns the number of runs."""
    write_part(run_job(job, exp, threads), parts / f"job-{job.key}{PART}")
    return len(job.seeds)


def _where(job: Job) -> str:
    """A job as its failure message names it."""
    c = job.config
    return f"depth={c.depth} width={c.width} lr={c.lr} seeds={job.seeds[0]}..{job.seeds[-1]}"


def run(
    exp: Experiment,
    out: Path,
    *,
    jobs: int = 1,
    fresh: bool = False,
    backend: str = "loky",
    scheduler: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_compile: Callable[[list[str]], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> dict:
    """Run (or resume) the sweep into ``out``; returns the manifest.

    Parameters
    ----------
    exp : Experiment
    out : Path
        Results folder: parts/, runs.parquet, curves.parquet, experiment.toml, manifest.json.
    jobs : int
        Worker processes (joblib), each training with one engine thread; 1 runs the jobs in this
        process, one thread.
    fresh : bool
        Discard stored runs first.
    backend : {"loky", "dask"}
        joblib backend for jobs > 1; "dask" runs the jobs on a Dask cluster (``scheduler``, or a
        loopback LocalCluster of ``jobs`` worker processes).
    scheduler : str, optional
        Address of an existing Dask scheduler.
    on_progress : callable, optional
        Called with (runs done, runs total) after each job.
    on_compile : callable, optional
        Called, before any job runs, with the layouts (`nnlab.sgd.layout`) the jobs will compile on
        first use (not in numba's disk cache yet; 20-40 s each), when there are any.
    on_notice : callable, optional
        Called with a line to show when a worker process was lost (see `nnlab.sweep.workers`).

    Returns
    -------
    dict
        The manifest (manifest.json): ``runs_total``, ``runs_done``, ``failures``, ``warnings`` and
        ``sessions``, the last this one with ``runs_trained``, ``runs_reused`` and ``runs_failed``.
        Interrupted (KeyboardInterrupt), the manifest records the session as ``interrupted`` with
        its end and the runs stored, and the interrupt goes on.

    Raises
    ------
    ExperimentError
        Bad input, before anything is written: the experiment, its data, an unusable ``out``, or a
        folder holding runs of another experiment.
    nnlab.sweep.folder.FolderBusy
        Another process is writing into ``out``.
    nnlab.sweep.folder.StorageError
        A file could not be written (disk full, permissions); every part file already written is
        kept, and a rerun resumes.
    """
    out = Path(out)
    X, Y, X_test, _ = load_data(exp)  # bad task parameters fail here, before the folder is touched
    check_targets(exp, Y)
    # A sweep that cannot fit (memory) or is absurd (runs, curves, depth) is refused before anything
    # is written or allocated in proportion to its grid (nnlab.sweep.planning).
    shape = (len(X), 0 if X_test is None else len(X_test), X.shape[1], Y.shape[1])
    refuse(preview(exp, shape=shape, jobs=jobs, remote=bool(scheduler), check_compiled=False))
    check_out_path(out)
    # Dask connects first, so that an unreachable scheduler leaves no folder behind.
    with (
        workers.Pool(jobs=jobs, backend=backend, scheduler=scheduler, notify=on_notice) as pool,
        folder.locked(out, "nnlab run"),
    ):
        return _sweep(
            exp,
            out,
            pool,
            fresh=fresh,
            X=X,
            Y=Y,
            on_progress=on_progress,
            on_compile=on_compile,
            on_notice=on_notice,
        )


def _sweep(
    exp: Experiment,
    out: Path,
    pool: workers.Pool,
    *,
    fresh: bool,
    X: np.ndarray,
    Y: np.ndarray,
    on_progress,
    on_compile,
    on_notice=None,
) -> dict:
    """`run`, once the folder is locked and the workers are ready."""
    import nnlab

    jobs, backend, scheduler = pool.jobs, pool.backend, pool.scheduler
    warnings = _target_warnings(exp, Y)
    folder.clean_orphans(out, PARTS)
    done = check_out_dir(out, exp, fresh)
    folder.make_dir(out / PARTS)
    folder.atomic_write_text(out / "experiment.toml", exp.to_toml())
    # Runs stored before save_networks was turned on are trained again (to the same numbers) for
    # their networks; merge keeps the copy that has them.
    # Runs whose curves were thinned and counted at another threshold are trained again too.
    again = stale_runs(out, exp.threshold) | (runs_without_networks(out) if exp.save_networks else set())
    todo = plan(exp, done - again)
    total = len(exp.configs()) * len(exp.seeds)
    finished = total - sum(len(j.seeds) for j in todo)
    started = dt.datetime.now(dt.UTC)
    failures: list[str] = []
    local = pool.local
    before = _previous_sessions(out, done)
    session = {
        "git_commit": _git_commit(),
        "start": started.isoformat(),
        "end": None,  # stays null in the manifest of a session that was killed
        "jobs": jobs,
        "backend": "in-process" if local else backend,
        "runs_trained": None,
        "runs_reused": finished,
        "runs_failed": 0,
        "interrupted": False,
    }
    manifest = {
        "experiment": exp.name,
        "nnlab": nnlab.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        # The latest session's commit, times, jobs and backend at the top, as before sessions.
        **{k: session[k] for k in ("git_commit", "start", "end", "jobs", "backend")},
        "scheduler": scheduler,
        "runs_total": total,
        "runs_done": finished,
        "failures": failures,
        "warnings": warnings,
        # Every session that wrote into this folder (a resumed sweep has several), oldest first.
        "sessions": [*before, session],
    }
    _write_manifest(out, manifest)
    if on_progress:
        on_progress(finished, total)
    if on_compile and todo and not scheduler:
        from nnlab.sgd import layout, uncompiled

        sizes = {(tuple(j.config.sizes_hidden), j.config.batch_size) for j in todo}
        missing = uncompiled(sorted({layout([X.shape[1], *h, Y.shape[1]], b) for h, b in sizes}))
        if missing:
            on_compile(missing)
    # --jobs N is N-way parallelism: N worker processes with one engine thread each, or this
    # process alone with one thread (so --jobs 1 is strictly serial).
    threads = 1
    reused = finished

    def record(*, end: bool = False, **more) -> None:
        session.update(runs_trained=finished - reused, **more)
        manifest["runs_done"] = finished
        if end:
            session["end"] = manifest["end"] = dt.datetime.now(dt.UTC).isoformat()
        _write_manifest(out, manifest)

    written = time.monotonic()
    store = pool.shared_disk  # see there: the workers then write their part files themselves
    work, args = (_train_and_store, (exp, threads, out / PARTS)) if store else (run_job, (exp, threads))
    try:
        for job, columns, error in pool.map(work, todo, args, describe=_where):
            if error:
                failures.append(error)
                session["runs_failed"] += len(job.seeds)
                continue
            if not store:
                write_part(columns, out / PARTS / f"job-{job.key}{PART}")
            finished += len(job.seeds)
            if on_progress:
                on_progress(finished, total)
            if time.monotonic() - written > MANIFEST_EVERY:  # a killed session's counts stay near true
                record()
                written = time.monotonic()
    except BaseException as err:
        # Ctrl-C, or an error: the parts written so far are this session's runs; say so truthfully
        # (if the manifest can be written: the error itself may be a full disk).
        with contextlib.suppress(OSError):
            if isinstance(err, KeyboardInterrupt):
                record(end=True, interrupted=True)
            else:
                record(end=True, error=f"{type(err).__name__}: {err}")
        raise
    if pool.stopped:
        manifest["stopped"] = pool.stopped
        manifest["stopped_jobs"] = pool.stopped_jobs
    # (The tables' SHA-256, so that a reader can tell one edited by hand: store.edited_tables.)
    manifest["tables"] = merge(out, exp.threshold, on_progress=on_notice)
    record(end=True)
    return manifest


def _write_manifest(out: Path, manifest: dict) -> None:
    folder.atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2))


def _previous_sessions(out: Path, done: set[str]) -> list[dict]:
    """The sessions recorded by the folder's manifest, when its stored runs are being kept (none
    from a manifest that is not one: edited by hand, or cut short)."""
    path = out / "manifest.json"
    if not done or not path.is_file():
        return []
    try:
        sessions = json.loads(path.read_text(encoding="utf-8")).get("sessions", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [x for x in sessions if isinstance(x, dict)] if isinstance(sessions, list) else []
