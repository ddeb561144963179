"""One object for a results folder: its experiment, tables and statistics (`ResultsFolder`, made by
`open_folder`). `nnlab.load` returns it; summary, figures, report, compare and the CLI take it.

It reads the folder through the sweep's store (tables, saved networks, certificates) and computes
the statistics (analysis); its figures and report are drawn and written by `nnlab.report`.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnlab import analysis
from nnlab.errors import InputError
from nnlab.network import Network, network_from_flat
from nnlab.sweep.endpoints import certificates
from nnlab.sweep.experiment import Experiment, ExperimentError
from nnlab.sweep.store import read_curves, read_networks, read_results, sample_runs

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


@dataclass(frozen=True, eq=False)
class ResultsFolder:
    """A results folder with its statistics: what `nnlab.load` returns and what `nnlab summary`,
    `figures`, `report` and `compare` read (`open_folder` makes one).

    Attributes
    ----------
    path : Path
        The results folder.
    experiment : Experiment
        The resolved experiment (experiment.toml).
    runs, curves : DataFrame
        runs.parquet (one row per run; docs/reference.md lists the columns) and curves.parquet
        (``run_id``, ``epoch``, ``loss``: the full-data training loss), or the part files of a sweep
        interrupted before its merge. ``curves`` is read on first use (the statistics never need
        it: see `curves_of` for a sample of them); None when the folder was opened without them.
    with_curves : bool
        Whether ``curves`` may be read.
    total : int
        The runs the experiment defines; ``len(runs) < total`` means a partial sweep.
    summary : DataFrame
        One row per configuration (`nnlab.analysis.summarize`, with ``redundant_units`` when networks
        were saved): the table `nnlab summary --format csv` prints.
    capacity : DataFrame
        `nnlab.analysis.capacity`: the smallest width that solves, and that is over-capacity.
    redundant : DataFrame or None
        `nnlab.analysis.redundancy` per run, when the experiment saved its networks.
    gtol, rtol : float
        The tolerances the uncertified optima estimate was counted with.
    warnings : tuple of str
        What reading repaired or worked around, and what could not be computed (and why).
    endpoints, optima, barriers : DataFrame or None
        endpoints.parquet, optima.parquet and barriers.parquet, when `nnlab landscape` certified the
        folder's end points.
    tests : DataFrame or None
        `nnlab.analysis.neighbour_tests`: neighbouring widths compared.
    best : DataFrame or None
        `nnlab.analysis.best_settings`: each architecture at its best setting, when lr or the
        initialization is swept.
    """

    path: Path
    experiment: Experiment
    runs: pd.DataFrame
    with_curves: bool
    total: int
    summary: pd.DataFrame
    redundant: pd.DataFrame | None = None
    gtol: float = analysis.GTOL
    rtol: float = analysis.RTOL
    warnings: tuple[str, ...] = ()
    endpoints: pd.DataFrame | None = None
    optima: pd.DataFrame | None = None
    barriers: pd.DataFrame | None = None

    # (Computed on first use: `nnlab summary` prints none of them, and their tests import scipy.stats.)
    @functools.cached_property
    def capacity(self) -> pd.DataFrame:
        """`nnlab.analysis.capacity`: the smallest width that solves, and that is over-capacity."""
        return analysis.capacity(self.summary)

    @functools.cached_property
    def tests(self) -> pd.DataFrame:
        """`nnlab.analysis.neighbour_tests`: neighbouring widths compared."""
        return analysis.neighbour_tests(self.runs, self.experiment.threshold)

    @functools.cached_property
    def best(self) -> pd.DataFrame:
        """`nnlab.analysis.best_settings`: each architecture at its best setting (empty when no
        tuning axis is swept)."""
        return analysis.best_settings(self.summary)

    @property
    def partial(self) -> bool:
        """True while fewer runs are stored than the experiment defines."""
        return len(self.runs) < self.total

    @functools.cached_property
    def curves(self) -> pd.DataFrame | None:
        """curves.parquet whole (read on first use; `curves_of` reads a part of it)."""
        if not self.with_curves:
            return None
        curves = read_results(self.path, curves=True).curves
        return curves[curves["run_id"].isin(self.runs["run_id"])].reset_index(drop=True)

    def curves_of(self, run_ids=None, *, seeds: int | None = None, epochs=None) -> pd.DataFrame:
        """Some of the curves, read without the rest (`nnlab.sweep.store.read_curves`): of the runs
        ``run_ids`` (default all), or of the first ``seeds`` seeds of each configuration, at the
        ``epochs`` given (default every stored one)."""
        ids = self.runs["run_id"] if run_ids is None else run_ids
        if seeds is not None:
            ids = sample_runs(self.runs, seeds)["run_id"]
        ids = {str(i) for i in ids}
        try:
            got = read_curves(self.path, ids, epochs=epochs)
        except ExperimentError:
            got = None
        if got is not None and got["run_id"].nunique() == len(ids & self._stored):
            return got
        # curves.parquet damaged, or short of runs stored in parts/ (merged for this command only,
        # the folder not writable): `curves`, which rebuilds it from parts/ as the readers do.
        whole = self.curves
        keep = whole["run_id"].isin(ids)
        if epochs is not None:
            keep &= whole["epoch"].isin(np.asarray(epochs, dtype=np.int64))
        return whole[keep].reset_index(drop=True)

    @functools.cached_property
    def _stored(self) -> set[str]:
        return set(self.runs["run_id"])

    @functools.cached_property
    def manifest(self) -> dict:
        """manifest.json: versions, git commit, sessions (start, end, runs trained / reused / failed,
        interrupted), failures; {} when absent."""
        path = self.path / "manifest.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    @functools.cached_property
    def networks(self) -> pd.DataFrame | None:
        """networks.parquet: ``run_id``, ``params`` (the final network, flattened as
        `nnlab.network.flat_params`), for experiments with ``save_networks = true``; else None."""
        import pandas as pd

        path = self.path / "networks.parquet"
        return pd.read_parquet(path) if path.is_file() else None

    def network(self, run_id: str) -> Network:
        """The final network of run ``run_id`` (one replica, its seed in ``seeds``); needs saved networks."""
        from nnlab.sweep.planning import data_shape

        row = self.runs.loc[self.runs["run_id"] == run_id]
        if not len(row):
            raise InputError(f"run_id: no run {run_id!r} in {self.path}")
        saved = self.networks
        params = None if saved is None else saved.loc[saved["run_id"] == run_id, "params"]
        if params is None or not len(params):
            raise InputError(
                f"run_id: no saved network for {run_id!r} (set save_networks = true in the experiment "
                "and rerun)"
            )
        r = row.iloc[0]
        _, _, d, out = data_shape(self.experiment)
        sizes = [d, *[int(r["width"])] * int(r["depth"]), out]
        net = network_from_flat(
            np.asarray(params.iloc[0])[None, :],
            sizes,
            bias=bool(r["bias"]),
            hidden=r["hidden"],
            output=r["output"],
        )
        return Network(net.weights, net.biases, net.hidden, net.output, (int(r["seed"]),))

    @functools.cached_property
    def figures(self) -> dict[str, Figure]:
        """The figures `nnlab figures` draws, by name (drawn on first use; `nnlab.figures.figures_for`
        says which apply)."""
        return _report().figures(self)

    @functools.cached_property
    def report(self) -> str:
        """The text of _report().md as `nnlab report` writes it (the figures as figures/NAME.png)."""
        return _report().report(self, [Path("figures") / f"{stem}.png" for stem in self.figures])

    def table(self, format: str = "text", *, wide: bool = False) -> str:
        """The summary as `nnlab summary --format FORMAT [--wide]` prints it: text, markdown or csv."""
        return _report().table(self, format, wide=wide)

    def save_figures(self, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
        """Write the figures into DIR/figures/, as `nnlab figures` does; returns the files."""
        return _report().write_figures(self, tuple(formats))

    def write_report(self, formats: Sequence[str] = ("png", "svg")) -> Path:
        """Write DIR/_report().md and its figures, as `nnlab report` does; returns its path."""
        return _report().write_report(self, tuple(formats))

    def __repr__(self) -> str:
        stored = f"{len(self.runs):,}/{self.total:,} runs" + (" (partial)" if self.partial else "")
        extra = ", endpoints" if self.endpoints is not None else ""
        return (
            f"<nnlab.ResultsFolder {self.path}: experiment {self.experiment.name!r}, {stored}, "
            f"{len(self.summary)} configurations; .runs .curves .summary .figures .report{extra}>"
        )


def open_folder(
    folder: Path,
    *,
    curves: bool = True,
    gtol: float = analysis.GTOL,
    rtol: float = analysis.RTOL,
    reps: int = analysis.BOOTSTRAP_REPS,
) -> ResultsFolder:
    """Read ``folder`` and compute its statistics (see `nnlab.analysis.summarize` for gtol, rtol and
    reps); ``curves``: whether `ResultsFolder.curves` may read curves.parquet (on first use)."""
    folder = check_folder(folder)
    for name, value in (("gtol", gtol), ("rtol", rtol)):
        check_tolerance(name, value)
    # The statistics are read from runs.parquet's per-run columns: curves.parquet is never loaded.
    results = read_results(folder, curves=False)
    exp = results.experiment
    params = read_networks(folder, results.runs)
    redundant = None
    warnings = list(results.warnings)
    if params:
        from nnlab.sweep.runner import load_data  # (imports the engine: only when networks were saved)

        # Pruning needs the data; the tables do not, so a moved or changed data file costs only it.
        try:
            X, Y, _, _ = load_data(exp)
        except ValueError as err:
            warnings.append(f"redundant units not counted: {err}")
        else:
            redundant = analysis.redundancy(results.runs, params, X, Y, exp.threshold)
    (endpoints, optima, barriers), more = certificates(folder, results.runs, exp.threshold)
    warnings += more
    summary = analysis.summarize(
        results.runs,
        exp.threshold,
        gtol=gtol,
        rtol=rtol,
        redundant=redundant,
        endpoints=endpoints,
        reps=reps,
    )
    return ResultsFolder(
        results.path,
        exp,
        results.runs,
        curves,
        results.total,
        summary,
        redundant,
        gtol,
        rtol,
        tuple(warnings),
        endpoints,
        optima,
        barriers,
    )


def check_folder(folder: object) -> Path:
    """A results folder's path as a Path: a str or path-like, not empty (which would mean the
    current folder)."""
    if isinstance(folder, ResultsFolder):
        return folder.path
    if not isinstance(folder, str | os.PathLike) or not str(folder).strip():
        raise InputError(f"folder: expected a results folder's path (a str or Path), got {folder!r}")
    return Path(folder)


def check_tolerance(name: str, value: object) -> float:
    """``gtol`` and ``rtol``, as `nnlab summary` takes them: a finite number >= 0."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not ok or not (math.isfinite(value) and value >= 0):
        raise InputError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


def _report():
    """nnlab.report, which draws and writes what this object holds (imported when first needed)."""
    from nnlab import report

    return report
