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
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnlab.experiment import AXIS_COLUMNS, COLUMN_OF, Config, Experiment, ExperimentError, task_columns
from nnlab.functions import CLASSIFICATION, check_pairing, targets
from nnlab.network import accuracy, flat_params, init_network, loss_of
from nnlab.planning import SEEDS_PER_JOB, preview, refuse
from nnlab.sgd import train
from nnlab.tasks import make_task, split

if TYPE_CHECKING:
    import pandas as pd

PARTS = "parts"
MANIFEST_EVERY = 5.0  # seconds: how often a running sweep brings manifest.json's counts up to date
LIST_COLUMNS = ("curve", "params")  # 2-D per job, one list per run in the part files
PART = ".arrow"  # one Arrow IPC file per finished job: quick to write and to read back


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
            net, X, Y, lr=c.lr, epochs=c.epochs, batch_size=c.batch_size, loss=c.loss, threads=threads
        )
    seconds = (time.perf_counter() - start) / len(job.seeds)
    curve = result.loss_curve
    r = len(job.seeds)
    columns = {
        "run_id": [c.run_id(s) for s in job.seeds],
        "experiment": [exp.name] * r,
        "task": [exp.task["kind"]] * r,
        **{name: [value] * r for name, value in task_columns(exp.task).items()},
        "depth": np.full(r, c.depth),
        "width": np.full(r, c.width),
        "hidden": [c.hidden] * r,
        "output": [c.output] * r,
        "bias": np.full(r, c.bias),
        "init": [c.init] * r,
        "init_scale": np.full(r, c.init_scale),
        "loss_fn": [c.loss] * r,
        "lr": np.full(r, c.lr),
        "batch_size": np.full(r, c.batch_size),
        "epochs": np.full(r, c.epochs),
        "seed": np.array(job.seeds, dtype=np.int64),
        "n_params": np.full(r, net.n_params),
        "final_loss": curve[:, -1],
        "best_loss": np.nanmin(np.where(np.isfinite(curve), curve, np.nan), axis=1),
        # epochs_to_threshold is derived from the curve when the parts are merged.
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
    columns["curve"] = curve
    if exp.save_networks:
        columns["params"] = flat_params(result.network)
    return columns


def _part_table(columns: dict):
    """A job's columns as one Arrow table; 2-D arrays (curves, networks) as list columns."""
    import pyarrow as pa

    arrays = {}
    for name, value in columns.items():
        if name in LIST_COLUMNS or (isinstance(value, np.ndarray) and value.ndim == 2):
            rows = np.ascontiguousarray(value)
            offsets = np.arange(0, rows.size + 1, rows.shape[1], dtype=np.int64)
            arrays[name] = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(rows.ravel()))
        else:
            arrays[name] = pa.array(value)
    return pa.table(arrays)


def _write_part(columns: dict, path: Path) -> None:
    """Write a job's part file atomically: a temporary name, then a rename."""
    import pyarrow as pa

    table = _part_table(columns)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, path)


def _read_parts(out: Path, columns: list[str] | None = None, *, parts: Path | None = None, keys=None):
    """Every part file of ``out`` (or of the folder ``parts``; only the jobs ``keys`` when given) as
    one Arrow table (None when there is none)."""
    import pyarrow as pa

    folder = parts if parts is not None else out / PARTS
    paths = sorted(folder.glob(f"job-*{PART}")) if folder.is_dir() else []
    if keys is not None:
        wanted = {f"job-{k}{PART}" for k in keys}
        paths = [p for p in paths if p.name in wanted]
    tables = []
    for path in paths:
        try:
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowInvalid) as err:
            # Parts are renamed into place whole, so only outside damage gets here.
            raise ExperimentError(
                f"{path}: unreadable part file ({err}); delete it and rerun to train its runs again"
            ) from None
        # A column some parts lack (params, before save_networks was on) is left out of those.
        tables.append(table.select([c for c in columns if c in table.column_names]) if columns else table)
    # Missing columns become nulls: say, networks saved only by a rerun with save_networks = true.
    return pa.concat_tables(tables, promote_options="default") if tables else None


