"""The part store: each finished job's runs as one part file, their merge into runs.parquet,
curves.parquet and networks.parquet, and a results folder read back (checked against what it stores).

Part files are written to a temporary name and renamed, so an interrupted sweep loses at most the
jobs in flight; the merge recomputes what depends on the threshold; readers rebuild short, damaged
or hand-edited tables from the parts (nnlab.sweep.folder keeps every path inside the folder).

pandas and pyarrow are imported where they are used: worker processes only train, and starting
one without them saves about half a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnlab.schema import (
    AXES,
    AXIS_COLUMNS,
    COLUMN_OF,
    CURVES_COLUMNS,
    LANDSCAPE_TABLES,
    LATER_AXES,
    RUN_STATISTICS,
    RUNS_REQUIRED,
    SPLITS_TABLE,
    TABLES,
    late_epoch,
    tail_window,
)
from nnlab.sweep import folder
from nnlab.sweep.experiment import Experiment, ExperimentError, task_columns

if TYPE_CHECKING:
    import pandas as pd

PARTS = "parts"
LIST_COLUMNS = ("curve", "curve_epochs", "params")  # 2-D per job, one list per run in the part files
PART = ".arrow"  # one Arrow IPC file per finished job: quick to write and to read back


def recorded_epochs(epochs: int, record: str | int = "all") -> np.ndarray:
    """The epochs of a curve of ``epochs`` epochs that ``train.record`` keeps (int64, increasing, the
    first and last always): "all", "log" (about 20 a decade, log-spaced) or every K-th (an int)."""
    if record == "all":
        return np.arange(epochs + 1)
    if record == "log":
        spaced = np.rint(np.geomspace(1, epochs, 1 + int(np.ceil(20 * np.log10(max(epochs, 2))))))
        kept = np.concatenate([[0], spaced.astype(np.int64), [epochs]])
    else:
        kept = np.concatenate([np.arange(0, epochs + 1, int(record)), [epochs]])
    return np.unique(kept)


def curve_statistics(curve: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """What the summary needs of each curve, from every epoch (nnlab.schema.RUN_STATISTICS).

    Parameters
    ----------
    curve : ndarray (r, epochs + 1)
        Full-data losses of r runs, every epoch.
    threshold : float

    Returns
    -------
    dict of ndarray (r,)
        ``epochs_to_threshold`` (first epoch below ``threshold``, NaN never), ``threshold``,
        ``initial_loss``, ``late_loss``, ``tail_before``, ``tail_last``.
    """
    r, n = curve.shape
    epochs = n - 1
    w = tail_window(epochs)
    # The two windows as one contiguous block, so that the means are those of nnlab.analysis.runs's
    # descending_runs to the last bit.
    window = np.ascontiguousarray(curve[:, epochs - 2 * w + 1 :], dtype=np.float64)
    below = curve < threshold
    with np.errstate(invalid="ignore", over="ignore"):
        before, last = window[:, :w].mean(axis=1), window[:, w:].mean(axis=1)
    return {
        "epochs_to_threshold": np.where(below.any(axis=1), below.argmax(axis=1), np.nan),
        "threshold": np.full(r, float(threshold)),
        "initial_loss": curve[:, 0].astype(np.float64),
        "late_loss": curve[:, late_epoch(epochs)].astype(np.float64),
        "tail_before": before,
        "tail_last": last,
    }


def part_table(columns: dict):
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


def write_part(columns: dict, path: Path) -> None:
    """Write a job's part file atomically: a temporary name, then a rename."""
    write_arrow(part_table(columns), path)


def write_arrow(table, path: Path) -> None:
    """An Arrow table into the IPC file ``path``, whole or not at all (StorageError)."""
    import pyarrow as pa

    def write(tmp: Path) -> None:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    folder.write_whole(path, write)


def part_files(parts: Path) -> list[Path]:
    """The part files (``job-*.arrow``) in the folder ``parts``, sorted; a link or special file
    among its entries is refused (nnlab.sweep.folder.entries)."""
    return [p for p in folder.entries(parts) if p.name.startswith("job-") and p.name.endswith(PART)]


def read_parts(out: Path, columns: list[str] | None = None, *, parts: Path | None = None, keys=None):
    """Every part file of ``out`` (or of the folder ``parts``; only the jobs ``keys`` when given) as
    one Arrow table (None when there is none)."""
    import pyarrow as pa

    paths = part_files(parts if parts is not None else out / PARTS)
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
        if "run_id" not in table.column_names:
            raise ExperimentError(f"{path}: not a part file of nnlab's (no run_id column); remove it")
        # A column some parts lack (params, before save_networks was on) is left out of those.
        tables.append(table.select([c for c in columns if c in table.column_names]) if columns else table)
    if not tables:
        return None
    try:
        # Missing columns become nulls: say, networks saved only by a rerun with save_networks = true.
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise ExperimentError(_odd_part(paths, tables)) from None


def _odd_part(paths: list[Path], tables: list) -> str:
    """Which part file's columns disagree in type with the first part's, for the refusal."""
    first = tables[0].schema
    for path, table in zip(paths[1:], tables[1:], strict=False):
        for field in table.schema:
            if field.name in first.names and first.field(field.name).type != field.type:
                return (
                    f"{path}: a part file of another kind (its column {field.name!r} is {field.type}, "
                    f"{paths[0].name}'s {first.field(field.name).type}); remove it and rerun"
                )
    return f"{paths[0].parent}: part files of different kinds; remove the foreign ones and rerun"


