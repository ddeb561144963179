"""The `nnlab` command line: a thin typer layer over the library."""

from __future__ import annotations

import contextlib
import enum
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
from typer.core import TyperGroup

import nnlab
from nnlab import analysis, tasks
from nnlab.folder import FolderBusy, StorageError
from nnlab.landscape.polish import Options as CertifyOptions

# click's exception classes, wherever this typer takes them from (newer typers vendor click).
_click_errors = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp = getattr(_click_errors, "NoArgsIsHelpError", ())


class _OneLineErrors(TyperGroup):
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
        except (FolderBusy, StorageError) as err:
            typer.echo(f"nnlab: {err}", err=True)
            code = 1
        except OSError as err:  # the file system refused (permissions, a full disk): nothing of ours
            where = f": {err.filename}" if err.filename else ""
            typer.echo(f"nnlab: {err.strerror or err}{where}", err=True)
            code = 1
        except Exception as err:
            # Last resort: no traceback reaches a user; NNLAB_TRACEBACK=1 shows it to a developer.
            if os.environ.get("NNLAB_TRACEBACK"):
                raise
            message = " ".join(str(err).split())
            typer.echo(f"nnlab: internal error: {type(err).__name__}: {message[:300]}", err=True)
            code = 1
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


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


@app.command("run")
def run_command(
    experiment: Annotated[Path, typer.Argument(help="Experiment file (TOML), see experiments/README.md.")],
    out: Annotated[
        Path | None,
        typer.Option(parser=_folder, metavar="DIR", help="Results folder (default: results/NAME/)."),
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, max=256, help="Worker processes (Dask: local workers).")] = 1,
    backend: Annotated[Backend, typer.Option(help="joblib backend for --jobs > 1.")] = Backend.loky,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (with --backend dask).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a field: section.key=value, or key=value at the top level (repeatable)."
        ),
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Discard runs already stored in the results folder.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Run (or resume) an experiment's sweep; writes runs.parquet and curves.parquet."""
    from nnlab import experiment as experiment_module
    from nnlab import sweep

    if scheduler and backend is not Backend.dask:
        _fail("--scheduler: only with --backend dask")
    folder = None
    try:
        exp = experiment_module.load(experiment, set_ or [])
        folder = out if out is not None else Path("results") / exp.name
        progress, on_progress = _progress(exp.name) if not quiet and sys.stdout.isatty() else (None, None)
        with progress or contextlib.nullcontext(), _term_is_interrupt():
            manifest = sweep.run(
                exp,
                folder,
                jobs=jobs,
                fresh=fresh,
                backend=backend.value,
                scheduler=scheduler,
                on_progress=on_progress,
                on_notice=_notice,
            )
    except ValueError as err:
        _fail(str(err))
    except KeyboardInterrupt:
        # Every finished job is already on disk; say so, so the user knows a rerun resumes.
        _fail(f"interrupted: {_kept(folder, exp)}; rerun to resume", code=130)
    except (StorageError, OSError) as err:
        problem = str(err) if isinstance(err, StorageError) else f"{err.strerror or err}: {err.filename}"
        _fail(f"{problem}; {_kept(folder, exp)}; rerun to resume once it can be written", code=1)
    for warning in manifest.get("warnings", []):
        typer.echo(f"nnlab: warning: {warning}", err=True)
    _failures(manifest["failures"], manifest.get("stopped"))
    typer.echo(
        f"{manifest['runs_done']}/{manifest['runs_total']} runs in {folder}/ (runs.parquet, curves.parquet)"
    )
    if manifest["failures"]:
        raise typer.Exit(1)


def _failures(failures: list[str], stopped: str | None) -> None:
    """A line per failed job; a run stopped by repeated identical failures says so in one line
    instead of one per failure of the streak (nnlab.workers.SAME_FAILURES)."""
    from nnlab.workers import SAME_FAILURES

    for failure in failures[:-SAME_FAILURES] if stopped else failures:
        typer.echo(f"nnlab: job failed: {failure}", err=True)
    if stopped:
        first = failures[-SAME_FAILURES].split(": ", 1)[0]
        typer.echo(f"nnlab: {stopped} (the first: {first}); rerun to resume once it is fixed", err=True)


