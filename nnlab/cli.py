"""The `nnlab` command line: a thin typer layer over the library."""

from __future__ import annotations

import contextlib
import enum
import inspect
import math
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

import nnlab
from nnlab import analysis, tasks
from nnlab.errors import InputError
from nnlab.landscape.polish import Options as CertifyOptions
from nnlab.sweep.folder import FolderBusy, StorageError

# click's exception classes, wherever this typer takes them from (newer typers vendor click).
_click_errors = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp = getattr(_click_errors, "NoArgsIsHelpError", ())


class _ReadableHelp:
    """Help without type tags on flags (typer shows ``--fresh <bool>``; a flag takes no value)."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and getattr(param, "metavar", None) is None:
                param.metavar = ""
            elif (
                param.param_type_name == "argument" and param.metavar and hasattr(param, "display_type_rich")
            ):
                # The argument's name (DIR..., EXPERIMENT) says what it takes; typer would add <list[Path]>.
                param.display_type_rich = lambda ctx: ""
        return params


def _paragraphs(text: str | None) -> str | None:
    """A docstring's paragraphs each on one line: typer's rich help keeps a docstring's line breaks,
    and then wraps those lines again, which broke sentences mid-way."""
    if not text:
        return text
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(text).split("\n\n"))


class _Command(_ReadableHelp, TyperCommand):
    """A command whose help reads plainly (`_ReadableHelp`), its paragraphs wrapped at the
    terminal's width only."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.help = _paragraphs(self.help)


class _OneLineErrors(_ReadableHelp, TyperGroup):
    """Usage errors (a bad option value, an unknown command) as one line on stderr, exit 2, as the
    contract wants for every bad input, instead of click's usage box."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NoArgsIsHelp as err:
            typer.echo(err.format_message())
            code = 0
        except _click_errors.ClickException as err:
            # "nnlab run", whatever name the program was started under
            path = err.ctx.command_path.split(" ", 1) if getattr(err, "ctx", None) else []
            where = " ".join(["nnlab", *path[1:]])
            typer.echo(f"{where}: {err.format_message()}", err=True)
            code = err.exit_code
        except typer.Abort:
            typer.echo("nnlab: aborted", err=True)
            code = 1
        except InputError as err:  # what the user got wrong (a planted link in a folder too)
            typer.echo(f"nnlab: {err}", err=True)
            code = 2
        except (FolderBusy, StorageError) as err:
            typer.echo(f"nnlab: {err}", err=True)
            code = 1
        except OSError as err:  # the file system refused (permissions, a full disk): nothing of ours
            where = f": {err.filename}" if err.filename else ""
            typer.echo(f"nnlab: {err.strerror or err}{where}", err=True)
            code = 1
        except Exception as err:
            # A bug of nnlab's: one line saying so, the traceback in a file for the report;
            # NNLAB_TRACEBACK=1 shows it to a developer instead.
            if os.environ.get("NNLAB_TRACEBACK"):
                raise
            message = " ".join(str(err).split())
            typer.echo(
                f"nnlab: internal error (a bug in nnlab): {type(err).__name__}: {message[:300]}; "
                f"{_traceback_file(err)}",
                err=True,
            )
            code = 1
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _traceback_file(err: BaseException) -> str:
    """Write ``err``'s traceback to a new file in the temporary folder; says where (or that it
    could not be written)."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="nnlab-traceback-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f"nnlab {nnlab.__version__}, {' '.join(sys.argv)}\n\n")
            traceback.print_exception(err, file=out)
    except OSError:
        return "its traceback could not be written (rerun with NNLAB_TRACEBACK=1 to see it)"
    return f"its traceback is in {path}"