def runs_without_networks(out: Path) -> set[str]:
    """Run ids of the part files that hold no final parameters."""
    import pyarrow.compute as pc

    table = read_parts(out, ["run_id", "params"])
    if table is None:
        return set()
    ids = table["run_id"].to_numpy(zero_copy_only=False)
    if "params" not in table.column_names:
        return set(ids)
    has = pc.is_valid(table["params"]).to_numpy(zero_copy_only=False)
    return set(ids[~has]) - set(ids[has])


def stored_run_ids(out: Path) -> set[str]:
    """The run ids stored in the part files of ``out``."""
    table = read_parts(out, ["run_id"])
    return set(table["run_id"].to_pylist()) if table is not None else set()


# Everything a sweep or its readers wrote, which --fresh discards with the runs: the certificates of
# `nnlab landscape` (nnlab.sweep.endpoints) and the report describe the runs discarded.
DERIVED = ("manifest.json", *LANDSCAPE_TABLES, SPLITS_TABLE, "report.md")
DERIVED_FOLDERS = ("landscape", "figures")
NAME_MAX = 255  # bytes in one file name on the common file systems


def check_out_path(out: Path) -> None:
    """Refuse an --out that can never be a results folder, before anything is written: empty, a
    file, under a file, a name too long, or a folder holding something other than nnlab results."""
    if not str(out).strip():
        raise ExperimentError("--out: empty; give a folder")
    long = [part for part in out.parts if len(os.fsencode(part)) > NAME_MAX]
    if long:
        raise ExperimentError(f"--out: a name in the path is longer than {NAME_MAX} bytes: {long[0][:40]}...")
    for parent in [out, *out.parents]:
        if os.path.lexists(parent):
            if not os.path.isdir(parent):
                where = "exists and is not a folder" if parent == out else f"is under {parent}, a file"
                raise ExperimentError(f"--out: {out} {where}")
            break
    if os.path.isdir(out) and not _ours(out):
        raise ExperimentError(f"--out: {out} is not empty and holds no nnlab results; choose another folder")


def _ours(out: Path) -> bool:
    """An empty folder, or one that holds nnlab results (its lock file and leftovers aside)."""
    names = {p.name for p in out.iterdir()} - {folder.LOCK}
    return not names or bool({"experiment.toml", PARTS, *TABLES} & names)


def _clear(out: Path) -> None:
    """--fresh: discard the stored runs and everything derived from them."""
    for p in folder.entries(out / PARTS):
        folder.remove(p)
    for name in (*TABLES, *DERIVED):
        folder.remove(out / name)
    with folder.writing(out):
        for name in DERIVED_FOLDERS:
            if folder.check(out / name, folder=True):
                shutil.rmtree(out / name)  # (never follows a link inside: it works on descriptors)


def _table_run_ids(out: Path) -> tuple[set[str], list[str]]:
    """Run ids stored in the merged tables of ``out`` (runs, curves, networks), and the names of the
    tables that could not be read."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids: set[str] = set()
    unreadable = []
    for name in TABLES:
        path = out / name
        if not os.path.lexists(path):
            continue
        try:
            ids |= set(pc.unique(pq.read_table(path, columns=["run_id"])["run_id"]).to_pylist())
        except (OSError, pa.ArrowException, KeyError):
            unreadable.append(name)
    return ids, unreadable


def check_out_dir(out: Path, exp: Experiment, fresh: bool) -> set[str]:
    """Run ids already stored in ``out``; refuses a folder whose stored runs (in its part files or
    in any of its tables) the (changed) experiment does not define, unless ``fresh`` (which clears
    them). Runs stored in the tables but in no part file (parts/ deleted) are written back as a
    part, so that the sweep's merge keeps them."""
    check_out_path(out)
    if fresh:
        _clear(out)
    done = stored_run_ids(out)
    in_tables, unreadable = _table_run_ids(out)
    if unreadable and not done:
        raise ExperimentError(
            f"--out: {out}/{unreadable[0]} cannot be read and parts/ holds no run to rebuild it from; "
            "rerun with --fresh to start over, or choose another --out"
        )
    wanted = {c.run_id(s) for c in exp.configs() for s in exp.seeds}
    stale = (done | in_tables) - wanted
    if stale:
        where = "" if stale & done else " in its tables"  # parts/ gone: the tables still count
        foreign = _foreign(out, stale & done) if stale & done else None
        if foreign:
            raise ExperimentError(
                f"--out: {out} holds {len(stale)} runs that neither this experiment nor its experiment.toml "
                f"defines ({foreign}); move those part files away, or choose another --out"
            )
        raise ExperimentError(
            f"--out: {out} holds {len(stale)} runs{where} that this experiment no longer defines "
            f"({_changes(out, exp)}); rerun with --fresh to start over, or choose another --out"
        )
    return done | _restore_parts(out, in_tables - done)