def _runs_without_networks(out: Path) -> set[str]:
    """Run ids of the part files that hold no final parameters."""
    import pyarrow.compute as pc

    table = _read_parts(out, ["run_id", "params"])
    if table is None:
        return set()
    ids = table["run_id"].to_numpy(zero_copy_only=False)
    if "params" not in table.column_names:
        return set(ids)
    has = pc.is_valid(table["params"]).to_numpy(zero_copy_only=False)
    return set(ids[~has]) - set(ids[has])


def stored_run_ids(out: Path) -> set[str]:
    """The run ids stored in the part files of ``out``."""
    table = _read_parts(out, ["run_id"])
    return set(table["run_id"].to_pylist()) if table is not None else set()


def check_out_dir(out: Path, exp: Experiment, fresh: bool) -> set[str]:
    """Run ids already stored in ``out``; refuses a folder that is not nnlab's, or one whose stored
    runs the (changed) experiment no longer contains, unless ``fresh`` (which clears them)."""
    if out.exists() and not out.is_dir():
        raise ExperimentError(f"--out: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        ours = (out / "experiment.toml").is_file() or (out / PARTS).is_dir()
        if not ours:
            raise ExperimentError(
                f"--out: {out} is not empty and holds no nnlab results; choose another folder"
            )
    if fresh and (out / PARTS).is_dir():
        for p in (out / PARTS).iterdir():
            p.unlink()
        names = ("runs.parquet", "curves.parquet", "networks.parquet", "manifest.json")
        # The certificates of `nnlab landscape` (nnlab.endpoints) describe the runs discarded here.
        for name in (*names, "endpoints.parquet", "optima.parquet", "barriers.parquet"):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "landscape", ignore_errors=True)
    done = stored_run_ids(out)
    wanted = {c.run_id(s) for c in exp.configs() for s in exp.seeds}
    stale = done - wanted
    if stale:
        raise ExperimentError(
            f"--out: {out} holds {len(stale)} runs that this experiment no longer defines "
            f"({_changes(out, exp)}); rerun with --fresh to start over, or choose another --out"
        )
    return done


def _changes(out: Path, exp: Experiment) -> str:
    """Which fields differ from the folder's experiment.toml, for the refusal message."""
    from nnlab.experiment import load

    try:
        before = load(out / "experiment.toml")
    except (OSError, ValueError):
        return "it changed"
    changed = [
        f"{section}.{key}"
        for section in ("task", "model", "train")
        for key in sorted(set(getattr(exp, section)) | set(getattr(before, section)))
        if getattr(exp, section).get(key) != getattr(before, section).get(key)
    ]
    return "changed: " + ", ".join(changed) if changed else "it changed"


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _work(job: Job, exp: Experiment, threads: int | None) -> tuple[Job, dict | None, str]:
    """run_job, with a failure returned as a message so the other jobs go on."""
    try:
        return job, run_job(job, exp, threads), ""
    except Exception as err:  # reported per job; the sweep goes on and exits 1 at the end
        c = job.config
        where = f"depth={c.depth} width={c.width} lr={c.lr} seeds={job.seeds[0]}..{job.seeds[-1]}"
        return job, None, f"{where}: {type(err).__name__}: {err}"