app = typer.Typer(
    cls=_OneLineErrors,
    help="nnlab: optimization studies of feedforward networks trained with SGD.",
    no_args_is_help=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nnlab {nnlab.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """nnlab: optimization studies of feedforward networks trained with SGD."""


class Backend(enum.StrEnum):
    loky = "loky"
    dask = "dask"


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"nnlab: {message}", err=True)
    raise typer.Exit(code)


def _notice(message: str) -> None:
    typer.echo(f"nnlab: {message}", err=True)


def _folder(text: str) -> Path:
    """A folder option's value: an empty one would silently mean the current folder."""
    if not text.strip():
        raise typer.BadParameter("expected a folder, got an empty name")
    return Path(text)


def _at_least(low: float, *, strict: bool = False):
    """A callback accepting finite numbers >= low (> low when ``strict``): NaN is no number."""
    sign = ">" if strict else ">="

    def check(value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and (value > low if strict else value >= low)):
            raise typer.BadParameter(f"expected a finite number {sign} {low:g}, got {value:g}")
        return value

    return check


@contextlib.contextmanager
def _term_is_interrupt():
    """SIGTERM (kill, a job scheduler's stop) ends a command like Ctrl-C: it says what is stored,
    exits 130, and its worker processes end with it."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _progress(name: str, what: str = "runs"):
    """A rich progress bar of items (runs) done / total, items per second and time left, and its
    callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    task = progress.add_task(f"{name}: {what}", total=None, rate="")

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)
        speed = progress.tasks[task].speed
        progress.update(task, rate=f"{speed:.0f} {what}/s" if speed else "")

    return progress, update


AUTO = "auto"