def _restore_parts(out: Path, ids: set[str]) -> set[str]:
    """Write the runs ``ids`` of runs.parquet (with their curves, and networks when saved) back into
    one part file; returns the ids restored. A run without its whole curve in curves.parquet is
    left out: the sweep trains it again, to the same numbers."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not ids:
        return set()
    wanted = pa.array(sorted(ids))
    try:
        runs = pq.read_table(out / "runs.parquet").replace_schema_metadata(None)
        # As the part files hold them: pandas stores strings as large_string.
        runs = runs.cast(
            pa.schema([f.with_type(pa.string()) if f.type == pa.large_string() else f for f in runs.schema])
        )
        curves = pq.read_table(out / "curves.parquet", columns=["run_id", "epoch", "loss"])
        networks = pq.read_table(out / "networks.parquet") if (out / "networks.parquet").is_file() else None
    except (OSError, pa.ArrowException, KeyError):
        return set()
    runs = runs.filter(pc.is_in(runs["run_id"], wanted))
    runs = runs.take(np.unique(runs["run_id"].to_numpy(zero_copy_only=False), return_index=True)[1])
    curves = curves.filter(pc.is_in(curves["run_id"], wanted))
    curves = curves.sort_by([("run_id", "ascending"), ("epoch", "ascending")])
    cid = curves["run_id"].to_numpy(zero_copy_only=False)
    names, first, counts = np.unique(cid, return_index=True, return_counts=True)
    # A whole curve has the points 0, 1, ..., epochs, each once.
    in_order = curves["epoch"].to_numpy() == np.arange(len(cid)) - np.repeat(first, counts)
    whole = np.logical_and.reduceat(in_order, first) if len(first) else np.zeros(0, dtype=bool)
    segment = dict(zip(names, range(len(names)), strict=True))
    keep, pieces = [], []
    for k, (run_id, epochs) in enumerate(
        zip(runs["run_id"].to_pylist(), runs["epochs"].to_pylist(), strict=True)
    ):
        j = segment.get(run_id)
        if j is not None and counts[j] == epochs + 1 and whole[j]:
            keep.append(k)
            pieces.append(np.arange(first[j], first[j] + counts[j]))
    if not keep:
        return set()
    runs = runs.take(keep)
    rows = np.concatenate(pieces)
    offsets = np.concatenate([[0], np.cumsum([len(piece) for piece in pieces])])
    table = runs.drop_columns([c for c in ("epochs_to_threshold",) if c in runs.column_names])
    table = table.append_column(
        "curve",
        pa.LargeListArray.from_arrays(
            pa.array(offsets, pa.int64()), curves["loss"].take(rows).combine_chunks()
        ),
    )
    if networks is not None:
        params = dict(zip(networks["run_id"].to_pylist(), networks["params"].to_pylist(), strict=True))
        table = table.append_column(
            "params",
            pa.array([params.get(i) for i in runs["run_id"].to_pylist()], pa.large_list(pa.float64())),
        )
    restored = runs["run_id"].to_pylist()
    key = hashlib.sha256("|".join(restored).encode()).hexdigest()[:16]
    folder.make_dir(out / PARTS)
    write_arrow(table, out / PARTS / f"job-restored-{key}{PART}")
    return set(restored)


def _changes(out: Path, exp: Experiment) -> str:
    """Which fields differ from the folder's experiment.toml, for the refusal message."""
    from nnlab.sweep.experiment import load

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


def _foreign(out: Path, stale: set[str]) -> str | None:
    """The part files holding the runs ``stale`` when the folder's experiment.toml defines none of
    them either: copied in from another experiment, not left by a change of this one."""
    from nnlab.sweep.experiment import load

    try:
        before = load(out / "experiment.toml")
    except (OSError, ValueError):
        return None
    if stale & {c.run_id(s) for c in before.configs() for s in before.seeds}:
        return None
    names = _parts_holding(out, stale)
    if not names:
        return None
    more = f" and {len(names) - 1} more" if len(names) > 1 else ""
    return f"parts/{names[0]}{more}, from another experiment"


MERGE_NOTICE = 500  # part files from which a merge says what it is doing