def _dask_client(scheduler: str | None, jobs: int):
    """A distributed Client on ``scheduler``, or on a new loopback LocalCluster of ``jobs`` worker
    processes; returns (client, cluster or None)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:
        raise ExperimentError(
            "--backend dask: needs the 'distributed' package (pip install 'nnlab[dask]')"
        ) from err
    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError, ValueError) as err:
            raise ExperimentError(f"--scheduler: cannot reach {scheduler}: {err}") from None
    cluster = LocalCluster(
        n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    return Client(cluster), cluster


def parallel(
    work: Callable, todo: list, args: tuple, *, jobs: int, backend: str, scheduler: str | None
) -> Iterator:
    """``work(item, *args)`` for every item of ``todo``, yielded as they finish: in this process when
    ``jobs`` is 1 (and the backend is not dask), else on ``jobs`` loky worker processes (one BLAS
    thread each: the workers already fill the cores) or on a Dask cluster (``scheduler``, or a
    loopback LocalCluster of ``jobs`` workers)."""
    from joblib import Parallel, delayed, parallel_config

    if jobs == 1 and backend != "dask":
        for item in todo:
            yield work(item, *args)
        return
    if backend == "dask":
        client, cluster = _dask_client(scheduler, jobs)
        try:
            with parallel_config(backend="dask"):
                runner = Parallel(n_jobs=-1, return_as="generator_unordered")
                yield from runner(delayed(work)(item, *args) for item in todo)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    with parallel_config(backend=backend, inner_max_num_threads=1):
        runner = Parallel(n_jobs=jobs, return_as="generator_unordered")
        yield from runner(delayed(work)(item, *args) for item in todo)


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

    Returns
    -------
    dict
        The manifest (manifest.json): ``runs_total``, ``runs_done``, ``failures``, ``warnings`` and
        ``sessions``, the last this one with ``runs_trained``, ``runs_reused`` and ``runs_failed``.
        Interrupted (KeyboardInterrupt), the manifest records the session as ``interrupted`` with
        its end and the runs stored, and the interrupt goes on.
    """
    import nnlab

    out = Path(out)
    X, Y, X_test, _ = load_data(exp)  # bad task parameters fail here, before the folder is touched
    check_targets(exp, Y)
    # A sweep that cannot fit (memory) or is absurd (runs, curves, depth) is refused before anything
    # is written or allocated in proportion to its grid (nnlab.planning).
    shape = (len(X), 0 if X_test is None else len(X_test), X.shape[1], Y.shape[1])
    refuse(preview(exp, shape=shape, jobs=jobs, remote=bool(scheduler), check_compiled=False))
    warnings = _target_warnings(exp, Y)
    done = check_out_dir(out, exp, fresh)
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    (out / "experiment.toml").write_text(exp.to_toml(), encoding="utf-8")
    # Runs stored before save_networks was turned on are trained again (to the same numbers) for
    # their networks; merge keeps the copy that has them.
    todo = plan(exp, done - _runs_without_networks(out) if exp.save_networks else done)
    total = len(exp.configs()) * len(exp.seeds)
    finished = total - sum(len(j.seeds) for j in todo)
    started = dt.datetime.now(dt.UTC)
    failures: list[str] = []
    local = jobs == 1 and backend != "dask"
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
    try:
        for job, columns, error in parallel(
            _work, todo, (exp, threads), jobs=jobs, backend=backend, scheduler=scheduler
        ):
            if error:
                failures.append(error)
                session["runs_failed"] += len(job.seeds)
                continue
            _write_part(columns, out / PARTS / f"job-{job.key}{PART}")
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
    merge(out, exp.threshold)
    record(end=True)
    return manifest


def _write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    os.replace(tmp, out / "manifest.json")


def _previous_sessions(out: Path, done: set[str]) -> list[dict]:
    """The sessions recorded by the folder's manifest, when its stored runs are being kept."""
    path = out / "manifest.json"
    if not done or not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text(encoding="utf-8")).get("sessions", []))
    except (OSError, ValueError):
        return []