def _jobs(text: str) -> int | str:
    """--jobs: an int in 1..256, or auto (`_auto_jobs`)."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        jobs = int(text)
    except ValueError:
        raise typer.BadParameter(f"expected an int in 1..256 or auto, got {text!r}") from None
    if not 1 <= jobs <= 256:
        raise typer.BadParameter(f"expected an int in 1..256 or auto, got {jobs}")
    return jobs


Jobs = Annotated[
    str,  # (an int or "auto": `_jobs` parses it)
    typer.Option(
        parser=_jobs,
        metavar="N|auto",
        envvar="NNLAB_JOBS",
        show_envvar=True,
        help="Worker processes (Dask: local workers); auto: one per core this process may use, no "
        "more than there are jobs, nor than fit in the memory available.",
    ),
]
BackendOption = Annotated[Backend, typer.Option(metavar="loky|dask", help="joblib backend for --jobs > 1.")]
Scheduler = Annotated[
    str | None, typer.Option(metavar="ADDRESS", help="Dask scheduler address (with --backend dask).")
]
Quiet = Annotated[
    bool, typer.Option("--quiet", help="No progress (bar, lines or notes); the last line only.")
]


def _feedback(name: str, what: str, quiet: bool):
    """(rich progress bar or None, progress callback or None): a bar on a terminal, plain lines every
    5% (`nnlab.sweep.progress.PlainProgress`) elsewhere (a log, a pipe), nothing when quiet."""
    from nnlab.sweep.progress import PlainProgress

    if quiet:
        return None, None
    if sys.stdout.isatty():
        return _progress(name, what)
    return None, PlainProgress(name, what)


def _say(progress):
    """Print a line above a running progress bar, or plainly."""
    return progress.console.print if progress is not None else typer.echo


@app.command("run", cls=_Command)
def run_command(
    experiment: Annotated[
        Path, typer.Argument(metavar="EXPERIMENT", help="Experiment file (TOML), see experiments/README.md.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(parser=_folder, metavar="DIR", help="Results folder (default: results/NAME/)."),
    ] = None,
    jobs: Jobs = AUTO,
    backend: BackendOption = Backend.loky,
    scheduler: Scheduler = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Override a field: section.key=value, or key=value at the top level (repeatable).",
        ),
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Discard runs already stored in the results folder.")
    ] = False,
    quiet: Quiet = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the plan (configurations, runs, parameters, memory per job, estimated time) and "
            "write nothing; exit 2 if the sweep would be refused.",
        ),
    ] = False,
) -> None:
    """Run (or resume) an experiment's sweep; writes runs.parquet and curves.parquet.

    A sweep that cannot fit in memory, or whose grid is absurd (more than 10^6 runs, 10^8 loss values
    or 10,000 layers), is refused before anything is written. The last line says how many runs this
    session trained, reused (stored by an earlier one) and lost to failed jobs.
    """
    from nnlab import front
    from nnlab.sweep.progress import compile_note, run_line

    if scheduler and backend is not Backend.dask:
        _fail("--scheduler: only with --backend dask")
    folder = exp = None
    try:
        exp = front.experiment_of(experiment, set_ or [])
        folder = front.folder_of(exp, out)
        if jobs == AUTO:
            jobs = _auto_jobs(exp, None if scheduler else folder)
        progress, on_progress = (None, None) if dry_run else _feedback(exp.name, "runs", quiet)

        def compiling(layouts: list[str]) -> None:
            _say(progress)(compile_note(layouts, jobs))

        with progress or contextlib.nullcontext(), _term_is_interrupt():
            _, manifest = front.start(
                exp,
                out=folder,
                jobs=jobs,
                fresh=fresh,
                backend=backend.value,
                scheduler=scheduler,
                dry_run=dry_run,
                on_progress=on_progress,
                on_compile=None if quiet else compiling,
                on_notice=_notice,
            )
        if dry_run:
            typer.echo(manifest.text())
            if manifest.refusal:
                _fail(f"refused: {manifest.refusal}")
            return
    except InputError as err:
        _fail(str(err))
    except KeyboardInterrupt:
        # Every finished job is already on disk; say so, so the user knows a rerun resumes.
        _fail(f"interrupted: {_kept(folder, exp)}; rerun to resume", code=130)
    except (StorageError, OSError) as err:
        problem = str(err) if isinstance(err, StorageError) else f"{err.strerror or err}: {err.filename}"
        _fail(f"{problem}; {_kept(folder, exp)}; rerun to resume once it can be written", code=1)
    for warning in manifest.get("warnings", []):
        typer.echo(f"nnlab: warning: {warning}", err=True)
    _failures(manifest["failures"], manifest.get("stopped"), manifest.get("stopped_jobs"))
    typer.echo(run_line(manifest, folder))
    if manifest["failures"]:
        raise typer.Exit(1)


def _auto_jobs(exp, folder: Path | None) -> int:
    """--jobs auto for a sweep: one worker per core (`nnlab.sweep.planning.cores`), no more than the
    sweep has jobs, nor than fit in the memory available now (its largest job and a worker process
    each); ``folder`` None (a Dask scheduler elsewhere): the cores only."""
    from nnlab.sweep import planning

    n = planning.cores()
    if folder is None:
        return max(1, n)
    try:
        plan = planning.preview(exp, shape=planning.data_shape(exp), jobs=1, check_compiled=False)
    except InputError:
        return 1  # the run itself says what is wrong
    n_jobs = plan.n_configs * math.ceil(plan.n_seeds / planning.SEEDS_PER_JOB)
    fit = plan.memory["available"] // max(1, plan.job_bytes + planning.WORKER_BYTES) if plan.memory else n
    return int(max(1, min(n, n_jobs, fit)))


def _failures(failures: list[str], stopped: str | None, covered: int | None = None) -> None:
    """A line per failed job; a run stopped (repeated identical failures, a cluster without workers,
    a scheduler gone) says so in one line instead of one per failure it covers, the last
    ``covered`` (nnlab.sweep.workers.Pool.stopped_jobs)."""
    from nnlab.sweep.workers import SAME_FAILURES

    covered = min(len(failures), covered or SAME_FAILURES) if stopped else 0
    for failure in failures[: len(failures) - covered]:
        typer.echo(f"nnlab: job failed: {failure}", err=True)
    if stopped:
        first = f" (the first: {failures[-covered].split(': ', 1)[0]})" if covered else ""
        rerun = "" if "a rerun" in stopped else "; rerun to resume once it is fixed"
        typer.echo(f"nnlab: {stopped}{first}{rerun}", err=True)


def _kept(folder: Path | None, exp) -> str:
    """What a sweep cut short left stored, for its last line."""
    from nnlab import sweep

    try:
        stored = len(sweep.stored_run_ids(folder)) if folder is not None and folder.is_dir() else 0
    except (ValueError, OSError):  # parts/ unreadable (a file in its place): not counted, not lost
        return f"the runs stored in {folder}/ are kept"
    if not stored and folder is not None and (folder / "runs.parquet").is_file():
        return f"the runs stored in {folder}/ are kept"  # (merged, their parts removed by hand)
    return f"{stored}/{len(exp.configs()) * len(exp.seeds)} runs stored in {folder}/"


class TableFormat(enum.StrEnum):
    text = "text"
    markdown = "markdown"
    csv = "csv"


class FigureFormat(enum.StrEnum):
    png = "png"
    pdf = "pdf"
    svg = "svg"


class FigureSize(enum.StrEnum):
    single = "single"
    double = "double"


Folder = Annotated[Path, typer.Argument(metavar="DIR", help="Results folder written by `nnlab run`.")]
_CERTIFY = CertifyOptions()  # the defaults of `nnlab landscape`
StopGtol = Annotated[
    float,
    typer.Option(
        "--stop-gtol",
        callback=_at_least(0.0),
        metavar="FLOAT",
        help="A run has stopped moving when its final gradient norm is at most this (an absolute norm; "
        "not landscape's --gtol, which is relative to the Hessian's scale).",
    ),
]
StopRtol = Annotated[
    float,
    typer.Option(
        "--stop-rtol",
        callback=_at_least(0.0),
        metavar="FLOAT",
        help="Relative tolerance: final losses this close are one optimum, and a run whose loss changed "
        "by no more over its last tenth of epochs has stopped moving.",
    ),
]
# The old spellings, hidden: summary's --gtol meant a gradient norm where landscape's is relative.
OldGtol = Annotated[float | None, typer.Option("--gtol", callback=_at_least(0.0), hidden=True)]
OldRtol = Annotated[float | None, typer.Option("--rtol", callback=_at_least(0.0), hidden=True)]
FigureFormats = Annotated[
    list[FigureFormat] | None,
    typer.Option(
        "--figure-format",
        metavar="png|pdf|svg",
        help="Figure file format, repeatable; png and svg when not given.",
    ),
]
Size = Annotated[
    FigureSize | None,
    typer.Option(
        metavar="single|double",
        help="Figures a paper's column wide (single 3.5 in, double 7 in, paper fonts); by default each "
        "panel at a size readable on screen.",
    ),
]


OldFormats = Annotated[list[FigureFormat] | None, typer.Option("--format", hidden=True)]
Wide = Annotated[
    bool,
    typer.Option(
        "--wide", help="Every column of the text or markdown table (default: the few that fit the terminal)."
    ),
]


def _renamed(old, new, name: str, spelled: str):
    """An option's value given under its old, hidden spelling, with a line saying the new one."""
    if old is None:
        return new
    _notice(f"warning: {spelled} is now {name} (the old spelling still works, for now)")
    return old


