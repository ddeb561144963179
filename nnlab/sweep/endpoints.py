"""Certify every stored end point of a results folder: ``nnlab landscape DIR``.

The runs' final networks (networks.parquet, from ``save_networks = true``) are polished and
classified by `nnlab.landscape.certify` in jobs of up to PER_JOB end points of one configuration,
run like the sweep's (in process, on loky workers or on a Dask cluster), each written at once as a
part file under DIR/landscape/parts/ (a temporary name, then a rename), so an interrupted run loses
at most the jobs in flight and a rerun resumes. A job's key hashes its configuration, its runs, the
certification options, the threshold, the procedure's version (`nnlab.landscape.polish.PROCEDURE`)
and the escape test's columns (`ESCAPE_COLUMNS`): other options make other jobs, and the parts of
jobs no longer planned are removed once the folder is complete.

At the end the parts are merged, the certified minima of each configuration grouped into distinct
optima (`nnlab.landscape.distinct_optima`, then joined into connected flat families:
`nnlab.landscape.flat_families`), and the barriers between them (and to the nearest
solved network) measured, into three tables:

- DIR/endpoints.parquet, one row per certified run: ``run_id``, ``kind``, ``start_loss``,
  ``polished_loss``, ``grad_norm``, ``lambda_min``, ``lambda_max``, ``n_flat``, ``n_negative``,
  ``n_symmetry``, ``displacement``, ``norm_start``, ``norm_end``, ``optimum`` (missing unless a
  minimum), ``params`` (polished, flattened like networks.parquet) and ``spectrum``;
- DIR/optima.parquet, one row per distinct optimum and configuration;
- DIR/barriers.parquet, one row per pair of optima of a configuration, and per optimum to its
  nearest solved network;
- DIR/splits.parquet (`split_optima`), one row per hidden unit of each optimum's representative
  split into width + 1 and certified again: does one more unit open a way down?
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnlab.landscape import Options, barrier, certify, distinct_optima, flat_families, loss_margin
from nnlab.landscape import slices as pictures
from nnlab.landscape.escape import escape
from nnlab.landscape.paths import bezier
from nnlab.landscape.polish import PROCEDURE
from nnlab.landscape.splitting import split_unit
from nnlab.network import flat_params, init_network, loss_of, network_from_flat
from nnlab.schema import (
    AXIS_COLUMNS,
    BARRIER_COLUMNS,
    ENDPOINT_COLUMNS,
    ENDPOINT_NUMBERS,
    KINDS,
    OPTIMA_COLUMNS,
    SPLIT_COLUMNS,
    SPLITS_TABLE,
    Config,
)
from nnlab.schema import LANDSCAPE_TABLES as TABLES
from nnlab.sweep import folder, workers
from nnlab.sweep.experiment import Experiment, ExperimentError
from nnlab.sweep.runner import load_data
from nnlab.sweep.store import (
    PART,
    check_results_folder,
    part_files,
    read_networks,
    read_parts,
    read_results,
    write_part,
)

if TYPE_CHECKING:
    import pandas as pd

LANDSCAPE = "landscape"
PER_JOB = 16  # end points per job: a few seconds of work each, so progress moves and kills cost little
BARRIER_POINTS = 33
SPLIT_A = 0.5  # the share of the outgoing weights the original unit keeps; its copy gets 1 - a
SPLIT_UNITS = 32  # at most this many hidden units of an optimum are split (the first, layer by layer)
# ... and at most SPLIT_WORK / (the split network's parameters), at least one: a certificate costs
# about its parameter count (and more), so wide networks get fewer splits.
SPLIT_WORK = 50_000
SLICES = 8  # landscape pictures: at most this many end points (one per kind per configuration)
SLICE_WORK = 5_000_000  # ... and only of networks with parameters x samples at most this (else skipped)
SLICE_SEED = 20180101  # the Generator of the slices' random directions (with nothing else: fixed)


@dataclass(frozen=True, eq=False)
class EndpointJob:
    """Stored end points of one configuration: their run ids and final parameters (k, P)."""

    config: Config
    run_ids: tuple[str, ...]
    params: np.ndarray
    key: str


def _architecture(exp: Experiment, config: Config) -> tuple[list[int], np.ndarray, np.ndarray]:
    X, Y, _, _ = load_data(exp)
    return [X.shape[1], *config.sizes_hidden, Y.shape[1]], X, Y


def _job_key(config: Config, run_ids: tuple[str, ...], options: Options, threshold: float) -> str:
    text = json.dumps(
        {
            "config": config.key,
            "runs": run_ids,
            "options": dataclasses.asdict(options),
            "threshold": threshold,
            "procedure": PROCEDURE,
            # (A part holds these columns: parts made before one was added are redone, not mixed in.)
            "escape": ESCAPE_COLUMNS,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan(exp: Experiment, runs: pd.DataFrame, params: dict, options: Options) -> list[EndpointJob]:
    """The jobs that certify every run of ``runs`` whose network is in ``params`` (run id -> flat)."""
    stored = set(runs["run_id"])
    jobs = []
    for config in exp.configs():
        ids = [i for i in (config.run_id(s) for s in exp.seeds) if i in params and i in stored]
        for start in range(0, len(ids), PER_JOB):
            chunk = tuple(ids[start : start + PER_JOB])
            key = _job_key(config, chunk, options, exp.threshold)
            jobs.append(EndpointJob(config, chunk, np.stack([params[i] for i in chunk]), key))
    return jobs


# An eigen-solver (LAPACK's, ARPACK's) that does not converge on an end point: that end point is
# `unconverged`, with the solver's words as its ``reason``, never the end of its job.
def _solver_errors() -> tuple[type[BaseException], ...]:
    from scipy.sparse.linalg import ArpackError, ArpackNoConvergence

    return (np.linalg.LinAlgError, ArpackNoConvergence, ArpackError, FloatingPointError)


def _rows(cert) -> list[dict]:
    """A certificate's replicas as one row each."""
    params = flat_params(cert.network)
    return [
        {
            "kind": str(cert.kind[r]),
            **{name: float(getattr(cert, name)[r]) for name in ENDPOINT_NUMBERS},
            "params": params[r],
            "spectrum": np.asarray(cert.spectrum[r], dtype=np.float64),
            "condition": float(cert.condition[r]),
            "saddle_order": int(cert.saddle_order[r]),
            "mechanism": str(cert.mechanism[r]),
            "reason": str(cert.reason[r]),
            "borderline": bool(cert.borderline[r]),
            "iterations": int(cert.iterations[r]),
        }
        for r in range(len(cert.kind))
    ]