def merge(out: Path, threshold: float) -> None:
    """Merge the part files into runs.parquet, curves.parquet (and networks.parquet): one row per
    run, sorted by configuration (grid order) and seed; curves sorted by run id and epoch.

    ``epochs_to_threshold`` is recomputed from the curves with ``threshold``: the threshold is not
    part of a run's identity, so a rerun with a new threshold keeps the runs and updates it.
    runs.parquet is written last, so a merge cut short leaves it short and `read_results` merges
    again.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = _read_parts(out)
    if table is None:
        return
    table = _renamed(table)
    # A run stored twice (two sweeps into one folder at once, or trained again for its network
    # once save_networks was turned on): keep the first copy, those with a network first.
    if "params" in table.column_names:
        has = pc.is_valid(table["params"]).to_numpy(zero_copy_only=False)
        table = table.take(np.argsort(~has, kind="stable"))
    _, first = np.unique(table["run_id"].to_numpy(zero_copy_only=False), return_index=True)
    table = table.take(np.sort(first))
    # (Parts from before an axis existed lack its column: sorted by the others.)
    keys = [(k, "ascending") for k in (*AXIS_COLUMNS, "seed", "run_id") if k in table.column_names]
    runs = table.take(pc.sort_indices(table, sort_keys=keys))
    by_id = table.take(pc.sort_indices(table, sort_keys=[("run_id", "ascending")]))
    lengths = pc.list_value_length(by_id["curve"]).to_numpy()
    outputs = {
        "curves.parquet": pa.table(
            {
                "run_id": np.repeat(by_id["run_id"].to_numpy(zero_copy_only=False), lengths),
                "epoch": np.concatenate([np.arange(n) for n in lengths]),
                "loss": pc.list_flatten(by_id["curve"]),
            }
        )
    }
    if "params" in table.column_names:
        saved = by_id.filter(pc.is_valid(by_id["params"]))
        outputs["networks.parquet"] = saved.select(["run_id", "params"])
    # Through pandas, so that the parquet metadata keeps epochs_to_threshold a nullable integer.
    # (Parts written by older versions carry a stored epochs_to_threshold: derived again here.)
    derived = [*LIST_COLUMNS, "epochs_to_threshold"]
    frame = runs.drop_columns([c for c in derived if c in runs.column_names]).to_pandas()
    frame.insert(
        frame.columns.get_loc("best_loss") + 1,
        "epochs_to_threshold",
        pd.array(_first_below(runs["curve"], threshold), dtype="Int64"),
    )
    writers = {name: (lambda path, t=t: pq.write_table(t, path)) for name, t in outputs.items()}
    writers["runs.parquet"] = lambda path: frame.to_parquet(path, index=False)
    for name, write in writers.items():
        tmp = out / f".{name}.{os.getpid()}.tmp"
        write(tmp)
        os.replace(tmp, out / name)


def _renamed(table):
    """An Arrow table of runs with the columns of older versions under their names now (parts
    written before the loss's name became ``loss_fn``; a mix of old and new parts is coalesced)."""
    import pyarrow.compute as pc

    for old, new in COLUMN_OF.items():
        if old in table.column_names:
            column = table[old]
            if new in table.column_names:
                column = pc.coalesce(table[new], column)
                table = table.drop_columns([new])
            table = table.set_column(table.column_names.index(old), new, column)
    return table.select(_column_order(table.column_names))


def _column_order(columns: list[str]) -> list[str]:
    """runs.parquet's columns in its order: the task's fields right after ``task`` (a part file of an
    older version, merged first, would put them last)."""
    fields = sorted(c for c in columns if c.startswith("task_"))
    rest = [c for c in columns if c not in fields]
    at = rest.index("task") + 1 if "task" in rest else 0
    return [*rest[:at], *fields, *rest[at:]]


def upgrade(runs: pd.DataFrame, exp: Experiment) -> pd.DataFrame:
    """runs.parquet of an older version as this one writes it: ``loss`` (the loss's name) renamed
    ``loss_fn``, and the ``task_<field>`` columns filled in from the experiment where they are
    missing (every run of a folder has the experiment's task)."""
    import pandas as pd

    runs = runs.rename(columns={old: new for old, new in COLUMN_OF.items() if new not in runs})
    runs = runs.drop(columns=[old for old in COLUMN_OF if old in runs and COLUMN_OF[old] in runs])
    at = runs.columns.get_loc("task") + 1 if "task" in runs else 0
    for name, value in reversed(task_columns(exp.task).items()):
        if name not in runs:
            runs.insert(at, name, [value] * len(runs))
        elif runs[name].isna().any() and value is not None:
            # Runs merged from parts of both versions: the experiment's value, in its own type.
            runs[name] = pd.Series([value] * len(runs), index=runs.index)
    return runs[_column_order(list(runs.columns))]


def _first_below(curves, threshold: float) -> list[int | None]:
    """Per curve (an Arrow list column), the first epoch whose loss is below ``threshold``."""
    import pyarrow.compute as pc

    lengths = pc.list_value_length(curves).to_numpy()
    loss = pc.list_flatten(curves).to_numpy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    epoch = np.arange(loss.size) - np.repeat(starts, lengths)
    never = np.iinfo(np.int64).max
    first = np.minimum.reduceat(np.where(loss < threshold, epoch, never), starts)
    return [None if e == never else int(e) for e in first]


@dataclass(frozen=True, eq=False)
class Results:
    """A results folder, read back.

    Attributes
    ----------
    experiment : Experiment
        The resolved experiment (experiment.toml).
    runs, curves : DataFrame
        The tables (from runs.parquet and curves.parquet, or from the part files of a sweep that
        was interrupted before its merge).
    total : int
        The runs the experiment defines; ``len(runs) < total`` means a partial sweep.
    """

    path: Path
    experiment: Experiment
    runs: pd.DataFrame
    curves: pd.DataFrame | None
    total: int

    @property
    def partial(self) -> bool:
        """True while fewer runs are stored than the experiment defines."""
        return len(self.runs) < self.total


def read_results(out: Path, *, curves: bool = True) -> Results:
    """Read a results folder written by `run`; ExperimentError when it holds no nnlab results or no
    run yet. An interrupted sweep's part files are merged (into the folder) first."""
    import pandas as pd

    from nnlab.experiment import load

    out = Path(out)
    if not out.is_dir():
        raise ExperimentError(f"{out}: no such results folder")
    if not (out / "experiment.toml").is_file():
        raise ExperimentError(f"{out}: holds no nnlab results (no experiment.toml); run `nnlab run` first")
    exp = load(out / "experiment.toml")
    stored = stored_run_ids(out)
    if not stored and not (out / "runs.parquet").is_file():
        raise ExperimentError(f"{out}: no run is stored yet; run `nnlab run` on its experiment first")
    runs_path = out / "runs.parquet"
    if stored and (
        not runs_path.is_file()
        or not (out / "curves.parquet").is_file()
        or len(pd.read_parquet(runs_path, columns=["run_id"])) < len(stored)
    ):
        merge(out, exp.threshold)  # the sweep was interrupted before it merged its parts
    runs = upgrade(pd.read_parquet(runs_path), exp)
    table = pd.read_parquet(out / "curves.parquet") if curves else None
    return Results(out, exp, runs, table, len(exp.configs()) * len(exp.seeds))


def read_networks(out: Path, runs: pd.DataFrame) -> dict[str, np.ndarray]:
    """The final parameters (n_params,) of each run of ``runs`` stored in ``out``/networks.parquet
    (experiments with ``save_networks = true``), by run id; empty when none were saved."""
    import pyarrow.parquet as pq

    path = Path(out) / "networks.parquet"
    if not path.is_file():
        return {}
    table = pq.read_table(path)
    wanted = set(runs["run_id"])
    ids = table["run_id"].to_pylist()
    params = table["params"].to_pylist()
    return {i: np.asarray(p) for i, p in zip(ids, params, strict=True) if i in wanted and p is not None}