def _figure_formats(formats, old) -> tuple[str, ...]:
    """The --figure-format values (or the old --format's), png and svg by default."""
    formats = _renamed(old or None, formats, "--figure-format", "--format")
    return tuple(f.value for f in formats) if formats else ("png", "svg")


def _study(
    folder: Path,
    *,
    curves: bool,
    gtol: float = analysis.GTOL,
    rtol: float = analysis.RTOL,
    label: str | None = None,
):
    """The folder's study, bad input turned into a one-line error; warns when results are partial
    (``label``: the warnings name the folder)."""
    from nnlab.results import open_folder

    try:
        s = open_folder(folder, curves=curves, gtol=gtol, rtol=rtol)
    except InputError as err:
        _fail(str(err))
    where = f"{label}: " if label else ""
    if s.partial:
        typer.echo(
            f"nnlab: warning: {where}partial results, {len(s.runs)} of {s.total} runs stored",
            err=True,
        )
    for warning in s.warnings:
        typer.echo(f"nnlab: warning: {where}{warning}", err=True)
    return s


TableFormatOption = Annotated[TableFormat, typer.Option(metavar="text|markdown|csv", help="Output format.")]


@app.command(cls=_Command)
def summary(
    folder: Folder,
    format: TableFormatOption = TableFormat.text,
    wide: Wide = False,
    stop_gtol: StopGtol = analysis.GTOL,
    stop_rtol: StopRtol = analysis.RTOL,
    gtol: OldGtol = None,
    rtol: OldRtol = None,
) -> None:
    """Print the per-configuration statistics table of a results folder.

    The text and markdown tables show the swept axes and the columns that fit the terminal (solved,
    the success rate's 95% interval, median loss, ERT, the verdict); --wide shows every column of the
    report's table, and --format csv prints every statistic.
    """
    from nnlab import report

    gtol = _renamed(gtol, stop_gtol, "--stop-gtol", "--gtol")
    rtol = _renamed(rtol, stop_rtol, "--stop-rtol", "--rtol")
    s = _study(folder, curves=True, gtol=gtol, rtol=rtol)
    typer.echo(report.table(s, format.value, wide=wide), nl=False)