def merge(out: Path, threshold: float, *, into: Path | None = None, on_progress=None) -> dict[str, str]:
    """Merge the part files into runs.parquet, curves.parquet (and networks.parquet): one row per
    run, sorted by configuration (grid order) and seed; curves sorted by run id and epoch.

    The per-run statistics (``epochs_to_threshold`` and nnlab.schema.RUN_STATISTICS) are computed
    again from the curves stored whole, with ``threshold``: the threshold is not part of a run's
    identity, so a rerun with a new threshold keeps the runs and updates them. Runs whose curves
    were thinned (``train.record``) keep the statistics their job computed from every epoch.
    runs.parquet is written last, so a merge cut short leaves it short and `read_results` merges
    again. The tables go into ``into`` when given (a folder that cannot be written is read in
    memory this way); StorageError when they cannot be written. ``on_progress`` is called with a
    line before each step (reading the parts, writing each table). Returns each table's SHA-256 as
    written (`record_tables` keeps them in manifest.json; `read_results` compares), by name.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not os.path.isdir(out / PARTS) or not part_files(out / PARTS):
        return {}
    count = len(part_files(out / PARTS))
    # Only a merge long enough to be noticed says its steps (a few seconds from some 500 parts on).
    say = on_progress if on_progress is not None and count >= MERGE_NOTICE else (lambda line: None)
    say(f"merging: reading {count:,} part files")
    table = read_parts(out)
    if table is None:
        return {}
    # One chunk per column: taking rows from thousands of chunks (one per part) costs 10x as long.
    table = _renamed(table).combine_chunks()
    # A run stored twice (two sweeps into one folder at once, trained again for its network once
    # save_networks was turned on, or for a new threshold when its curve was thinned): keep the
    # first copy, those with a network first, then those whose statistics are for ``threshold``.
    stale = _stale(table, threshold)
    has = np.ones(table.num_rows, dtype=bool)
    if "params" in table.column_names:
        has = pc.is_valid(table["params"]).to_numpy(zero_copy_only=False)
    table = table.take(np.lexsort((stale, ~has)))
    _, first = np.unique(table["run_id"].to_numpy(zero_copy_only=False), return_index=True)
    table = table.take(np.sort(first))
    # (Parts from before an axis existed lack its column: sorted by the others.)
    keys = [(k, "ascending") for k in (*AXIS_COLUMNS, "seed", "run_id") if k in table.column_names]
    runs = table.take(pc.sort_indices(table, sort_keys=keys))
    order = pc.sort_indices(runs, sort_keys=[("run_id", "ascending")])
    by_id = runs.select([c for c in ("run_id", *LIST_COLUMNS) if c in runs.column_names]).take(order)
    lengths = pc.list_value_length(by_id["curve"]).to_numpy()
    ids = by_id["run_id"].combine_chunks()
    # The run id dictionary-encoded: 10^8 rows of one repeated string each would take minutes.
    run_id = pa.DictionaryArray.from_arrays(
        pa.array(np.repeat(np.arange(len(ids), dtype=np.int32), lengths)), ids
    )
    outputs = {
        "curves.parquet": pa.table(
            {
                "run_id": run_id,
                "epoch": _curve_epochs(by_id, lengths),
                "loss": pc.list_flatten(by_id["curve"]),
            }
        )
    }
    if "params" in table.column_names:
        saved = by_id.filter(pc.is_valid(by_id["params"]))
        outputs["networks.parquet"] = saved.select(["run_id", "params"])
    outputs["runs.parquet"] = _runs_table(runs, threshold)
    del table, by_id
    for name, t in outputs.items():
        say(f"merging: writing {name} ({t.num_rows:,} rows)")
        folder.write_whole((into or out) / name, lambda path, t=t: _write_parquet(t, path))
    return {name: _sha256((into or out) / name) for name in outputs}


def _write_parquet(table, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Row groups of a million rows: readers scan them one at a time (`scan_curves`). A dictionary
    # column is stored without the Arrow schema, so that it reads back as plain strings.
    dictionary = any(pa.types.is_dictionary(f.type) for f in table.schema)
    pq.write_table(table, path, row_group_size=1 << 20, store_schema=not dictionary)


def _curve_epochs(by_id, lengths: np.ndarray) -> np.ndarray:
    """The epoch of each stored loss: its position in a whole curve, ``curve_epochs`` in a thinned one."""
    import pyarrow.compute as pc

    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    epoch = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)
    if "curve_epochs" in by_id.column_names:
        thinned = np.flatnonzero(pc.is_valid(by_id["curve_epochs"]).to_numpy(zero_copy_only=False))
        if len(thinned):
            at = np.concatenate([np.arange(starts[k], starts[k] + lengths[k]) for k in thinned])
            epoch[at] = pc.list_flatten(by_id["curve_epochs"].take(thinned)).to_numpy()
    return epoch


def _thinned(table) -> np.ndarray:
    """Which runs of a part table have thinned curves (``curve_epochs`` given)."""
    import pyarrow.compute as pc

    if "curve_epochs" not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    return pc.is_valid(table["curve_epochs"]).to_numpy(zero_copy_only=False)


def _stale(table, threshold: float) -> np.ndarray:
    """Which runs of a part table have thinned curves and statistics for another threshold: their
    epochs to ``threshold`` cannot be counted from what is stored (a rerun trains them again)."""
    if "threshold" not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    counted = table["threshold"].to_numpy(zero_copy_only=False).astype(np.float64)
    return _thinned(table) & (counted != threshold)


def stale_runs(out: Path, threshold: float) -> set[str]:
    """Run ids of the part files of ``out`` whose curves were thinned and whose statistics hold for
    another threshold than ``threshold`` only (a rerun trains them again, to the same numbers)."""
    table = read_parts(out, ["run_id", "curve_epochs", "threshold"])
    if table is None:
        return set()
    ids = table["run_id"].to_numpy(zero_copy_only=False)
    stale = _stale(table, threshold)
    return set(ids[stale]) - set(ids[~stale])


def _runs_table(runs, threshold: float):
    """runs.parquet's table: the part tables' runs without their lists, with the per-run statistics
    computed from every whole curve (kept as the job computed them for a thinned one)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    n = runs.num_rows
    names = ("epochs_to_threshold", *RUN_STATISTICS)
    thinned = _thinned(runs)
    stats = {k: np.full(n, np.nan) for k in names}
    for k in names:
        if k in runs.column_names and thinned.any():
            stats[k][thinned] = runs[k].to_numpy(zero_copy_only=False).astype(np.float64)[thinned]
    lengths = pc.list_value_length(runs["curve"]).to_numpy()
    for length in np.unique(lengths[~thinned]):
        rows = np.flatnonzero((lengths == length) & ~thinned)
        curve = pc.list_flatten(runs["curve"].take(rows)).to_numpy().reshape(len(rows), int(length))
        for k, v in curve_statistics(curve, threshold).items():
            stats[k][rows] = v
    # Through pandas, so that the parquet metadata keeps epochs_to_threshold a nullable integer.
    frame = runs.drop_columns([c for c in (*LIST_COLUMNS, *names) if c in runs.column_names]).to_pandas()
    hit = stats.pop("epochs_to_threshold")
    frame.insert(frame.columns.get_loc("best_loss") + 1, "epochs_to_threshold", pd.array(hit, dtype="Int64"))
    for k, v in stats.items():
        frame[k] = v
    return pa.Table.from_pandas(frame, preserve_index=False)


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_tables(out: Path, digests: dict[str, str]) -> None:
    """Keep the SHA-256 of the tables just merged into ``out`` in its manifest.json (``tables``), so
    that a reader can tell a table edited since (`edited_tables`)."""
    import json

    path = out / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8")) if folder.check(path) else {}
    except (OSError, ValueError):
        manifest = {}
    if not isinstance(manifest, dict):
        manifest = {}
    manifest["tables"] = digests
    folder.atomic_write_text(path, json.dumps(manifest, indent=2))