def _unconverged(params: np.ndarray, start_loss: float, error: BaseException) -> dict:
    """The row of an end point whose eigen-solver did not converge: its start, and why."""
    norm = float(np.linalg.norm(params))
    return {
        "kind": "unconverged",
        **dict.fromkeys(ENDPOINT_NUMBERS, np.nan),
        "start_loss": float(start_loss),
        "norm_start": norm,
        "params": params,
        "spectrum": np.zeros(0),
        "condition": np.nan,
        "saddle_order": 0,
        "mechanism": "",
        "reason": " ".join(f"{type(error).__name__}: {error}".split())[:200],
        "borderline": False,
        "iterations": 0,
    }


def certify_job(job: EndpointJob, exp: Experiment, options: Options) -> dict:
    """Certify one job's end points; plain numpy columns, one entry per run (see the module).

    An end point whose parameters, their norm or its loss are not finite (a diverged run) is
    skipped: it has no row (`landscape` names it). One on which an eigen-solver does not converge
    is `unconverged`, its ``reason`` the solver's message; every other row's reason is empty."""
    c = job.config
    sizes, X, Y = _architecture(exp, c)
    net = network_from_flat(job.params, sizes, bias=c.bias, hidden=c.hidden, output=c.output)
    with np.errstate(all="ignore"):
        start = loss_of(net, X, Y, loss=c.loss)
        # (Weights of 1e299 are finite, but their norm, and every curvature, overflows.)
        norm = np.linalg.norm(job.params, axis=1)
    keep = np.flatnonzero(np.isfinite(job.params).all(axis=1) & np.isfinite(norm) & np.isfinite(start))

    def one(r: int) -> list[dict]:
        single = network_from_flat(job.params[[r]], sizes, bias=c.bias, hidden=c.hidden, output=c.output)
        try:
            return _rows(certify(single, X, Y, threshold=exp.threshold, loss=c.loss, options=options))
        except _solver_errors() as err:
            return [_unconverged(job.params[r], start[r], err)]

    rows: list[dict] = []
    if len(keep):
        batch = network_from_flat(job.params[keep], sizes, bias=c.bias, hidden=c.hidden, output=c.output)
        try:
            rows = _rows(certify(batch, X, Y, threshold=exp.threshold, loss=c.loss, options=options))
        except _solver_errors():
            rows = [row for r in keep for row in one(int(r))]  # which of them: each on its own
    width = max([1, *(len(row["spectrum"]) for row in rows)])
    spectrum = np.full((len(rows), width), np.nan)
    for r, row in enumerate(rows):
        spectrum[r, : len(row["spectrum"])] = row["spectrum"]
    escapes = [_escape(job.params[r], sizes, X, Y, exp, c, options, job.run_ids[r]) for r in keep]
    return {
        "run_id": np.array([job.run_ids[r] for r in keep], dtype=np.str_),
        "kind": np.array([row["kind"] for row in rows], dtype=np.str_),
        # Counts as floats in the parts (NaN for a solved end point), nullable ints in the table.
        **{name: np.array([row[name] for row in rows], dtype=np.float64) for name in ENDPOINT_NUMBERS},
        "condition": np.array([row["condition"] for row in rows], dtype=np.float64),
        "saddle_order": np.array([row["saddle_order"] for row in rows], dtype=np.int64),
        "mechanism": np.array([row["mechanism"] for row in rows], dtype=np.str_),
        "reason": np.array([row["reason"] for row in rows], dtype=np.str_),
        "borderline": np.array([row["borderline"] for row in rows], dtype=bool),
        "iterations": np.array([row["iterations"] for row in rows], dtype=np.int64),
        "params": np.array([row["params"] for row in rows]).reshape(len(rows), job.params.shape[1]),
        "spectrum": spectrum,
        **{
            name: np.array([e[i] for e in escapes], dtype=np.float64) for i, name in enumerate(ESCAPE_COLUMNS)
        },
    }