@app.command(cls=_Command)
def figures(
    folder: Folder, figure_format: FigureFormats = None, size: Size = None, format: OldFormats = None
) -> None:
    """Draw the figures of a results folder into DIR/figures/, each with its caption in NAME.txt."""
    from nnlab import report

    formats = _figure_formats(figure_format, format)
    s = _study(folder, curves=True)
    files = report.write_figures(s, formats, size.value if size else None)
    images = [p for p in files if p.suffix != ".txt"]
    typer.echo(
        f"{len(images)} figure files in {folder / 'figures'}/ ({', '.join(sorted({p.stem for p in images}))})"
    )


@app.command("report", cls=_Command)
def report_command(
    folder: Folder,
    figure_format: FigureFormats = None,
    stop_gtol: StopGtol = analysis.GTOL,
    stop_rtol: StopRtol = analysis.RTOL,
    format: OldFormats = None,
    gtol: OldGtol = None,
    rtol: OldRtol = None,
    size: Size = None,
) -> None:
    """Write DIR/report.md: the experiment, the summary, the capacity verdicts and the figures."""
    from nnlab import report

    formats = _figure_formats(figure_format, format)
    gtol = _renamed(gtol, stop_gtol, "--stop-gtol", "--gtol")
    rtol = _renamed(rtol, stop_rtol, "--stop-rtol", "--rtol")
    s = _study(folder, curves=True, gtol=gtol, rtol=rtol)
    path = report.write_report(s, formats, size.value if size else None)
    typer.echo(f"{path}" + (" (partial results)" if s.partial else ""))


@app.command("compare", cls=_Command)
def compare_command(
    folders: Annotated[
        list[Path],
        typer.Argument(metavar="DIR", help="Two or more results folders written by `nnlab run`."),
    ],
    format: TableFormatOption = TableFormat.text,
    wide: Wide = False,
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Also write summary.csv, summary.md and the figures, the sweeps drawn together "
            "(DIR/figures/), here.",
        ),
    ] = None,
    figure_format: Annotated[
        list[FigureFormat] | None,
        typer.Option(
            "--figure-format",
            metavar="png|pdf|svg",
            help="With --out: figure file format, repeatable; png. svg and pdf are vector.",
        ),
    ] = None,
    size: Size = None,
) -> None:
    """Several sweeps side by side: one summary table, and with --out their figures.

    The table has a sweep column (each folder's name, with its parents where names repeat), the
    experiment fields that differ between the sweeps (the threshold, a task's parameters, ...), every
    axis that varies within or between them, then the columns `nnlab summary` shows and the optima:
    "3 certified" (nnlab landscape) or "~2 estimated" (from final losses). --wide shows every column,
    --format csv every statistic. --out DIR also writes summary.csv, summary.md and every figure with
    the sweeps drawn together on shared axes (one line style and marker per sweep) into
    DIR/figures/.
    """
    from nnlab import front

    if figure_format and out is None:
        _fail("--figure-format: only with --out (the figures are written there)")
    try:
        front.check_compared(folders)
    except InputError as err:
        _fail(str(err))
    names = front.labels(folders)
    opened = []
    for name, folder in zip(names, folders, strict=True):
        s = _study(folder, curves=True, label=name)
        opened.append(s)
    comparison = front.Comparison(tuple(opened), tuple(names))
    typer.echo(comparison.table(format.value, wide=wide), nl=False)
    if out is not None:
        formats = tuple(f.value for f in figure_format) if figure_format else ("png",)
        try:
            files = comparison.save(out, formats, size.value if size else None)
        except InputError as err:
            _fail(str(err))
        except OSError as err:
            _fail(f"--out: cannot write into {out}: {err.strerror or err}", code=1)
        figures = sorted({p.stem for p in files if p.parent.name == "figures"})
        typer.echo(
            f"{out}/: summary.csv, summary.md and {len(figures)} figures, the sweeps drawn together, in "
            "figures/ "
            f"({', '.join(figures)})",
            err=format is TableFormat.csv,  # a CSV on stdout stays a CSV
        )