def edited_tables(out: Path) -> list[str]:
    """The tables of ``out`` whose bytes differ from those the last merge wrote (manifest.json's
    ``tables``): edited by hand, or by anything but nnlab. Folders without that record (written
    before it existed, or by a merge into another folder) are not checked."""
    import json

    try:
        recorded = json.loads((out / "manifest.json").read_text(encoding="utf-8")).get("tables")
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(recorded, dict):
        return []
    return [
        name
        for name, digest in recorded.items()
        if name in TABLES and (out / name).is_file() and _sha256(out / name) != digest
    ]


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
    warnings : tuple of str
        What reading the folder repaired or worked around (duplicated rows, an unwritable folder).
    """

    path: Path
    experiment: Experiment
    runs: pd.DataFrame
    curves: pd.DataFrame | None
    total: int
    warnings: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        """True while fewer runs are stored than the experiment defines."""
        return len(self.runs) < self.total


def check_results_folder(out: Path) -> None:
    """ExperimentError unless ``out`` is a results folder: a folder, nothing planted in it where
    nnlab keeps its files (`nnlab.sweep.folder.vet`), with an experiment.toml."""
    if os.path.lexists(out) and not out.is_dir():
        raise ExperimentError(f"{out}: a file, not a results folder (give the folder `nnlab run` wrote)")
    if not out.is_dir():
        raise ExperimentError(f"{out}: no such results folder")
    folder.vet(out)
    if not (out / "experiment.toml").is_file():
        raise ExperimentError(f"{out}: holds no nnlab results (no experiment.toml); run `nnlab run` first")


def read_results(out: Path, *, curves: bool = True, held: bool = False) -> Results:
    """Read a results folder written by `run`; ExperimentError when it holds no nnlab results or no
    run yet, or when what it holds does not add up (see below). An interrupted sweep's part files
    are merged (into the folder) first.

    What is read is checked against what is stored: runs.parquet and curves.parquet are rebuilt
    from the part files when they are short, unreadable or lack columns (in memory, with a
    warning, when the folder cannot be written); every stored run must be one that experiment.toml
    defines, with the settings its run id stands for; a run stored twice is counted once; a table
    whose bytes differ from those the last merge recorded in manifest.json (edited by hand) is
    rebuilt from parts/ too, or refused when parts/ cannot rebuild it.

    A merge into the folder takes its lock (``held``: the caller holds it already); while another
    process holds it (a running sweep), the tables are merged for this reader only, in memory,
    and the folder's are left alone."""
    import pandas as pd

    from nnlab.sweep.experiment import load

    out = Path(out)
    check_results_folder(out)
    exp = load(out / "experiment.toml")
    stored = stored_run_ids(out)
    if not stored and not os.path.lexists(out / "runs.parquet"):
        raise ExperimentError(f"{out}: no run is stored yet; run `nnlab run` on its experiment first")
    for name in ("runs.parquet", "curves.parquet"):
        if (out / name).is_dir():
            raise ExperimentError(f"{out}/{name}: a folder, not a table; move it away and rerun")
    warnings: list[str] = []
    with contextlib.ExitStack() as stack:
        runs, table, problem = _read_tables(out, stored, curves)
        source = out
        edited = [] if problem else edited_tables(out)
        changed = [
            f"{out}/{name} was changed after nnlab merged it (its sha256 is not manifest.json's)"
            for name in edited
        ]
        if changed and stored:
            problem = changed[0]
        if problem and stored:
            # (Short or missing: a sweep interrupted before its merge, nothing to warn about.)
            if not problem.endswith((SHORT, _MISSING)):
                warnings.append(f"{problem}: rebuilt from parts/")
            try:
                with contextlib.nullcontext() if held else folder.locked(out, "a reader merging tables"):
                    record_tables(out, merge(out, exp.threshold))
            except (folder.StorageError, folder.FolderBusy) as err:
                source = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nnlab-")))
                merge(out, exp.threshold, into=source)
                warnings.append(f"{err}; the tables were merged from parts/ for this command only")
            runs = pd.read_parquet(source / "runs.parquet")
            table = pd.read_parquet(source / "curves.parquet") if curves else None
        elif problem:
            raise ExperimentError(f"{problem}, and parts/ holds no run to rebuild it from; rerun the sweep")
        runs, table, more = _checked(out, exp, upgrade(runs, exp), table)
        if changed and not stored:  # (what _checked finds is said first: it names the column)
            raise ExperimentError(
                f"{changed[0]}, and parts/ holds no run to rebuild it from: restore it, or rerun the "
                "sweep with --fresh"
            )
        runs = _with_statistics(runs, source / "curves.parquet", exp.threshold, more)
    return Results(out, exp, runs, table, len(exp.configs()) * len(exp.seeds), (*warnings, *more))


