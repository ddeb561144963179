"""The front door for notebooks and scripts: a results folder as one object (`load`), a sweep run from
an experiment file or a plain dict with the resume and parallelism of `nnlab run` (`run`), and several
sweeps side by side (`compare`). `nnlab.load`, `nnlab.run` and `nnlab.compare` are these functions.

    res = nnlab.run("experiments/quick.toml", jobs=2)   # or a dict; resumes like `nnlab run`
    res.summary                                          # what `nnlab summary --format csv` prints
    res.figures["capacity"]                              # a matplotlib Figure
    both = nnlab.compare("results/quick", "results/xor_capacity")
    both.summary                                         # one table, the sweeps in a `sweep` column

The top room: it opens a folder as a `nnlab.results.ResultsFolder`, runs sweeps through
`nnlab.sweep`, and draws through `nnlab.report` and `nnlab.figures`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnlab import analysis, report
from nnlab.errors import InputError
from nnlab.results import ResultsFolder, check_folder, open_folder
from nnlab.sweep.experiment import Experiment, ExperimentError, from_dict
from nnlab.sweep.experiment import load as load_experiment
from nnlab.sweep.folder import atomic_write_text, make_dir, writing
from nnlab.sweep.progress import PlainProgress, compile_note, run_line

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from nnlab.sweep.planning import Plan


def load(folder: str | Path, *, gtol: float = analysis.GTOL, rtol: float = analysis.RTOL) -> ResultsFolder:
    """Open a results folder written by `nnlab run` (or `run`) as one object.

    Parameters
    ----------
    folder : str or Path
        The results folder (runs.parquet, curves.parquet, experiment.toml, ...). A sweep interrupted
        before its merge is merged first, as `nnlab summary` does.
    gtol, rtol : float
        Tolerances of the uncertified optima estimate (`nnlab.analysis.summarize`).

    Returns
    -------
    ResultsFolder
        ``runs``, ``curves``, ``summary``, ``figures``, ``report``, ``networks``, ``endpoints``, ...
        Partial results and what could not be computed are also issued as Python warnings.

    Raises
    ------
    ExperimentError
        (a ValueError) when the folder holds no nnlab results, or no run yet.
    """
    s = open_folder(check_folder(folder), curves=True, gtol=gtol, rtol=rtol)
    if s.partial:
        warnings.warn(f"{folder}: partial results, {len(s.runs)} of {s.total} runs stored", stacklevel=2)
    for warning in s.warnings:
        warnings.warn(f"{folder}: {warning}", stacklevel=2)
    return s


def experiment_of(
    experiment: str | Path | Mapping[str, Any] | Experiment, overrides: Sequence[str] = ()
) -> Experiment:
    """An `Experiment` from a file's path, a plain dict shaped like an experiment file (a `file`
    task's relative path then read from the current folder), or an Experiment; ``overrides`` as
    ``--set`` takes them (``"train.epochs=50"``)."""
    if isinstance(experiment, Experiment):
        if overrides:
            raise InputError("overrides: apply them to an experiment file or dict, not to an Experiment")
        return experiment
    if isinstance(experiment, Mapping):
        return from_dict(experiment, overrides)
    if isinstance(experiment, str | Path):
        return load_experiment(experiment, overrides)
    raise InputError(
        f"experiment: expected a file's path, a dict or an Experiment, got {type(experiment).__name__}"
    )


def run(
    experiment: str | Path | Mapping[str, Any] | Experiment,
    *,
    out: str | Path | None = None,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    fresh: bool = False,
    overrides: Sequence[str] = (),
    quiet: bool = False,
    dry_run: bool = False,
) -> ResultsFolder | Plan:
    """Run (or resume) an experiment's sweep, as `nnlab run` does, and open its results folder.

    Parameters
    ----------
    experiment : str, Path, dict or Experiment
        An experiment file, or a dict shaped like one::

            {"name": "mine", "task": {"kind": "xor"}, "model": {"width": [2, 4]},
             "train": {"lr": 0.1, "epochs": 200, "seeds": 32}}

        (``seeds = 32`` means seeds 0..31 here as in a file; `nnlab.init_network(seeds=32)` is one
        replica with seed 32.)
    out : str or Path, optional
        Results folder (default results/NAME/). Runs already stored there are reused.
    jobs : int
        Worker processes (1: this process, one thread).
    backend : {"loky", "dask"}
        joblib backend for ``jobs > 1``; "dask" on ``scheduler`` or a local cluster.
    scheduler : str, optional
        Address of a Dask scheduler (with backend "dask").
    fresh : bool
        Discard the runs stored in ``out`` first.
    overrides : sequence of str
        ``"section.key=value"`` (or ``"threshold=..."``), as ``--set`` takes them.
    quiet : bool
        Print nothing; otherwise plain progress lines (every 5%, after a couple of seconds), a note
        when kernels are compiled (the first use, 20-40 s) and one line at the end with the runs
        trained, reused and failed.
    dry_run : bool
        Only plan: return the `nnlab.sweep.planning.Plan` (print it for the text of ``--dry-run``), write
        nothing.

    Returns
    -------
    ResultsFolder, or Plan with ``dry_run``

    Raises
    ------
    ExperimentError
        (a ValueError) for a bad experiment or option, or a sweep refused up front (memory, or a grid
        past the limits of `nnlab.sweep.planning`); nothing is written then.
    RuntimeError
        When jobs failed: the message says how many, the first error, and that the runs stored are
        kept (`load` reads them; running again retries the failed jobs).
    KeyboardInterrupt
        Interrupted: the finished jobs are stored and recorded in manifest.json; run again to resume.
    """
    on_compile = None if quiet else lambda layouts: print(compile_note(layouts, jobs), flush=True)
    folder, manifest = start(
        experiment,
        out=out,
        jobs=jobs,
        backend=backend,
        scheduler=scheduler,
        fresh=fresh,
        overrides=overrides,
        dry_run=dry_run,
        on_progress=None if quiet else PlainProgress(experiment_of(experiment, overrides).name),
        on_compile=on_compile,
    )
    if dry_run:
        return manifest
    if not quiet:
        print(run_line(manifest, folder), flush=True)
    failures = manifest["failures"]
    if failures:
        raise RuntimeError(
            f"{len(failures)} jobs failed ({manifest['sessions'][-1]['runs_failed']} runs), the first: "
            f"{failures[0]}; the {manifest['runs_done']} runs stored are kept in {folder}/ (nnlab.load "
            "reads them; running again retries the failed jobs)"
        )
    return load(folder)


def folder_of(exp: Experiment, out: str | Path | None = None) -> Path:
    """The results folder of a sweep: ``out``, or results/NAME/ by default."""
    return Path(out) if out is not None else Path("results") / exp.name


def start(
    experiment: str | Path | Mapping[str, Any] | Experiment,
    *,
    out: str | Path | None = None,
    jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    fresh: bool = False,
    overrides: Sequence[str] = (),
    dry_run: bool = False,
    on_progress=None,
    on_compile=None,
    on_notice=None,
) -> tuple[Path, dict | Plan]:
    """The one way into a sweep, for `run` and `nnlab run`: check the options, resolve the experiment
    (`experiment_of`) and its folder (default results/NAME/), then plan it (``dry_run``: the
    `nnlab.sweep.planning.Plan`) or run it (`nnlab.sweep.run`: its manifest). Returns (folder,
    manifest or plan); the callbacks are `nnlab.sweep.run`'s."""
    from nnlab import sweep

    if backend not in ("loky", "dask"):
        raise ExperimentError(f"backend: expected 'loky' or 'dask', got {backend!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 256:
        raise ExperimentError(f"jobs: expected an int in 1..256, got {jobs!r}")
    if scheduler and backend != "dask":
        raise ExperimentError("scheduler: only with backend 'dask'")
    exp = experiment_of(experiment, overrides)
    folder = folder_of(exp, out)
    if dry_run:
        return folder, sweep.dry_run(exp, folder, jobs=jobs, scheduler=scheduler)
    manifest = sweep.run(
        exp,
        folder,
        jobs=jobs,
        fresh=fresh,
        backend=backend,
        scheduler=scheduler,
        on_progress=on_progress,
        on_compile=on_compile,
        on_notice=on_notice,
    )
    return folder, manifest


def labels(paths: Sequence[str | Path]) -> list[str]:
    """A short distinct name per folder: its name, with as many parent folders as it takes to tell
    folders of the same name apart (``a/quick``, ``b/quick``)."""
    parts = [Path(p).resolve().parts for p in paths]
    depth = [1] * len(parts)
    while True:
        names = ["/".join(p[-k:]) for p, k in zip(parts, depth, strict=True)]
        clash = {n for n in names if names.count(n) > 1}
        grow = [i for i, n in enumerate(names) if n in clash and depth[i] < len(parts[i])]
        if not grow:
            return names
        for i in grow:
            depth[i] += 1


@dataclass(frozen=True, eq=False)
class Comparison:
    """Several results folders side by side (`compare`).

    Attributes
    ----------
    folders : tuple of ResultsFolder
    names : tuple of str
        Each folder's label (its name, `labels`): the ``sweep`` column.
    """

    folders: tuple[ResultsFolder, ...]
    names: tuple[str, ...]

    @functools.cached_property
    def summary(self) -> pd.DataFrame:
        """Every folder's summary in one table: ``sweep`` (the folder's label) and ``threshold``
        (each sweep's own: success is counted against it) first, then the summary's columns (a
        column one sweep lacks, say the certificates, is empty for the others)."""
        import pandas as pd

        frames = [
            f.summary.assign(sweep=name, threshold=f.experiment.threshold)
            for name, f in zip(self.names, self.folders, strict=True)
        ]
        table = pd.concat(frames, ignore_index=True, sort=False)
        return table[["sweep", "threshold", *[c for c in table.columns if c not in ("sweep", "threshold")]]]

    @functools.cached_property
    def runs(self) -> pd.DataFrame:
        """Every folder's runs.parquet in one table, a ``sweep`` column first."""
        import pandas as pd

        frames = [f.runs.assign(sweep=name) for name, f in zip(self.names, self.folders, strict=True)]
        table = pd.concat(frames, ignore_index=True, sort=False)
        return table[["sweep", *[c for c in table.columns if c != "sweep"]]]

    def table(self, format: str = "text", *, wide: bool = False) -> str:
        """The combined summary: "csv" (every column, `summary`), or "markdown" / "text"
        (`nnlab.report.compare_table`: the fields and axes that differ, each sweep's main columns,
        or with ``wide`` every column `nnlab summary --wide` shows, a ``sweep`` column first)."""
        if format == "csv":
            return self.summary.to_csv(index=False)
        return report.compare_table(list(self.folders), list(self.names), format, wide=wide)

    @functools.cached_property
    def figures(self) -> Mapping[str, Figure]:
        """Each figure any of the sweeps has, the sweeps drawn together on shared axes (one line
        style and marker per sweep, named in the legend; `nnlab.report.together`), by figure name."""
        return self.figures_at()

    def figures_at(self, size: str | None = None) -> dict[str, Figure]:
        """`figures` at a paper's column width (``size``: "single" or "double")."""
        return report.together(self.folders, self.names, size)

    def save(self, out: str | Path, formats: Sequence[str] = ("png",), size: str | None = None) -> list[Path]:
        """Write summary.csv, summary.md and figures/NAME.FORMAT (the sweeps drawn together, each
        with its caption in NAME.txt) into ``out``; returns the files written."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ExperimentError(f"--out: {out} exists and is not a folder")
        with writing(out):
            out.mkdir(parents=True, exist_ok=True)
        figures = make_dir(out / "figures")
        written = []
        for name, format in (("summary.csv", "csv"), ("summary.md", "markdown")):
            atomic_write_text(out / name, self.table(format, wide=True))
            written.append(out / name)
        drawn = self.figures if size is None else self.figures_at(size)
        return written + report.save_figures(drawn, figures, tuple(formats))


def check_compared(folders: Sequence[str | Path | ResultsFolder]) -> list[Path]:
    """The folders of a comparison (`compare`, `nnlab compare`): two or more, none twice (the same
    folder by two names counts twice); their paths."""
    if len(folders) < 2:
        raise ExperimentError(f"compare: give two or more results folders, got {len(folders)}")
    paths = [check_folder(f) for f in folders]
    seen: dict[Path, Path] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            same = "" if str(seen[key]) == str(path) else f" (as {seen[key]})"
            raise ExperimentError(f"compare: {path} is given twice{same}; give each results folder once")
        seen[key] = path
    return paths


def compare(*folders: str | Path | ResultsFolder, names: Sequence[str] | None = None) -> Comparison:
    """Several results folders side by side: one summary with a ``sweep`` column, the figures
    drawn together (`nnlab compare`).

    Parameters
    ----------
    *folders : str, Path or ResultsFolder
        Two or more results folders (paths are opened with `load`).
    names : sequence of str, optional
        Their labels; by default each folder's name, with its parents where names repeat (`labels`).

    Returns
    -------
    Comparison
        ``summary`` (DataFrame), ``runs``, ``table(format)``, ``figures`` (dict of Figures), ``save(out)``.
    """
    check_compared(folders)
    opened = tuple(f if isinstance(f, ResultsFolder) else load(f) for f in folders)
    names = tuple(names) if names is not None else tuple(labels([f.path for f in opened]))
    if len(names) != len(opened) or len(set(names)) != len(names):
        raise ExperimentError(f"names: expected {len(opened)} distinct names, got {list(names)}")
    return Comparison(opened, names)