@app.command("landscape", cls=_Command)
def landscape_command(
    folder: Folder,
    jobs: Jobs = AUTO,
    backend: BackendOption = Backend.loky,
    scheduler: Scheduler = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Discard the certificates already stored.")] = False,
    quiet: Quiet = False,
    lbfgs_iters: Annotated[
        int, typer.Option(min=1, max=1_000_000, metavar="N", help="L-BFGS iterations per end point.")
    ] = _CERTIFY.lbfgs_iters,
    newton_iters: Annotated[
        int, typer.Option(min=1, max=10_000, metavar="N", help="Newton steps (exact Hessian) after L-BFGS.")
    ] = _CERTIFY.newton_iters,
    gtol: Annotated[
        float, typer.Option(metavar="GTOL", help="Critical point: |grad| <= GTOL * max|eigenvalue|.")
    ] = _CERTIFY.gtol,
    flat: Annotated[
        float, typer.Option(metavar="FLAT", help="Flat eigenvalue: |lambda| <= FLAT * max|eigenvalue|.")
    ] = _CERTIFY.flat,
    negative: Annotated[
        float,
        typer.Option(
            metavar="NEGATIVE", help="Clearly negative eigenvalue: lambda < -NEGATIVE * max|eigenvalue|."
        ),
    ] = _CERTIFY.negative,
    valley: Annotated[
        float,
        typer.Option(
            metavar="SHARE",
            help="Ran off: the parameter norm grew by more than this share during the polish.",
        ),
    ] = _CERTIFY.valley,
) -> None:
    """Certify every stored end point: what each seed's final network sits on (needs saved networks).

    Polishes each end point, classifies it (solved, minimum, degenerate, saddle, valley, unconverged),
    groups the minima into distinct optima modulo symmetry, measures the barriers and splits each
    optimum's hidden units into one more; writes endpoints.parquet, optima.parquet, barriers.parquet
    and splits.parquet.
    """
    from nnlab.landscape import KINDS
    from nnlab.sweep import endpoints

    if scheduler and backend is not Backend.dask:
        _fail("--scheduler: only with --backend dask")
    if jobs == AUTO:
        from nnlab.sweep.planning import cores

        jobs = cores()
    try:
        options = CertifyOptions(
            lbfgs_iters=lbfgs_iters,
            newton_iters=newton_iters,
            gtol=gtol,
            flat=flat,
            negative=negative,
            valley=valley,
        )
    except InputError as err:
        _fail(f"--{str(err).replace('_', '-')}")
    name = folder.name or str(folder)
    progress, on_progress = _feedback(name, "end points", quiet)
    kept = f"the certificates of finished jobs are stored in {folder}/; rerun to resume"
    try:
        with progress or contextlib.nullcontext(), _term_is_interrupt():
            summary = endpoints.landscape(
                folder,
                jobs=jobs,
                backend=backend.value,
                scheduler=scheduler,
                options=options,
                fresh=fresh,
                on_progress=on_progress,
                on_notice=_notice,
            )
    except InputError as err:
        _fail(str(err))
    except KeyboardInterrupt:
        _fail(f"interrupted: {kept}", 130)
    except StorageError as err:
        _fail(f"{err}; {kept}", 1)
    _failures(summary["failures"], summary.get("stopped"), summary.get("stopped_jobs"))
    if summary["without_networks"]:
        typer.echo(
            f"nnlab: warning: {summary['without_networks']} runs have no saved network, not certified",
            err=True,
        )
    skipped = summary.get("skipped", [])
    if skipped:
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        typer.echo(
            f"nnlab: warning: {len(skipped)} end points skipped, diverged (parameters, norm or loss not "
            f"finite): {', '.join(skipped[:5])}{more}",
            err=True,
        )
    kinds = ", ".join(f"{k} {summary['kinds'][k]}" for k in KINDS if summary["kinds"].get(k))
    session = (
        f"this session: {summary['certified']} certified, {summary['reused']} reused, "
        f"{summary['failed']} failed" + (f", {len(skipped)} skipped (diverged)" if skipped else "")
    )
    if summary.get("written", True):
        typer.echo(
            f"{summary['done'] - len(skipped)}/{summary['total']} end points certified in {folder}/ "
            f"({kinds or 'none'}; {summary['optima']} distinct optima): "
            f"{', '.join(summary.get('written', []))}; {session}"
        )
    else:
        typer.echo(f"0/{summary['total']} end points certified in {folder}/: no table written; {session}")
    if summary["failures"]:
        raise typer.Exit(1)