def _with_statistics(runs: pd.DataFrame, path: Path, threshold: float, warnings: list[str]) -> pd.DataFrame:
    """``runs`` with ``epochs_to_threshold`` and the per-run statistics (nnlab.schema.RUN_STATISTICS)
    for ``threshold``: as stored when they are, otherwise counted by one scan of the curves ``path``
    (a folder written before they were stored, or an experiment.toml whose threshold was edited).
    What cannot be counted (no curves; thinned curves at another threshold) is said in ``warnings``."""
    import pandas as pd

    lacking = [c for c in RUN_STATISTICS if c not in runs.columns]
    other = runs["threshold"].to_numpy(dtype=np.float64) != threshold if not lacking else None
    if not len(runs) or (not lacking and not other.any()):
        return runs
    try:
        counted = scan_curves(path, runs, threshold, hits_only=not lacking)
    except (OSError, ValueError, KeyError) as err:
        warnings.append(f"{path} cannot be read ({' '.join(str(err).split())[:120]}): {_UNCOUNTED}")
        return runs
    runs = runs.copy()
    whole = counted.pop("points") >= runs["epochs"].to_numpy() + 1
    if other is not None and (other & ~whole).any():
        # A thinned curve misses epochs: its runs keep the counts their job made from every epoch.
        warnings.append(
            f"{int((other & ~whole).sum())} runs with thinned curves (train.record) counted "
            "epochs_to_threshold at another threshold; rerun `nnlab run` on the folder to train them "
            "again for this one"
        )
        counted = {k: np.where(whole, v, runs[k].to_numpy(dtype=np.float64)) for k, v in counted.items()}
    hit = counted.pop("epochs_to_threshold")
    runs["epochs_to_threshold"] = pd.array(hit, dtype="Int64")  # (NaN: never, a missing value)
    for k, v in counted.items():
        runs[k] = v
    return runs


_UNCOUNTED = "the summary counts no run as still descending or worse than at start"


def curve_batches(path: Path, ids, batch_size: int = 1 << 20):
    """curves.parquet ``path`` scanned a batch of rows at a time (never the whole table in memory):
    yields (idx, epoch, loss), numpy arrays of the rows whose run is one of ``ids`` (a sequence of
    str), ``idx`` its position in ``ids``; the run id is read as a dictionary and each batch's
    distinct ids are looked up once, not once per row."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    value_set = pa.array(np.asarray(ids, dtype=object), pa.string())
    # Streamed in pages (buffer_size), not a row group's column chunks read whole up front.
    source = pq.ParquetFile(path, read_dictionary=["run_id"], buffer_size=1 << 20, pre_buffer=False)
    for batch in source.iter_batches(batch_size=batch_size, columns=list(CURVES_COLUMNS), use_threads=False):
        column = batch.column("run_id")
        if pa.types.is_dictionary(column.type):
            idx = pc.take(pc.index_in(column.dictionary, value_set=value_set), column.indices)
        else:
            idx = pc.index_in(column, value_set=value_set)
        idx = pc.fill_null(idx, -1).to_numpy()
        mine = idx >= 0
        if not mine.any():
            continue
        epoch = batch.column("epoch").to_numpy(zero_copy_only=False).astype(np.int64)
        loss = batch.column("loss").to_numpy(zero_copy_only=False).astype(np.float64)
        yield idx[mine], epoch[mine], loss[mine]


def scan_curves(path: Path, runs: pd.DataFrame, threshold: float, *, hits_only: bool = False) -> dict:
    """The per-run statistics of ``runs`` counted from curves.parquet ``path`` in one scan of its row
    groups (never the whole table in memory): the columns of `curve_statistics` (only
    ``epochs_to_threshold`` and ``threshold`` with ``hits_only``), and ``points``, the losses stored
    per run. NaN where a run's curve lacks the epoch."""
    n = len(runs)
    E = runs["epochs"].to_numpy(dtype=np.int64)
    w = np.maximum(1, np.rint(0.05 * E).astype(np.int64))
    start, late = E - 2 * w + 1, E - np.maximum(1, np.rint(0.1 * E).astype(np.int64))
    never = np.iinfo(np.int64).max
    first, points = np.full(n, never), np.zeros(n, dtype=np.int64)
    initial, late_loss = np.full(n, np.nan), np.full(n, np.nan)
    window = None if hits_only else np.full((n, int(2 * w.max())), np.nan)
    for idx, epoch, loss in curve_batches(path, runs["run_id"].astype(str).to_numpy()):
        points += np.bincount(idx, minlength=n)
        hit = loss < threshold
        np.minimum.at(first, idx[hit], epoch[hit])
        if window is None:
            continue
        for target, at in ((initial, 0), (late_loss, late[idx])):
            m = epoch == at
            target[idx[m]] = loss[m]
        offset = epoch - start[idx]
        m = (offset >= 0) & (offset < 2 * w[idx])
        window[idx[m], offset[m]] = loss[m]
    out = {
        "epochs_to_threshold": np.where(first == never, np.nan, first.astype(np.float64)),
        "threshold": np.full(n, float(threshold)),
        "points": points,
    }
    if window is not None:
        before, last = np.full(n, np.nan), np.full(n, np.nan)
        for width in np.unique(w):
            rows = np.flatnonzero(w == width)
            block = np.ascontiguousarray(window[rows, : 2 * width])  # as curve_statistics takes them
            with np.errstate(invalid="ignore", over="ignore"):
                before[rows], last[rows] = block[:, :width].mean(axis=1), block[:, width:].mean(axis=1)
        out.update(initial_loss=initial, late_loss=late_loss, tail_before=before, tail_last=last)
    return out