def _kept(folder: Path | None, exp) -> str:
    """What a sweep cut short left stored, for its last line."""
    from nnlab import sweep

    try:
        stored = len(sweep.stored_run_ids(folder)) if folder is not None and folder.is_dir() else 0
    except (ValueError, OSError):
        stored = 0
    return f"{stored}/{len(exp.configs()) * len(exp.seeds)} runs stored in {folder}/"


class TableFormat(enum.StrEnum):
    text = "text"
    markdown = "markdown"
    csv = "csv"


class FigureFormat(enum.StrEnum):
    png = "png"
    pdf = "pdf"
    svg = "svg"


Folder = Annotated[Path, typer.Argument(help="Results folder written by `nnlab run`.")]
_CERTIFY = CertifyOptions()  # the defaults of `nnlab landscape`
Gtol = Annotated[
    float,
    typer.Option(
        callback=_at_least(0.0), help="A run has stopped moving when its final gradient norm is at most this."
    ),
]
Rtol = Annotated[
    float,
    typer.Option(
        callback=_at_least(0.0),
        help="Relative tolerance: final losses this close are one optimum, and a run whose loss changed "
        "by no more over its last tenth of epochs has stopped moving.",
    ),
]
Formats = Annotated[
    list[FigureFormat] | None,
    typer.Option("--format", help="Figure file format, repeatable; png and svg when not given."),
]


def _study(folder: Path, *, curves: bool, gtol: float = analysis.GTOL, rtol: float = analysis.RTOL):
    """The folder's study, bad input turned into a one-line error; warns when results are partial."""
    from nnlab import report

    try:
        s = report.study(folder, curves=curves, gtol=gtol, rtol=rtol)
    except ValueError as err:
        _fail(str(err))
    if s.results.partial:
        typer.echo(
            f"nnlab: warning: partial results, {len(s.results.runs)} of {s.results.total} runs stored",
            err=True,
        )
    for warning in s.warnings:
        typer.echo(f"nnlab: warning: {warning}", err=True)
    return s


@app.command()
def summary(
    folder: Folder,
    format: Annotated[TableFormat, typer.Option(help="Output format.")] = TableFormat.text,
    gtol: Gtol = analysis.GTOL,
    rtol: Rtol = analysis.RTOL,
) -> None:
    """Print the per-configuration statistics table of a results folder."""
    from nnlab import report

    s = _study(folder, curves=True, gtol=gtol, rtol=rtol)
    if format is TableFormat.csv:
        typer.echo(s.summary.to_csv(index=False), nl=False)
    elif format is TableFormat.markdown:
        typer.echo(report.markdown(report.display(s.summary)))
    else:
        typer.echo(report.text(report.display(s.summary), title=f"{s.results.experiment.name}: final losses"))


@app.command()
def figures(folder: Folder, format: Formats = None) -> None:
    """Draw the figures of a results folder into FOLDER/figures/."""
    from nnlab import report

    s = _study(folder, curves=True)
    files = report.write_figures(s, tuple(f.value for f in format) if format else ("png", "svg"))
    typer.echo(
        f"{len(files)} figure files in {folder / 'figures'}/ ({', '.join(sorted({p.stem for p in files}))})"
    )


@app.command("report")
def report_command(
    folder: Folder, format: Formats = None, gtol: Gtol = analysis.GTOL, rtol: Rtol = analysis.RTOL
) -> None:
    """Write FOLDER/report.md: the experiment, the summary, the capacity verdicts and the figures."""
    from nnlab import report

    s = _study(folder, curves=True, gtol=gtol, rtol=rtol)
    path = report.write_report(s, tuple(f.value for f in format) if format else ("png", "svg"))
    typer.echo(f"{path}" + (" (partial results)" if s.results.partial else ""))