# The escape test's columns (`_escape`); the last two are the first stream alone, the run's
# continuation in its Kaplan-Meier curve (`nnlab.analysis.survival_times`): its epochs to the
# threshold (NaN if it never got there) and the epochs every stream ran.
ESCAPE_COLUMNS = ("escape", "escape_lo", "escape_hi", "escape_epochs", "escape_first", "escape_length")


def _escape(
    params, sizes, X, Y, exp: Experiment, c: Config, options: Options, run_id: str
) -> tuple[float, ...]:
    """The SGD escape test of one trained end point (`nnlab.landscape.escape`): SGD resumed from
    where it stopped (not from the polished point), at the run's learning rate and batch size, with
    ``options.escape_streams`` fresh streams for ``options.escape_budget`` times its epochs: (the
    share of streams that reached the threshold, its Wilson interval, the median epochs of those
    that did, the first stream's epochs to the threshold, the epochs each stream ran); NaN for an
    end point SGD already solved or a diverged one."""
    net = network_from_flat(params[None, :], sizes, bias=c.bias, hidden=c.hidden, output=c.output)
    with np.errstate(all="ignore"):
        final = float(loss_of(net, X, Y, loss=c.loss)[0])
    if not np.isfinite(final) or final < exp.threshold:
        return (np.nan,) * len(ESCAPE_COLUMNS)
    found = escape(
        net,
        X,
        Y,
        threshold=exp.threshold,
        lr=c.lr,
        budget=c.epochs,
        K=options.escape_streams,
        M=options.escape_budget,
        batch_size=c.batch_size,
        loss=c.loss,
        seed=int(run_id, 16),  # a stream family per run, the same on every machine
    )
    epochs = float(np.nanmedian(found.epochs)) if found.escaped.any() else np.nan
    length = float(found.loss_curve.shape[1] - 1)
    return found.probability, found.lo, found.hi, epochs, float(found.epochs[0]), length


def _work(job: EndpointJob, exp: Experiment, options: Options, parts: Path | None) -> dict | None:
    """certify_job; its part file written into ``parts`` when given (then None comes back)."""
    with np.errstate(all="ignore"):
        columns = certify_job(job, exp, options)
    if parts is None:
        return columns
    write_part(columns, parts / f"job-{job.key}{PART}")
    return None


def _where(job: EndpointJob) -> str:
    c = job.config
    return f"depth={c.depth} width={c.width} lr={c.lr} ({len(job.run_ids)} runs)"