SHORT = "runs stored in parts/"
_MISSING = " is missing"


def _read_tables(out: Path, stored: set[str], curves: bool):
    """runs.parquet and curves.parquet (when ``curves``) as read, and why they cannot be used as they
    are (missing, unreadable, lacking columns, runs of the part files ``stored`` or the curves of
    their runs), or None: (runs, curves, problem)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = ["runs.parquet", "curves.parquet"] if curves else ["runs.parquet"]
    frames = []
    for name, columns in zip(names, (RUNS_REQUIRED, CURVES_COLUMNS), strict=False):
        path = out / name
        if not path.is_file():
            return None, None, f"{path}{_MISSING}"
        try:
            lacking = [c for c in columns if c not in pq.read_schema(path).names]
            if lacking:
                return (
                    None,
                    None,
                    f"{path} lacks the column{'s' if len(lacking) > 1 else ''} {', '.join(lacking)}",
                )
            frames.append(pd.read_parquet(path))
        except (OSError, pa.ArrowException) as err:
            return None, None, f"{path} cannot be read ({' '.join(str(err).split())[:120]})"
    runs, table = frames[0], frames[1] if curves else None
    ids = set(runs["run_id"])
    if stored - ids:
        # Runs stored only in runs.parquet (parts/ thinned by hand) would be lost by a merge.
        if ids - stored:
            raise ExperimentError(
                f"{out}: runs.parquet and parts/ disagree ({len(ids - stored)} runs only in runs.parquet, "
                f"{len(stored - ids)} only in parts/); run `nnlab run {out / 'experiment.toml'} --out "
                f"{out}` to merge them"
            )
        return runs, table, f"{out}/runs.parquet lacks {len(stored - ids)} {SHORT}"
    lacking = ids - set(table["run_id"].unique()) if curves else set()
    if lacking:
        return runs, table, f"{out}/curves.parquet lacks the curves of {len(lacking)} runs"
    return runs, table, None


def _checked(out: Path, exp: Experiment, runs: pd.DataFrame, curves: pd.DataFrame | None):
    """The tables as read, checked against the experiment: (runs, curves, warnings). A run stored
    twice is counted once (a warning says so); a run that experiment.toml does not define, or whose
    settings differ from those its run id stands for, is an ExperimentError."""
    warnings = []
    twice = runs["run_id"].duplicated()
    if twice.any():
        warnings.append(
            f"runs.parquet holds {int(twice.sum())} rows of runs stored twice; each run counted once"
        )
        runs = runs[~twice].reset_index(drop=True)
    if curves is not None and len(curves) != (runs["epochs"] + 1).sum():  # (only then can it hold any)
        curves = curves.drop_duplicates(["run_id", "epoch"], ignore_index=True)
    expected = _expected_runs(exp, runs["run_id"])
    unknown = ~runs["run_id"].isin(expected.index)
    if unknown.any():
        row = runs[unknown].iloc[0]
        parts = _parts_holding(out, set(runs.loc[unknown, "run_id"]))
        where = (
            f" (in parts/{parts[0]}{f' and {len(parts) - 1} more' if len(parts) > 1 else ''})"
            if parts
            else ""
        )
        raise ExperimentError(
            f"{out}/experiment.toml does not define {int(unknown.sum())} of the {len(runs)} stored runs "
            f"(say {_settings(row)}){where}: it was changed after they were trained, or they come from "
            "another experiment; restore experiment.toml, or move those runs away"
        )
    # (Each axis under its column's name: the loss's is loss_fn.)
    axes = [a for a in (*AXES, "seed") if COLUMN_OF.get(a, a) in runs.columns]
    mine = expected.loc[runs["run_id"], axes].reset_index(drop=True)
    # (Parts written before an axis existed hold nulls in its column: its default.)
    column = {a: runs[COLUMN_OF.get(a, a)] for a in axes}
    theirs = {a: column[a].fillna(LATER_AXES[a]) if a in LATER_AXES else column[a] for a in axes}
    differ = [COLUMN_OF.get(a, a) for a in axes if not (mine[a].to_numpy() == theirs[a].to_numpy()).all()]
    if differ:
        raise ExperimentError(
            f"{out}/runs.parquet: its column{'s' if len(differ) > 1 else ''} {', '.join(differ)} "
            "disagree with the run ids (edited by hand?); delete runs.parquet to rebuild it from parts/"
        )
    return runs, curves, warnings


def _parts_holding(out: Path, ids: set[str]) -> list[str]:
    """The names of the part files of ``out`` that hold any of the runs ``ids``."""
    import pyarrow as pa

    names = []
    for path in part_files(out / PARTS):
        with pa.memory_map(str(path)) as source:
            if ids & set(pa.ipc.open_file(source).read_all().column("run_id").to_pylist()):
                names.append(path.name)
    return names


def _expected_runs(exp: Experiment, ids) -> pd.DataFrame:
    """The settings of each run of ``exp`` whose id is in ``ids``, indexed by run id."""
    import pandas as pd

    wanted = set(ids)
    configs = exp.configs()
    found, which, seeds = [], [], []
    for k, c in enumerate(configs):
        for s in exp.seeds:
            if (i := c.run_id(s)) in wanted:
                found.append(i)
                which.append(k)
                seeds.append(s)
    settings = pd.DataFrame([{a: getattr(c, a) for a in AXES} for c in configs], columns=list(AXES))
    frame = settings.iloc[which].reset_index(drop=True).assign(seed=seeds, run_id=found)
    return frame.set_index("run_id")


def _settings(row) -> str:
    return ", ".join(f"{a} {row[a]}" for a in ("depth", "width", "lr", "seed") if a in row)


def read_curves(out: Path, run_ids=None, *, epochs=None) -> pd.DataFrame:
    """curves.parquet's rows (``run_id``, ``epoch``, ``loss``) of the runs ``run_ids`` (default all) at
    the ``epochs`` given (default every stored one), sorted by run id and epoch, each (run, epoch)
    once. Read a batch of rows at a time (`curve_batches`), so that memory goes with the rows asked
    for, not with the table; the run id is an ordered categorical column (about 20 bytes a row). The
    reader the figures use (`nnlab.ResultsFolder.curves_of`): the seeds they draw, never the whole
    table."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(out) / "curves.parquet"
    try:
        if run_ids is None:
            ids = np.asarray(
                pq.read_table(path, columns=["run_id"], read_dictionary=["run_id"])["run_id"]
                .unique()
                .dictionary_decode()
                .to_pylist(),
                dtype=object,
            )
        else:
            ids = np.asarray([str(i) for i in run_ids], dtype=object)
        ids = np.unique(ids)  # (sorted: the codes sort as the ids do)
        pieces = list(curve_batches(path, ids, batch_size=1 << 18))
    except (OSError, pa.ArrowException) as err:
        raise ExperimentError(
            f"{path} cannot be read ({' '.join(str(err).split())[:120]}); delete it and rerun `nnlab run` "
            "on the experiment: it is rebuilt from parts/"
        ) from None
    code, epoch, loss = (
        np.concatenate([p[k] for p in pieces]) if pieces else np.empty(0, dtype)
        for k, dtype in enumerate((np.int32, np.int64, np.float64))
    )
    if epochs is not None:
        at = np.isin(epoch, np.asarray(epochs, dtype=np.int64))
        code, epoch, loss = code[at], epoch[at], loss[at]
    # The merge writes the rows sorted by run id and epoch, each once: then nothing is copied again.
    later = (code[1:] > code[:-1]) | ((code[1:] == code[:-1]) & (epoch[1:] > epoch[:-1]))
    if not later.all():
        order = np.lexsort((epoch, code))
        code, epoch, loss = code[order], epoch[order], loss[order]
        once = np.ones(len(code), dtype=bool)
        once[1:] = (code[1:] != code[:-1]) | (epoch[1:] != epoch[:-1])
        code, epoch, loss = code[once], epoch[once], loss[once]
    del later
    run_id = pd.Categorical.from_codes(code, categories=ids, ordered=True)
    return pd.DataFrame({"run_id": run_id, "epoch": epoch, "loss": loss}, copy=False)