@app.command(cls=_Command)
def demo(
    seeds: Annotated[
        int, typer.Option(min=1, max=4096, metavar="N", help="Seeds (replicas) per network.")
    ] = 32,
    epochs: Annotated[
        int, typer.Option(min=1, max=100_000, metavar="N", help="Epochs of per-sample SGD.")
    ] = 400,
    lr: Annotated[float, typer.Option(metavar="FLOAT", help="Learning rate (> 0).")] = 0.1,
    threshold: Annotated[
        float,
        typer.Option(
            callback=_at_least(0.0, strict=True),
            metavar="FLOAT",
            help="A run is solved below this loss (> 0).",
        ),
    ] = 1e-3,
) -> None:
    """Train the seed's tanh chain and XOR networks of growing width; print their loss curves."""
    if not lr > 0 or not np.isfinite(lr):
        _fail(f"--lr: expected a number > 0, got {lr:g}")
    from nnlab.sgd import uncompiled
    from nnlab.sweep.progress import compile_note

    console = Console(width=max(110, Console().width))
    missing = uncompiled(["lanes"])  # every network here trains in the lanes layout
    if missing:
        console.print(compile_note(missing))
    X_chain, Y_chain = tasks.chain()
    X_xor, Y_xor = tasks.xor()
    runs = [
        ("tanh chain L=3", [1, 1, 1, 1], False, X_chain, Y_chain),
        ("XOR width 1", [2, 1, 1], True, X_xor, Y_xor),
        ("XOR width 2", [2, 2, 1], True, X_xor, Y_xor),
        ("XOR width 4", [2, 4, 1], True, X_xor, Y_xor),
        ("XOR width 10", [2, 10, 1], True, X_xor, Y_xor),
    ]
    checkpoints = sorted({0, 1, epochs // 10, epochs // 2, epochs})
    table = Table(title=f"Median training loss at epoch e over {seeds} seeds (SGD, batch 1, lr {lr})")
    table.add_column("network", no_wrap=True)
    for e in checkpoints:
        table.add_column(f"e={e}", justify="right", no_wrap=True)
    table.add_column(f"loss<{threshold:g}", justify="right", no_wrap=True)
    table.add_column("best / worst seed", justify="right", no_wrap=True)
    for name, sizes, bias, X, Y in runs:
        net = nnlab.init_network(sizes, seeds=range(seeds), bias=bias)
        result = nnlab.train(net, X, Y, lr=lr, epochs=epochs)
        final = result.loss_curve[:, -1]
        median = np.median(result.loss_curve, axis=0)
        solved = int(np.sum(final < threshold))
        table.add_row(
            name,
            *(f"{median[e]:.1e}" for e in checkpoints),
            f"{solved}/{seeds}",
            f"{final.min():.1e} / {final.max():.1e}",
        )
    console.print(table)
    console.print(
        "Different seeds land on different final losses (SGD finds local optima); wider XOR "
        "networks solve the task for more seeds."
    )