def landscape(
    out: Path,
    *,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    options: Options | None = None,
    fresh: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> dict:
    """Certify (or resume certifying) every stored end point of the results folder ``out``.

    Parameters
    ----------
    out : Path
        A results folder of `nnlab.sweep.run` whose experiment saved its networks.
    jobs, backend, scheduler
        Parallelism, as for `nnlab.sweep.run`.
    options : Options, optional
        Budgets and tolerances of `nnlab.landscape.certify` (its defaults when not given).
    fresh : bool
        Discard the stored certificates first.
    on_progress : callable, optional
        Called with (end points done, total) after each job.
    on_notice : callable, optional
        Called with a line to show when a worker process was lost.

    Returns
    -------
    dict
        ``total`` end points, ``done``, of them ``certified`` now and ``reused`` (stored by an
        earlier session), ``failed`` (in jobs that failed), ``failures`` (messages), ``kinds``
        (count per kind), ``optima`` (distinct optima over all configurations),
        ``without_networks`` (runs whose network was not saved), ``skipped`` (the run ids of
        diverged end points: parameters or loss not finite, so no row), ``written`` (the tables
        written: none when no job finished).
    """
    out = Path(out)
    options = options or Options()
    check_results_folder(out)  # (before the lock: it would make its file in any folder)
    # The lock first: reading may merge the tables, and a running sweep's folder is never written.
    with folder.locked(out, "nnlab landscape"):
        results = read_results(out, curves=False, held=True)
        params = read_networks(out, results.runs)
        if not params:
            raise ExperimentError(
                f"{out}: no saved networks to certify; set save_networks = true in the experiment and "
                "rerun `nnlab run` on it (stored runs are trained again, to the same numbers, for their "
                "networks)"
            )
        with workers.Pool(jobs=jobs, backend=backend, scheduler=scheduler, notify=on_notice) as pool:
            return _landscape(results, params, pool, options, fresh=fresh, on_progress=on_progress)


def _landscape(
    results, params: dict, pool: workers.Pool, options: Options, *, fresh: bool, on_progress
) -> dict:
    """`landscape`, once the folder is locked and the workers are ready."""
    out, exp = results.path, results.experiment
    parts = out / LANDSCAPE / "parts"
    folder.clean_orphans(out, LANDSCAPE, f"{LANDSCAPE}/parts")
    if fresh:
        for p in folder.entries(parts):
            folder.remove(p)
        for name in (*TABLES, SPLITS_TABLE):
            folder.remove(out / name)
    folder.make_dir(out / LANDSCAPE)
    folder.make_dir(parts)
    todo_all = plan(exp, results.runs, params, options)
    stored = {p.name for p in part_files(parts)}
    todo = [j for j in todo_all if f"job-{j.key}{PART}" not in stored]
    total = sum(len(j.run_ids) for j in todo_all)
    done = reused = total - sum(len(j.run_ids) for j in todo)
    if on_progress:
        on_progress(done, total)
    failures = []
    failed = 0
    store = pool.shared_disk  # the workers write their part files themselves (nnlab.sweep.workers)
    args = (exp, options, parts if store else None)
    for job, columns, error in pool.map(_work, todo, args, describe=_where):
        if error:
            failures.append(error)
            failed += len(job.run_ids)
            continue
        if not store:
            write_part(columns, parts / f"job-{job.key}{PART}")
        done += len(job.run_ids)
        if on_progress:
            on_progress(done, total)
    keys = [j.key for j in todo_all]
    tables = merge(out, exp, results.runs, keys, params, pool=pool)
    if tables[1] is not None:
        write_splits(out, _splits(exp, tables[0], tables[1], options))
    recorded = {**dataclasses.asdict(options), "threshold": exp.threshold}
    # What the report quotes and checks.
    folder.atomic_write_text(out / LANDSCAPE / "options.json", json.dumps(recorded, indent=2))
    if not failures:
        # Parts of jobs no longer planned (other options, or a changed threshold) are stale.
        wanted = {f"job-{k}{PART}" for k in keys}
        for p in folder.entries(parts):
            if p.name not in wanted:
                folder.remove(p)
    endpoints = tables[0]
    kinds = endpoints["kind"].value_counts().to_dict() if endpoints is not None else {}
    # End points of finished jobs without a row: diverged (not finite), skipped by certify_job.
    finished = {p.name for p in part_files(parts)}
    ran = {i for j in todo_all if f"job-{j.key}{PART}" in finished for i in j.run_ids}
    skipped = sorted(ran - set(endpoints["run_id"] if endpoints is not None else ()))
    now = {i for j in todo if f"job-{j.key}{PART}" in finished for i in j.run_ids}
    return {
        "total": total,
        "done": done,
        "certified": done - reused - len(now & set(skipped)),
        "reused": reused,
        "failed": failed,
        "failures": failures,
        "kinds": {k: int(v) for k, v in kinds.items()},
        "optima": 0 if tables[1] is None else len(tables[1]),
        "without_networks": len(results.runs) - len(params),
        "skipped": skipped,
        "written": [*TABLES, SPLITS_TABLE] if endpoints is not None else [],
        "stopped": pool.stopped,
        "stopped_jobs": pool.stopped_jobs,
    }


def merge(
    out: Path,
    exp: Experiment,
    runs: pd.DataFrame,
    keys: list[str],
    params: dict | None = None,
    pool: workers.Pool | None = None,
):
    """Merge the parts of the jobs ``keys`` into endpoints.parquet, group the minima into
    optima.parquet and measure barriers.parquet; returns the three DataFrames (None when no part
    is stored yet).

    Barriers are measured from each optimum's representative to the other optima of its
    configuration and to the best solved network SGD itself reached (the run with the lowest final
    loss below the threshold, as SGD left it: ``params``, run id -> trained parameters), along the
    straight line (an upper bound) and along a quadratic Bezier curve trained on the loss
    (`nnlab.landscape.paths.bezier`), both after aligning the hidden units; on ``pool``'s workers
    when given (each barrier depends only on its two ends and the data)."""
    import pandas as pd

    table = read_parts(out, parts=out / LANDSCAPE / "parts", keys=keys)
    if table is None:
        return None, None, None
    endpoints = table.to_pandas()
    # Why an end point is unconverged when its eigen-solver failed; empty otherwise (and in the
    # parts of versions before the column).
    endpoints["reason"] = endpoints["reason"].fillna("") if "reason" in endpoints else ""
    # A job pads its spectra to its longest (a solved end point has none): unpad.
    endpoints["spectrum"] = [np.asarray(s)[~np.isnan(s)] for s in endpoints["spectrum"]]
    for name in ("n_flat", "n_negative", "n_symmetry"):
        endpoints[name] = endpoints[name].astype("Int64")  # missing for a solved end point
    endpoints["optimum"] = pd.array([pd.NA] * len(endpoints), dtype="Int64")
    axes = [a for a in AXIS_COLUMNS if a in runs.columns]
    joined = endpoints.merge(runs[["run_id", *axes]], on="run_id", how="left")
    optima_rows, barrier_tasks = [], []
    X, Y, _, _ = load_data(exp)
    for key, g in joined.groupby(axes, sort=True):
        where = dict(zip(axes, key, strict=True))
        sizes = [X.shape[1], *[int(where["width"])] * int(where["depth"]), Y.shape[1]]

        def net_of(rows, where=where, sizes=sizes):
            return network_from_flat(
                np.stack(rows["params"].to_numpy()),
                sizes,
                bias=bool(where["bias"]),
                hidden=where["hidden"],
                output=where["output"],
            )

        minima = g[g["kind"] == "minimum"]
        if not len(minima):
            continue
        values = minima["polished_loss"].to_numpy()
        labels = distinct_optima(net_of(minima), X, loss=values)
        # Near-flat minima reached from several seeds: one minimum, or one connected flat family.
        margin = loss_margin(values, minima["grad_norm"], minima["lambda_min"])
        labels, extent = flat_families(net_of(minima), X, Y, labels, values, margin, loss=where["loss_fn"])
        endpoints.loc[minima.index, "optimum"] = labels
        target = _best_solved(runs, g["run_id"], params, exp.threshold)
        solved_net = None
        if target is not None:
            solved_net = network_from_flat(
                params[target][None, :],
                sizes,
                bias=bool(where["bias"]),
                hidden=where["hidden"],
                output=where["output"],
            )
        reps, rep_ids = [], []
        for k in range(labels.max() + 1):
            members = minima[labels == k]
            rep = members.loc[members["polished_loss"].idxmin()]
            reps.append(net_of(members.loc[[rep.name]]))
            rep_ids.append(rep["run_id"])
            row = {
                **where,
                "optimum": k,
                "polished_loss": float(rep["polished_loss"]),
                "seeds": len(members),
                "run_id": rep["run_id"],
                "lambda_min": float(rep["lambda_min"]),
                "lambda_max": float(rep["lambda_max"]),
                "n_flat": int(rep["n_flat"]),
                "extent": float(extent[k]),
                "barrier_to_solved": np.nan,
                "bezier_to_solved": np.nan,
                "best_solved": target,
            }
            if solved_net is not None:
                row["barrier_task"] = len(barrier_tasks)
                barrier_tasks.append((len(barrier_tasks), where, k, "solved", target, reps[-1], solved_net))
            optima_rows.append(row)
        for a in range(len(reps)):
            for b in range(a + 1, len(reps)):
                barrier_tasks.append((len(barrier_tasks), where, a, str(b), rep_ids[b], reps[a], reps[b]))
    barrier_rows = _barrier_rows(barrier_tasks, X, Y, pool)
    for row in optima_rows:
        if "barrier_task" in row:
            measured = barrier_rows[row.pop("barrier_task")]
            row.update(barrier_to_solved=measured["barrier"], bezier_to_solved=measured["bezier"])
    optima = pd.DataFrame(
        optima_rows,
        columns=[*axes, *OPTIMA_COLUMNS],
    )
    barriers = pd.DataFrame(barrier_rows, columns=[*axes, *BARRIER_COLUMNS])
    first = list(ENDPOINT_COLUMNS)
    endpoints = endpoints[first + [c for c in endpoints.columns if c not in first]]
    for name, frame in zip(TABLES, (endpoints, optima, barriers), strict=True):
        folder.write_whole(out / name, lambda tmp, frame=frame: frame.to_parquet(tmp, index=False))
    return endpoints, optima, barriers


def split_optima(out: Path, *, options: Options | None = None) -> pd.DataFrame:
    """The mechanism of over-capacity (Fukumizu & Amari 2000), for a certified results folder: each
    distinct optimum's representative (optima.parquet's ``run_id``, its polished parameters from
    endpoints.parquet) of width k is embedded into width k + 1 by splitting one hidden unit at a
    time (`nnlab.landscape.splitting.split_unit`, a = `SPLIT_A`: the function, and the loss,
    unchanged), and the embedding certified again (`nnlab.landscape.certify`, ``options``): a
    ``saddle`` means one more unit opens a way down from the spurious minimum; a ``minimum`` (or
    ``degenerate``) that width only shrinks its basin. At most `SPLIT_UNITS` units per optimum, and
    at most `SPLIT_WORK` / (the split network's parameter count), at least one.
    `nnlab landscape` runs it after grouping the optima; written to DIR/splits.parquet and
    returned (empty, with its columns, when there is no optimum)."""
    out = Path(out)
    options = options or Options()
    check_results_folder(out)
    with folder.locked(out, "nnlab landscape"):
        results = read_results(out, curves=False, held=True)
        endpoints, optima, _ = read_endpoints(out)
        table = _splits(results.experiment, endpoints, optima, options)
        write_splits(out, table)
    return table


def write_splits(out: Path, table: pd.DataFrame) -> None:
    """DIR/splits.parquet, whole (a temporary name, then a rename)."""
    folder.write_whole(out / SPLITS_TABLE, lambda tmp: table.to_parquet(tmp, index=False))


def _splits(exp: Experiment, endpoints, optima, options: Options) -> pd.DataFrame:
    """`split_optima`'s table from the merged endpoints and optima (see there)."""
    import pandas as pd

    axes = [a for a in AXIS_COLUMNS if optima is not None and a in optima.columns]
    rows = []
    if optima is None or not len(optima) or endpoints is None:
        return pd.DataFrame(rows, columns=[*axes, *SPLIT_COLUMNS])
    X, Y, _, _ = load_data(exp)
    polished = dict(zip(endpoints["run_id"], endpoints["params"], strict=True))
    for o in optima.to_dict("records"):
        width, depth = int(o["width"]), int(o["depth"])
        sizes = [X.shape[1], *[width] * depth, Y.shape[1]]
        net = network_from_flat(
            np.asarray(polished[o["run_id"]])[None, :],
            sizes,
            bias=bool(o["bias"]),
            hidden=o["hidden"],
            output=o["output"],
        )
        P = len(polished[o["run_id"]])
        most = min(SPLIT_UNITS, max(1, SPLIT_WORK // (P + P // width)))  # (about the split network's)
        units = [(layer, u) for layer in range(1, depth + 1) for u in range(width)][:most]
        for layer in sorted({la for la, _ in units}):
            mine = [u for la, u in units if la == layer]
            # Every unit's split of this layer has one shape: certified together, one replica each.
            split = [split_unit(net, layer=layer, unit=u, a=SPLIT_A) for u in mine]
            batch = dataclasses.replace(
                split[0],
                weights=tuple(np.concatenate(w) for w in zip(*(s.weights for s in split), strict=True)),
                biases=None
                if split[0].biases is None
                else tuple(np.concatenate(b) for b in zip(*(s.biases for s in split), strict=True)),
                seeds=None,
            )
            try:
                cert = certify(batch, X, Y, threshold=exp.threshold, loss=o["loss_fn"], options=options)
            except _solver_errors() as err:
                reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
                kinds, orders, losses = ["unconverged"] * len(mine), [0] * len(mine), [np.nan] * len(mine)
                reasons = [reason] * len(mine)
            else:
                kinds, orders = list(cert.kind), list(cert.saddle_order)
                losses, reasons = list(cert.polished_loss), list(cert.reason)
            for r, u in enumerate(mine):
                rows.append(
                    {
                        **{a: o[a] for a in axes},
                        "optimum": int(o["optimum"]),
                        "run_id": o["run_id"],
                        "layer": layer,
                        "unit": u,
                        "a": SPLIT_A,
                        "loss": float(o["polished_loss"]),
                        "kind": str(kinds[r]),
                        "saddle_order": int(orders[r]),
                        "polished_loss": float(losses[r]),
                        "reason": str(reasons[r]),
                    }
                )
    return pd.DataFrame(rows, columns=[*axes, *SPLIT_COLUMNS])


def slices(exp: Experiment, runs: pd.DataFrame, endpoints: pd.DataFrame, *, most: int = SLICES):
    """Pictures of the landscape around a few certified end points (`nnlab.landscape.slices`): for
    each configuration (in order) and each kind (solved, minimum, ..., in that order) the end point
    of that kind with the lowest polished loss, at most ``most`` in all: the loss along the straight
    line from the run's initial network (`nnlab.network.init_network` from its seed and
    configuration, as the sweep drew it) to its certified point (polished), and on a 21 x 21 grid of
    [-1, 1]^2 around the certified point along two filter-normalized random directions (seeded
    with `SLICE_SEED`). Networks whose parameters x training samples exceed `SLICE_WORK` are listed
    but not drawn (``drawn`` False).

    Returns
    -------
    DataFrame
        One row per end point: the configuration's axes, ``run_id``, ``kind``, ``polished_loss``,
        ``params`` (count), ``drawn``, ``t`` and ``line`` (the line's positions and losses), ``alpha``
        (the grid's coordinates, both directions) and ``plane`` (its losses, flattened row by row:
        beta down, alpha across).
    """
    import pandas as pd

    axes = [a for a in AXIS_COLUMNS if a in runs.columns]
    X, Y, _, _ = load_data(exp)
    joined = endpoints.merge(runs[["run_id", "seed", *axes]], on="run_id")
    picked = []
    for _, g in joined.groupby(axes, sort=True):
        for kind in KINDS:
            mine = g[(g["kind"] == kind) & np.isfinite(g["polished_loss"])]
            if len(mine) and len(picked) < most:
                picked.append(mine.loc[mine["polished_loss"].idxmin()])
    rows = []
    for row in picked:
        where = {a: row[a] for a in axes}
        sizes = [X.shape[1], *[int(row["width"])] * int(row["depth"]), Y.shape[1]]
        flat = np.asarray(row["params"], dtype=np.float64)
        drawn = len(flat) * len(X) <= SLICE_WORK
        out = {
            **where,
            "run_id": row["run_id"],
            "kind": row["kind"],
            "polished_loss": float(row["polished_loss"]),
            "params": len(flat),
            "drawn": drawn,
            "t": np.zeros(0),
            "line": np.zeros(0),
            "alpha": np.zeros(0),
            "plane": np.zeros(0),
        }
        if drawn:
            arch = dict(bias=bool(row["bias"]), hidden=row["hidden"], output=row["output"])
            end = network_from_flat(flat[None, :], sizes, **arch)
            # (Older folders have no init columns, or missing values: the defaults they ran with.)
            rule, scale = row.get("init"), row.get("init_scale")
            rule = "auto" if not isinstance(rule, str) else rule
            scale = 1.0 if scale is None or pd.isna(scale) else float(scale)
            start = init_network(sizes, seeds=[int(row["seed"])], **arch, init=rule, scale=scale)
            t, along = pictures.line(start, end, X, Y, loss=row["loss_fn"])
            grid = pictures.plane(end, X, Y, loss=row["loss_fn"], seed=SLICE_SEED)
            out.update(t=t, line=along, alpha=grid.alpha, plane=grid.loss.ravel())
        rows.append(out)
    columns = [*axes, "run_id", "kind", "polished_loss", "params", "drawn", "t", "line", "alpha", "plane"]
    return pd.DataFrame(rows, columns=columns)


def _best_solved(runs: pd.DataFrame, run_ids, params: dict | None, threshold: float) -> str | None:
    """The run of ``run_ids`` whose SGD ended lowest below ``threshold`` and whose network is saved
    (None when SGD solved none): the solved network SGD actually reached, not a polished one."""
    if not params:
        return None
    mine = runs[runs["run_id"].isin(set(run_ids)) & (runs["final_loss"] < threshold)]
    mine = mine[mine["run_id"].isin(params.keys())]
    return None if not len(mine) else str(mine.loc[mine["final_loss"].idxmin(), "run_id"])


def _barrier_rows(tasks: list[tuple], X, Y, pool: workers.Pool | None) -> list[dict]:
    """The rows of `_barrier_row` for ``tasks`` (index, where, a, to, to_run_id, net_a, net_b), in
    their order; on the pool's workers when given (a task that failed there is redone here, so
    that its error is raised as it would be in process)."""
    if pool is None or len(tasks) < 2:
        return [_barrier_row(*task[1:], X, Y) for task in tasks]
    rows: list = [None] * len(tasks)
    for task, row, error in pool.map(_barrier_task, tasks, (X, Y), describe=lambda t: f"barrier {t[0]}"):
        rows[task[0]] = row if not error else _barrier_row(*task[1:], X, Y)
    return rows


def _barrier_task(task: tuple, X, Y, parts=None) -> dict:
    return _barrier_row(*task[1:], X, Y)


def _barrier_row(where: dict, a: int, to: str, to_run_id, net_a, net_b, X, Y) -> dict:
    """One row of barriers.parquet: from optimum ``a`` (``net_a``) to ``net_b``, the straight line's
    height (an upper bound of the barrier) and the trained Bezier curve's, with both paths."""
    loss = where["loss_fn"]
    height, path = barrier(net_a, net_b, X, Y, loss=loss, points=BARRIER_POINTS)
    curve = bezier(net_a, net_b, X, Y, loss=loss, points=BARRIER_POINTS)
    return {
        **where,
        "optimum": a,
        "to": to,
        "to_run_id": to_run_id,
        "barrier": float(height[0]),
        "path": path[0],
        "bezier": float(curve.height),
        "bezier_t": float(curve.t_max),
        "bezier_path": curve.loss,
    }


def read_endpoints(out: Path):
    """(endpoints, optima, barriers) DataFrames of a results folder certified by `landscape`, or
    (None, None, None) when it was not."""
    import pandas as pd

    out = Path(out)
    if not (out / TABLES[0]).is_file():
        return None, None, None
    return tuple(pd.read_parquet(out / name) if (out / name).is_file() else None for name in TABLES)


def certificates(out: Path, runs: pd.DataFrame, threshold: float) -> tuple[tuple, list[str]]:
    """`read_endpoints`, when the certificates still describe the folder's runs: they are left out
    (None, None, None), with a warning, when they were made at another threshold or for runs no
    longer stored; a warning also names the runs without one. Returns (tables, warnings)."""
    tables = read_endpoints(out)
    endpoints = tables[0]
    if endpoints is None:
        return tables, []
    options_path = Path(out) / LANDSCAPE / "options.json"
    try:
        certified_at = json.loads(options_path.read_text(encoding="utf-8")).get("threshold")
    except (OSError, ValueError):
        certified_at = None
    rerun = "rerun `nnlab landscape` on the folder"
    if certified_at is not None and certified_at != threshold:
        return (None, None, None), [
            f"end points not shown: they were certified at threshold {certified_at:g}, the experiment's "
            f"is {threshold:g}; {rerun}"
        ]
    ids = set(runs["run_id"])
    if not ids & set(endpoints["run_id"]):
        return (None, None, None), [
            f"end points not shown: they were certified for runs no longer stored; {rerun}"
        ]
    warnings = []
    missing = ids - set(endpoints["run_id"])
    if missing:
        saved = read_networks(out, runs[runs["run_id"].isin(missing)])
        with np.errstate(all="ignore"):  # (skipped by certify_job: diverged, not waiting)
            blown = {i for i, p in saved.items() if not np.isfinite(np.linalg.norm(p))}
        networks = set(saved)
        if networks - blown:
            warnings.append(f"{len(networks - blown)} runs have no certified end point yet; {rerun}")
        if blown:
            warnings.append(
                f"{len(blown)} diverged runs (parameters or their norm not finite) have no certified "
                "end point"
            )
        if len(missing) > len(networks):
            warnings.append(
                f"{len(missing) - len(networks)} runs have no saved network and cannot be certified "
                "(save_networks = true, then `nnlab run` again)"
            )
    return tables, warnings