def sample_runs(runs: pd.DataFrame, seeds: int) -> pd.DataFrame:
    """The runs of each configuration's first ``seeds`` seeds (the smallest): a fixed sample, the same
    whatever else the folder holds, for figures that draw one curve per seed."""
    axes = [a for a in AXIS_COLUMNS if a in runs.columns]
    return runs.sort_values([*axes, "seed"], kind="stable").groupby(axes, sort=False).head(seeds)


def _parts_have(out: Path, column: str) -> bool:
    """Whether any part file of ``out`` has the column ``column`` (read from the files' schemas)."""
    import pyarrow as pa

    for path in part_files(out / PARTS):
        try:
            with pa.memory_map(str(path)) as source:
                if column in pa.ipc.open_file(source).schema.names:
                    return True
        except (OSError, pa.ArrowInvalid):
            return True  # (read_parts says what is wrong with it)
    return False


def read_networks(out: Path, runs: pd.DataFrame) -> dict[str, np.ndarray]:
    """The final parameters (n_params,) of each run of ``runs`` stored in ``out``/networks.parquet
    (experiments with ``save_networks = true``), by run id; empty when none were saved."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(out) / "networks.parquet"
    wanted = set(runs["run_id"])
    if not path.is_file():
        # Not merged (a folder that could not be written): the part files hold them, if any part
        # has them (its schema says so without reading its rows: most sweeps save no networks).
        if not _parts_have(Path(out), "params"):
            return {}
        parts = read_parts(Path(out), ["run_id", "params"])
        if parts is None or "params" not in parts.column_names:
            return {}
        ids, params = parts["run_id"].to_pylist(), parts["params"].to_pylist()
        return {i: np.asarray(p) for i, p in zip(ids, params, strict=True) if i in wanted and p is not None}
    try:
        table = pq.read_table(path, columns=["run_id", "params"])
    except (OSError, pa.ArrowException, KeyError) as err:
        raise ExperimentError(
            f"{path} cannot be read ({' '.join(str(err).split())[:120]}); delete it and rerun `nnlab run` "
            "on the experiment: it is rebuilt from parts/"
        ) from None
    ids = table["run_id"].to_pylist()
    params = table["params"].to_pylist()
    return {i: np.asarray(p) for i, p in zip(ids, params, strict=True) if i in wanted and p is not None}