@app.command("landscape")
def landscape_command(
    folder: Folder,
    jobs: Annotated[int, typer.Option(min=1, max=256, help="Worker processes (Dask: local workers).")] = 1,
    backend: Annotated[Backend, typer.Option(help="joblib backend for --jobs > 1.")] = Backend.loky,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (with --backend dask).")
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Discard the certificates already stored.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    lbfgs_iters: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="L-BFGS iterations per end point.")
    ] = _CERTIFY.lbfgs_iters,
    newton_iters: Annotated[
        int, typer.Option(min=1, max=10_000, help="Newton steps (exact Hessian) after L-BFGS.")
    ] = _CERTIFY.newton_iters,
    gtol: Annotated[
        float, typer.Option(help="Critical point: |grad| <= GTOL * max|eigenvalue|.")
    ] = _CERTIFY.gtol,
    flat: Annotated[
        float, typer.Option(help="Flat eigenvalue: |lambda| <= FLAT * max|eigenvalue|.")
    ] = _CERTIFY.flat,
    negative: Annotated[
        float, typer.Option(help="Clearly negative eigenvalue: lambda < -NEGATIVE * max|eigenvalue|.")
    ] = _CERTIFY.negative,
    valley: Annotated[
        float,
        typer.Option(help="Ran off: the parameter norm grew by more than this share during the polish."),
    ] = _CERTIFY.valley,
) -> None:
    """Certify every stored end point (needs saved networks): polish it, classify it (solved, minimum,
    degenerate, saddle, valley, unconverged), group the minima into distinct optima modulo symmetry,
    and measure the barriers; writes endpoints.parquet, optima.parquet and barriers.parquet."""
    from nnlab import endpoints
    from nnlab.landscape import KINDS

    if scheduler and backend is not Backend.dask:
        _fail("--scheduler: only with --backend dask")
    try:
        options = CertifyOptions(
            lbfgs_iters=lbfgs_iters,
            newton_iters=newton_iters,
            gtol=gtol,
            flat=flat,
            negative=negative,
            valley=valley,
        )
    except ValueError as err:
        _fail(f"--{str(err).replace('_', '-')}")
    name = folder.name or str(folder)
    progress, on_progress = (
        _progress(name, "end points") if not quiet and sys.stdout.isatty() else (None, None)
    )
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
    except ValueError as err:
        _fail(str(err))
    except KeyboardInterrupt:
        _fail(f"interrupted: {kept}", 130)
    except StorageError as err:
        _fail(f"{err}; {kept}", 1)
    _failures(summary["failures"], summary.get("stopped"))
    if summary["without_networks"]:
        typer.echo(
            f"nnlab: warning: {summary['without_networks']} runs have no saved network, not certified",
            err=True,
        )
    kinds = ", ".join(f"{k} {summary['kinds'][k]}" for k in KINDS if summary["kinds"].get(k))
    typer.echo(
        f"{summary['done']}/{summary['total']} end points certified in {folder}/ ({kinds}; "
        f"{summary['optima']} distinct optima): endpoints.parquet, optima.parquet, barriers.parquet"
    )
    if summary["failures"]:
        raise typer.Exit(1)


@app.command()
def demo(
    seeds: Annotated[int, typer.Option(min=1, max=4096, help="Seeds (replicas) per network.")] = 32,
    epochs: Annotated[int, typer.Option(min=1, max=100_000, help="Epochs of per-sample SGD.")] = 400,
    lr: Annotated[float, typer.Option(help="Learning rate (> 0).")] = 0.1,
    threshold: Annotated[
        float,
        typer.Option(callback=_at_least(0.0, strict=True), help="A run is solved below this loss (> 0)."),
    ] = 1e-3,
) -> None:
    """Train the seed's tanh chain and XOR networks of growing width; print their loss curves."""
    if not lr > 0 or not np.isfinite(lr):
        _fail(f"--lr: expected a number > 0, got {lr:g}")
    console = Console(width=max(110, Console().width))
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
