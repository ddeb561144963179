"""From a results folder to what a reader sees: the summary table (text, markdown or CSV), the
figures written into DIR/figures/, and DIR/report.md.

The top room: it reads a folder (sweep), computes the statistics (analysis) and draws (figures).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nnlab import analysis
from nnlab.errors import InputError
from nnlab.schema import AXIS_COLUMNS, LEVEL_TEXT, QUANTILE_SEEDS
from nnlab.sweep.folder import atomic_write_text, make_dir, write_whole
from nnlab.sweep.runner import load_data

if TYPE_CHECKING:
    from nnlab.results import ResultsFolder

FORMATS = ("png", "pdf", "svg")
DPI = 150


def _pct(x: float) -> str:
    """A percentage that never rounds a near-certain or near-impossible rate to 100% or 0%."""
    return f"{x:.1%}" if 0 < x < 0.01 or 0.99 < x < 1 else f"{x:.0%}"


def _loss(x: float) -> str:
    return "diverged" if not np.isfinite(x) else f"{x:.2e}"


def display(summary: pd.DataFrame, *, wide: bool = True) -> pd.DataFrame:
    """The summary as short strings, for people: the swept axes (depth and width always), then the
    statistics that matter most (``wide``) or the few that fit a terminal's 80-100 columns: solved
    (successes/runs), the success rate's 95% interval, the median final loss, the ERT and the
    verdict in words (`narrow`)."""
    axes = [a for a in analysis.config_axes(summary) if a in ("depth", "width")]
    axes += [a for a in analysis.varying_axes(summary) if a not in axes]
    out = pd.DataFrame({a: summary[a].astype(str) for a in axes})
    if not wide:
        return narrow(summary, out)
    out["runs"] = summary["runs"].astype(str)
    out["diverged"] = summary["diverged"].astype(str)
    out[f"median loss [{LEVEL_TEXT} CI]"] = [
        f"{_loss(m)} [{_loss(lo)}, {_loss(hi)}]"
        for m, lo, hi in zip(summary["median"], summary["median_lo"], summary["median_hi"], strict=True)
    ]
    out["10% / 90%"] = [
        f"{_loss(a)} / {_loss(b)}" for a, b in zip(summary["q10"], summary["q90"], strict=True)
    ]
    out[f"success [{LEVEL_TEXT} CI]"] = [
        f"{_pct(s)} [{_pct(lo)}, {_pct(hi)}]"
        for s, lo, hi in zip(summary["success"], summary["success_lo"], summary["success_hi"], strict=True)
    ]
    out["final < threshold"] = summary["success_final"].map(_pct)
    out[f"ERT [{LEVEL_TEXT} CI] (epochs)"] = [
        _ert(e) + ("" if math.isinf(e) and math.isinf(lo) else f" [{_ert(lo)}, {_ert(hi)}]")
        for e, lo, hi in zip(summary["ert"], summary["ert_lo"], summary["ert_hi"], strict=True)
    ]
    out["median epochs"] = summary["median_epochs"].map(_epochs)
    if "certified" in summary:
        # What polishing found at each end point.
        out["end points: solved/min/degen/saddle/valley/unconv"] = [
            "-" if pd.isna(row["certified"]) else "/".join(str(int(row[f"end_{k}"])) for k in analysis.KINDS)
            for _, row in summary.iterrows()
        ]
    out["optima"] = optima_words(summary)
    if "redundant_units" in summary:
        out["redundant units"] = summary["redundant_units"].map(lambda u: "-" if np.isnan(u) else f"{u:g}")
    if "median_test_loss" in summary:
        out["median test loss"] = summary["median_test_loss"].map(_loss)
    for column, title in (
        ("median_accuracy", "median accuracy"),
        ("median_test_accuracy", "median test accuracy"),
    ):
        if column in summary and summary[column].notna().any():
            out[title] = summary[column].map(lambda a: "-" if np.isnan(a) else f"{a:.1%}")
    out["verdict"] = [analysis.verdict_text(row) for row in summary.to_dict("records")]
    return out


def narrow(summary: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    """`display`'s few columns (``out`` holds the axes already): solved, the success rate's
    interval, median loss, ERT and the verdict, whose words leave out the solved count beside it."""
    out["solved"] = [f"{k}/{n}" for k, n in zip(summary["successes"], summary["runs"], strict=True)]
    out[f"success {LEVEL_TEXT} CI"] = [
        f"[{_pct(lo)}, {_pct(hi)}]"
        for lo, hi in zip(summary["success_lo"], summary["success_hi"], strict=True)
    ]
    out["median loss"] = summary["median"].map(lambda x: "diverged" if not np.isfinite(x) else f"{x:.1e}")
    out["ERT"] = summary["ert"].map(_ert)
    out["verdict"] = [
        analysis.verdict_text(row).replace(f"{row['successes']}/{row['runs']} solved, ", "")
        for row in summary.to_dict("records")
    ]
    return out


# `narrow`'s columns given up, in this order, while a table is wider than the terminal.
OPTIONAL = ("median loss", "ERT", f"success {LEVEL_TEXT} CI")


def optima_words(summary: pd.DataFrame) -> list[str]:
    """Per configuration, its optima in words that cannot be confused: "3 certified" (distinct
    certified minima, `nnlab landscape`) or "~2 estimated" (the uncertified estimate from final
    losses; '-' where no run stopped moving: unknown, not none)."""
    words = []
    for row in summary.to_dict("records"):
        certified, estimate = row.get("optima"), row.get("optima_estimate")
        if certified is not None and not pd.isna(certified) and not pd.isna(row.get("certified", np.nan)):
            words.append(f"{int(certified)} certified")
        elif estimate is not None and not pd.isna(estimate) and estimate:
            words.append(f"~{int(estimate)} estimated")
        else:
            words.append("-")
    return words


def _epochs(e: float) -> str:
    return "-" if np.isnan(e) else f"{e:.0f}"


def _ert(e: float) -> str:
    return "never" if math.isinf(e) else f"{e:.0f}"


def markdown(table: pd.DataFrame) -> str:
    """A table of strings as a GitHub-flavoured markdown table (numbers right-aligned)."""
    left = ("sweep", "verdict", "hidden", "output", "loss_fn", "init", "optima")
    right = [c for c in table.columns if c not in left and not c.startswith("task.")]
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("--:" if c in right else "---" for c in table.columns) + "|"
    rows = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in table.itertuples(False)
    ]
    return "\n".join([head, rule, *rows])


def text(table: pd.DataFrame, title: str = "", *, width: int | None = None) -> str:
    """A table of strings as fixed-width text (a rich table, no colour); with ``width``, the
    `OPTIONAL` columns are given up one by one while a line is wider."""
    from rich.console import Console
    from rich.table import Table

    def render(table: pd.DataFrame) -> str:
        t = Table(title=title or None, box=None, pad_edge=False, title_justify="left")
        for c in table.columns:
            t.add_column(c, justify="left" if c in ("verdict", "optima", "sweep") else "right", no_wrap=True)
        for row in table.itertuples(False):
            t.add_row(*map(str, row))
        console = Console(width=400, color_system=None, record=True, file=io.StringIO())
        console.print(t)
        return "\n".join(line.rstrip() for line in console.export_text().splitlines())

    out = render(table)
    for column in OPTIONAL if width else ():
        if max(len(line) for line in out.splitlines()[1:] or [""]) <= width or column not in table:
            continue
        table = table.drop(columns=column)
        out = render(table)
    return out


TABLE_FORMATS = ("text", "markdown", "csv")


def terminal_width() -> int:
    """The columns a narrow table may take: the terminal's (COLUMNS), at least 80, else 100."""
    import shutil

    return max(80, shutil.get_terminal_size((100, 24)).columns)


def table(s: ResultsFolder, format: str = "text", *, wide: bool = False) -> str:
    """The summary as `nnlab summary --format FORMAT` prints it: "csv" (every column), "markdown" or
    "text" (`display`: the main columns with ``wide``, else the few that fit a terminal)."""
    if format == "csv":
        return s.summary.to_csv(index=False)
    shown = display(s.summary, wide=wide)
    if format == "markdown":
        return markdown(shown) + "\n"
    if format == "text":
        title = f"{s.experiment.name}: final losses"
        return text(shown, title=title, width=None if wide else terminal_width()) + "\n"
    raise InputError(f"format: expected one of {', '.join(TABLE_FORMATS)}, got {format!r}")


def differing_fields(folders: list[ResultsFolder]) -> dict[str, list[str]]:
    """The experiment fields that are not axes and differ between the sweeps (the threshold, a
    task's parameters, ...), as ``section.key`` -> each sweep's value as text."""
    fields: dict[str, list[str]] = {}
    if any(f.experiment.threshold != folders[0].experiment.threshold for f in folders):
        fields["threshold"] = [f"{f.experiment.threshold:g}" for f in folders]
    for section in ("task", "model", "train"):
        keys = dict.fromkeys(k for f in folders for k in getattr(f.experiment, section))
        for key in keys:
            if key in AXIS_COLUMNS or key in ("seeds", "record"):
                continue
            values = [getattr(f.experiment, section).get(key, "-") for f in folders]
            if any(v != values[0] for v in values):
                fields[f"{section}.{key}"] = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return fields


def compare_table(
    folders: list[ResultsFolder], names: list[str], format: str = "text", *, wide: bool = False
) -> str:
    """`nnlab compare`'s table (text or markdown): a ``sweep`` column, the fields that differ between
    the sweeps (`differing_fields`; the threshold only where it does), every axis that varies within
    or between them, then each sweep's `display` columns (``wide``) or the few that fit a terminal,
    with the ``optima`` in words (certified or estimated)."""
    summaries = [f.summary for f in folders]
    every = pd.concat(summaries, ignore_index=True, sort=False)
    axes = [
        a
        for a in analysis.config_axes(every)
        if a in ("depth", "width") or every[a].astype(str).nunique() > 1
    ]
    fields = differing_fields(folders)
    frames = []
    for i, (name, summary) in enumerate(zip(names, summaries, strict=True)):
        head = {"sweep": name} | {k: v[i] for k, v in fields.items()}
        head |= {a: summary[a].astype(str) if a in summary else "-" for a in axes}
        rest = display(summary, wide=wide).drop(columns=axes, errors="ignore")
        if not wide:
            rest.insert(len(rest.columns) - 1, "optima", optima_words(summary))
        frames.append(pd.concat([pd.DataFrame(head, index=rest.index), rest], axis=1))
    shown = pd.concat(frames, ignore_index=True, sort=False).fillna("-")
    if format == "markdown":
        return markdown(shown) + "\n"
    if format == "text":
        title = f"{', '.join(names)}: final losses"
        return text(shown, title=title, width=None if wide else terminal_width()) + "\n"
    raise InputError(f"format: expected one of {', '.join(TABLE_FORMATS)}, got {format!r}")


def figure_tables(s: ResultsFolder) -> dict:
    """The tables the study's figures are drawn from (the arguments of
    `nnlab.figures.figures_for`): runs, curves, summary, threshold, chain and landscape."""
    chain = None
    if s.experiment.task["kind"] == "chain" and single_unit_chains(s.runs):
        X, Y, _, _ = load_data(s.experiment)
        lengths = sorted({int(d) + 1 for d in s.runs["depth"]})
        chain = analysis.chain_gradients(lengths, s.experiment.seeds, X, Y)
    landscape = (s.endpoints, s.optima, s.barriers) if s.endpoints is not None else None
    slices = None
    if s.endpoints is not None:
        from nnlab.sweep.endpoints import slices as landscape_slices

        slices = landscape_slices(s.experiment, s.runs, s.endpoints)
    return dict(
        # (Failed runs carry their SGD continuation, for the survival figure: nnlab.analysis.survival.)
        runs=analysis.with_continuations(s.runs, s.endpoints),
        # A reader, not the table: each figure reads the curves it draws (a fixed sample of seeds).
        curves=s.curves_of if s.with_curves else None,
        summary=s.summary,
        threshold=s.experiment.threshold,
        chain=chain,
        landscape=landscape,
        slices=slices,
    )


def figures(s: ResultsFolder, size: str | None = None) -> dict:
    """The figures that apply to the study, by file stem (see `nnlab.figures.figures_for`);
    ``size``: "single" or "double" for a paper's column width."""
    from nnlab import figures as fig

    return fig.figures_for(**figure_tables(s), size=size)


def together(folders: Sequence[ResultsFolder], names: Sequence[str], size: str | None = None) -> dict:
    """The figures of several studies drawn together (`nnlab compare`): their tables joined with a
    ``sweep`` column (run ids prefixed by the sweep's name, so that equal configurations of two
    sweeps stay apart) and each sweep's own threshold, then `nnlab.figures.figures_for`."""
    import pandas as pd

    from nnlab import figures as fig

    parts = [figure_tables(f) for f in folders]

    def joined(get, prefix=("run_id",)):
        frames = []
        for name, p in zip(names, parts, strict=True):
            table = get(p)
            if table is None:
                continue
            table = table.assign(**{fig.SWEEP: name})
            for column in prefix:
                if column in table:
                    table[column] = name + "/" + table[column].astype(str)
            frames.append(table)
        return pd.concat(frames, ignore_index=True, sort=False) if frames else None

    landscape = None
    if all(p["landscape"] is not None for p in parts):
        landscape = tuple(joined(lambda p, k=k: p["landscape"][k], ("run_id", "to_run_id")) for k in range(3))
    curves = None
    if all(p["curves"] is not None for p in parts):
        curves = _joined_reader({n: p["curves"] for n, p in zip(names, parts, strict=True)})
    return fig.figures_for(
        joined(lambda p: p["runs"]),
        curves,
        joined(lambda p: p["summary"]),
        {n: p["threshold"] for n, p in zip(names, parts, strict=True)},
        chain=joined(lambda p: p["chain"]),
        landscape=landscape,
        size=size,
    )


def _joined_reader(readers: dict):
    """One curve reader for several sweeps' (`together`): a run id "NAME/ID" is asked of sweep
    NAME's reader as ID, and its rows come back under "NAME/ID"."""
    import pandas as pd

    def read(ids):
        frames = []
        for name, reader in readers.items():
            prefix = name + "/"
            mine = [str(i)[len(prefix) :] for i in ids if str(i).startswith(prefix)]
            if mine:
                frame = reader(mine)
                frames.append(frame.assign(run_id=prefix + frame["run_id"].astype(str)))
        if not frames:
            return pd.DataFrame({"run_id": pd.Series(dtype=str), "epoch": [], "loss": []})
        return pd.concat(frames, ignore_index=True)

    return read


def single_unit_chains(runs: pd.DataFrame) -> bool:
    """Whether every run is a single-unit tanh chain as `nnlab.analysis.chain_gradients` draws it
    (width 1, no biases, tanh units, the default initialization): only then does the chain
    figure describe the runs. A chain task trained with wider networks is just scalar data."""
    at = {"width": 1, "bias": False, "hidden": "tanh", "output": "tanh", "loss": "half_squared"}
    at |= {"init": "auto", "init_scale": 1.0}
    return len(runs) > 0 and all(
        (runs[k].fillna(v) == v).all() if k in ("init", "init_scale") else (runs[k] == v).all()
        for k, v in at.items()
        if k in runs.columns
    )


def write_figures(
    s: ResultsFolder, formats: tuple[str, ...] = ("png", "svg"), size: str | None = None
) -> list[Path]:
    """Draw the study's figures into DIR/figures/ in each format, each with its caption in
    NAME.txt beside it (`caption`); returns the files written."""
    return save_figures(figures(s, size), make_dir(s.path / "figures"), formats)


def caption(stem: str, figure) -> str:
    """A figure's caption: what it shows (`CAPTIONS`), then what it says about these data."""
    from nnlab.figures import notes

    return " ".join([CAPTIONS.get(stem, ""), *(n.rstrip(".") + "." for n in notes(figure))]).strip()


def save_figures(drawn: dict, folder: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write each figure (by stem) into ``folder`` in each format, and its caption into STEM.txt;
    returns the files written. Fixed metadata and SVG ids, so regenerated files differ only where
    the numbers do."""
    import matplotlib
    import matplotlib.pyplot as plt

    written = []
    for stem, figure in drawn.items():
        _lay_out(figure)
        for ext in formats:
            path = folder / f"{stem}.{ext}"
            meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(ext, {"Software": None})
            # A fixed salt for the SVG's element ids (clip paths), otherwise random per save.
            with matplotlib.rc_context({"svg.hashsalt": stem}):
                # The constrained layout already fits every label, title and legend inside the
                # figure (bbox_inches="tight" would only draw it once more to add a margin).
                write_whole(
                    path, lambda tmp, f=figure, m=meta: f.savefig(tmp, dpi=DPI, metadata=m), f".{ext}"
                )
            written.append(path)
        atomic_write_text(folder / f"{stem}.txt", caption(stem, figure) + "\n")
        written.append(folder / f"{stem}.txt")
        plt.close(figure)
    return written


def _lay_out(figure) -> None:
    """Solve the figure's layout once, as a PNG save at `DPI` would, and freeze it: every format
    then keeps these positions (figure fractions) and is saved in one draw. (`savefig` with a
    layout engine draws the whole figure twice, once without rendering only to lay it out; the
    layout itself needs only the sizes of the labels.)"""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    engine = figure.get_layout_engine()
    if engine is None:
        return
    FigureCanvasAgg(figure)  # the renderer a PNG is saved with: the same text sizes, the same layout
    dpi, figure.dpi = figure.dpi, DPI
    try:
        engine.execute(figure)
    finally:
        figure.dpi = dpi
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        figure.set_layout_engine(None)


CAPTIONS = {
    "spread": "Final training loss of every seed that did not solve the task, one point each, per width "
    "(or per depth when a single width was run; one panel per depth and learning rate). The seeds whose "
    "final loss is below the threshold are counted in the bar at the bottom, filled to their share of the "
    "seeds (how far below the threshold they went is convergence depth, not a different end point); the "
    "dashed line is the threshold. Where the points sit at several levels, the seeds stopped at different "
    "end points. Where the solved seeds' losses lie within a decade (a task whose loss cannot reach 0), "
    "every seed is a point over a box plot instead. The loss axis is linear where the losses shown span "
    "less than a decade, log otherwise.",
    "ecdf": "Share of seeds whose final loss is at most each value, per width (or depth): the bar at the "
    "left is the share below the threshold, and each curve steps up at the final loss of every other seed "
    "(a point); the dashed line is the threshold. A diverged seed never counts, so its curve levels off "
    "below 100%.",
    "convergence": "Training loss against epoch: the median over the seeds of each width (or depth), with "
    "the band between the 25% and 75% quantiles (exact per epoch; of a configuration with more than "
    f"{QUANTILE_SEEDS} seeds, those of its first {QUANTILE_SEEDS} seeds, a fixed sample); the dashed line is "
    "the threshold. A median hides the seeds "
    "that fail: the seed_curves figure draws each seed. A diverged seed counts as the worst loss; where a "
    "median or quartile is a diverged seed's the line stops. The loss axis stops at the decade of the lowest "
    "loss, and no lower than two decades below the threshold (then its lowest tick, marked ≤, holds the "
    "lower losses); the epoch axis is logarithmic where the epochs span decades.",
    "solved": "Share of seeds that have reached the threshold by each epoch, per width (or depth), with its "
    f"Wilson {LEVEL_TEXT} interval as a band from the first seed that reached it; a seed counts from "
    "the first epoch its full-data loss is below the threshold, whether or not it stays below. At the"
    " last epoch it is the success rate, and a curve further left reached it sooner.",
    "seed_curves": "Training loss of each seed against epoch, one panel per configuration, coloured by how "
    "the seed ended: solved (final loss below the threshold), reached the threshold and ended above it, "
    "never reached it, or diverged (× where the loss left the finite range); the counts in a panel are of "
    "all its seeds, the dashed line is the threshold.",
    "capacity_best": "Success rate and ERT against width, each architecture at its own best setting of the "
    "swept learning rate or initialization (the lowest ERT; the settings are listed above).",
    "capacity": f"Success rate (seeds that reached the threshold, with its Wilson {LEVEL_TEXT} interval) and "
    "expected running time (ERT: expected epochs to reach the threshold, failed runs counting their "
    f"whole budget, with its bootstrap {LEVEL_TEXT} interval) against width, or against depth when a "
    "single width was run. An arrow: the interval's upper end is infinite (resamples without a "
    "success); an open triangle at ∞: no seed reached the threshold.",
    "survival": "Kaplan-Meier estimate of the share of seeds that have reached the threshold by each "
    "epoch, per width, a seed that never did censored at its budget or followed into its SGD continuation "
    f"(the note below says which), with its pointwise {LEVEL_TEXT} "
    "interval (Greenwood's variance on the log(-log) scale) as a band; in a panel's corner the log-rank p "
    "between neighbouring widths (two-sided, not adjusted). With one budget per configuration and no "
    "continuation the curve is the share solved by each epoch; the test compares whole curves, the seeds "
    "that never "
    "got there included.",
    "landscape_slices": "Pictures of the landscape (Li et al. 2018) around a few certified end points, one "
    "per kind per configuration (the lowest loss of each kind): left, the full-data loss along the straight "
    "line from the run's initial network (t = 0, reproduced from its seed) to its certified, polished point "
    "(t = 1, a star in the kind's colour); right, the loss (log10, contours) on a plane through the "
    "certified point (the star) along two random filter-normalized directions (each unit's incoming "
    "weights scaled to the network's own; biases fixed), [-1, 1] in each. A slice is two of many "
    "directions: a minimum looks like a bowl in every slice, a saddle's way down is seldom in a random one.",
    "heatmap": "Success rate (share of seeds that reached the threshold) per depth and width.",
    "chain_gradients": "|dLoss/dw_1| at initialization of a single-unit tanh chain against its length L, one "
    "point per seed and the median over seeds.",
    "endpoints": "What each seed's end point is after polishing (L-BFGS, then Newton with the exact "
    "Hessian), per width: solved, strict local minimum, degenerate, saddle, valley (a minimum at infinity) "
    "or unconverged.",
    "spectra": "Hessian spectra of the end points that did not solve the task, each eigenvalue's size "
    "relative to the largest: a strict minimum has every eigenvalue above the dashed line, a degenerate "
    "point some below it, a saddle a negative one (an open marker).",
    "barriers": "Loss along the straight path between distinct optima (hidden units aligned) and from each "
    "optimum to the nearest solved network.",
}


def _samples(s: ResultsFolder) -> int:
    """The number of training samples of the study's data (0 when the data cannot be read)."""
    try:
        return len(load_data(s.experiment)[0])
    except ValueError:
        return 0


def _conditions(row: dict) -> str:
    """What a verdict holds for: the learning rate, the initialization and the budget."""
    init = row.get("init", "auto")
    init = "Glorot/He uniform" if init == "auto" else f"{init} uniform"
    scale = row.get("init_scale", 1.0)
    return (
        f"lr {row['lr']:g}, {init} initialization"
        + (f" x{scale:g}" if scale != 1.0 else "")
        + f", batch {row['batch_size']}, {row['epochs']} epochs"
    )


def _verdicts(s: ResultsFolder) -> list[str]:
    """One line per group of widths: the verdicts by width, their conditions, and monotonicity."""
    lines = []
    others = [a for a in analysis.varying_axes(s.summary) if a not in ("depth", "width")]
    axes = [a for a in analysis.config_axes(s.summary) if a != "width"]  # what s.capacity groups by
    for row in s.capacity.to_dict("records"):
        where = ", ".join(f"{a} {row[a]}" for a in ["depth", *others])
        solves = (
            "no width solves the task"
            if np.isnan(row["min_width_solves"])
            else f"the smallest width that ever solves the task is {row['min_width_solves']:g}"
        )
        # This group's widths, so that verdicts of different depths or lrs never mix.
        mine = s.summary[(s.summary[axes] == pd.Series(row)[axes]).all(axis=1)]
        reliable = _reliable(row, mine)
        labels = [
            f"{label} {', '.join(str(w) for w in sorted(mine.loc[mine['verdict'] == label, 'width']))}"
            for label in analysis.LABELS
            if (mine["verdict"] == label).any()
        ]
        line = f"- {where} ({_conditions(row)}): {solves}; {reliable}. Widths: {'; '.join(labels)}."
        if not row["monotone"]:
            line += (
                " Not monotone in width: a wider network succeeds significantly less often than a narrower."
            )
        lines.append(line)
    return lines


def _reliable(row: dict, mine: pd.DataFrame) -> str:
    """What the group's widths say about over-capacity, never surer than the intervals: the smallest
    over-capacity width, or that none is yet and which are undecided, with the seeds that would
    decide them (`nnlab.analysis.decide_seeds`), or that every width solved is critical."""
    sure = f"{LEVEL_TEXT} sure that {analysis.RELIABLE:.0%} of seeds succeed"
    if not np.isnan(row["min_width_reliable"]):
        return f"the smallest over-capacity width ({sure}) is {row['min_width_reliable']:g}"
    open_ = mine[mine["verdict"] == analysis.UNDECIDED].sort_values("width")
    if not len(open_):
        return f"none is over-capacity ({sure}): every width is critical or never solved it"
    undecided = ", ".join(
        f"{r['width']} ({r['successes']}/{r['runs']} solved"
        + (f", {int(r['decide_seeds']):,} seeds could decide)" if np.isfinite(r["decide_seeds"]) else ")")
        for r in open_.to_dict("records")
    )
    return f"no width is over-capacity yet ({sure}); undecided: {undecided}"


def _tests_section(s: ResultsFolder) -> list[str]:
    """Neighbouring widths compared, every difference called significant or not."""
    if s.tests is None or not len(s.tests):
        return []
    paired = s.tests["paired"].to_numpy(dtype=bool)
    tests = []
    if paired.any():
        streams = "the same seeds, so the same initialization and shuffling streams"
        tests.append(
            f"{'the runs' if paired.all() else 'where the runs'} pair by seed ({streams}): success by "
            "McNemar's exact test (a binomial test on the seeds solved by one width and not the other), "
            "epochs to threshold by the Wilcoxon signed-rank test (a run that never got there counted at "
            "its budget + 1, a censored value; seeds where neither did drop out)"
        )
    if not paired.all():
        tests.append(
            f"{'elsewhere' if paired.any() else 'the runs do not pair by seed'}: success by Fisher's exact "
            "test, epochs to threshold by the Mann-Whitney rank test (a run that never got there ranked last)"
        )
    said = "; ".join(tests)
    lines = [
        "## Neighbouring widths compared",
        "",
        f"{said[0].upper()}{said[1:]}; two-sided, significant when p < "
        f"{analysis.ALPHA:g}, not adjusted for the {len(s.tests)} comparisons. Each line names its tests.",
        "",
    ]
    others = [a for a in analysis.varying_axes(s.summary) if a not in ("width",)]
    for row in s.tests.to_dict("records"):
        where = ", ".join(f"{a} {row[a]}" for a in others)
        rate_a = row["successes_a"] / row["runs_a"]
        rate_b = row["successes_b"] / row["runs_b"]
        success = (
            f"success {_pct(rate_a)} -> {_pct(rate_b)}, {row['test_success']} p = {row['p_success']:.2g}, "
            + ("significant" if row["significant_success"] else "not significant")
        )
        epochs = (
            "epochs to threshold: neither solved it, nothing to compare (not significant)"
            if np.isnan(row["p_epochs"])
            else f"median epochs to threshold {_epochs(row['median_epochs_a'])} -> "
            f"{_epochs(row['median_epochs_b'])}, "
            f"{row['test_epochs']} p = {row['p_epochs']:.2g}, "
            + ("significant" if row["significant_epochs"] else "not significant")
        )
        lead = f"{where}, width" if where else "width"
        lines.append(f"- {lead} {row['width_a']} -> {row['width_b']}: {success}; {epochs}.")
    return [*lines, ""]


def _survival_section(s: ResultsFolder) -> list[str]:
    """Success over time: the log-rank test of the epochs to threshold between neighbouring widths
    (`nnlab.analysis.logrank_tests`), runs that never got there censored at their budget or
    followed into their SGD continuation (`nnlab.analysis.survival_times`)."""
    if "epochs_to_threshold" not in s.runs or s.runs["width"].nunique() < 2:
        return []
    runs = analysis.with_continuations(s.runs, s.endpoints)
    found = analysis.logrank_tests(runs)
    if not len(found):
        return []
    if analysis.continued(runs):
        censoring = (
            "a run that did not get there within its budget followed into its continuation (the first "
            "stream of its SGD escape test, resumed from its end point by plain SGD at its rate: an event "
            "if that stream reached the threshold, else censored at its end; a run without one, or trained "
            "by another optimizer or schedule, censored at its budget)"
        )
    else:
        censoring = "a run that never did censored at its budget"
    when = " (within the budget or the continuation)" if analysis.continued(runs) else ""
    lines = [
        "## Success over time",
        "",
        "Kaplan-Meier estimates of the share of seeds that reached the threshold by each epoch (the "
        f"survival figure), {censoring}; neighbouring widths compared by "
        f"the log-rank test (scipy.stats.logrank, two-sided, significant when p < {analysis.ALPHA:g}, "
        f"not adjusted for the {len(found)} comparisons): does the wider network reach the threshold "
        "sooner, counting the seeds that never did?",
        "",
    ]
    others = [a for a in analysis.varying_axes(s.summary) if a != "width"]
    for row in found.to_dict("records"):
        where = ", ".join(f"{a} {row[a]}" for a in others)
        lead = f"{where}, width" if where else "width"
        pair = f"- {lead} {row['width_a']} -> {row['width_b']}"
        counts = f"{row['successes_a']} of {row['runs_a']} -> {row['successes_b']} of {row['runs_b']}"
        if np.isnan(row["p_logrank"]):
            lines.append(f"{pair}: neither reached it, nothing to test.")
            continue
        sooner = "the wider sooner" if row["statistic"] < 0 else "the narrower sooner"
        verdict = f"significant ({sooner})" if row["significant_logrank"] else "not significant"
        lines.append(f"{pair}: {counts} reached it{when}; log-rank p = {row['p_logrank']:.2g}, {verdict}.")
    return [*lines, ""]


def _best_section(s: ResultsFolder) -> list[str]:
    """Each architecture at its own best setting, when lr or the initialization is swept."""
    if s.best is None or not len(s.best):
        return []
    tuning = [a for a in analysis.TUNING if a in s.summary.columns and s.summary[a].nunique() > 1]
    lines = [
        "## Each architecture at its best setting",
        "",
        f"Of the settings of {', '.join(tuning)} tried for each architecture, the one with the lowest ERT "
        "(ties: the higher success rate, then the lower median loss):",
        "",
    ]
    for row in s.best.to_dict("records"):
        setting = ", ".join(
            f"{a} {row[a]:g}" if isinstance(row[a], float) else f"{a} {row[a]}" for a in tuning
        )
        lines.append(
            f"- depth {row['depth']}, width {row['width']}: {setting} (of {row['chosen_from']}): success "
            f"{_pct(row['success'])} [{_pct(row['success_lo'])}, {_pct(row['success_hi'])}], ERT "
            f"{_ert(row['ert'])}, {analysis.verdict_text(row)}."
        )
    return [*lines, ""]


def _landscape_section(s: ResultsFolder) -> list[str]:
    """What the end points are, per configuration, from the certificates of `nnlab landscape`."""
    options_path = s.path / "landscape" / "options.json"
    options = json.loads(options_path.read_text()) if options_path.is_file() else {}
    lines = [
        "## What the end points are",
        "",
        "`nnlab landscape` polished each seed's final network on the full-data loss until convergence "
        "decided (rounds of L-BFGS, then Newton steps: exact Hessians up to "
        f"{options.get('max_full', 1500)} parameters, Hessian-vector products above) and classified the "
        "point it reached, tolerances relative to the spectrum's scale s = max |eigenvalue|"
        + (
            f" (critical: |gradient| <= {options['gtol']:g} s, and a further descent cannot lower the loss; "
            f"flat: |eigenvalue| <= {options['flat']:g} s; clearly negative: below -{options['negative']:g} "
            "s; a saddle also where a fourth-order test along flat directions, or a perturbation followed "
            "by descent, finds a way down; a valley where a continuation along the motion keeps the loss "
            "falling and the gradient decaying as the norm grows, its mechanism named; "
            f"a safety budget of {options['lbfgs_iters']} L-BFGS iterations ends in unconverged, never "
            "in another kind)"
            if options
            else ""
        )
        + ". Strict local minima are grouped into distinct optima modulo hidden-unit permutation and "
        "sign, and minima whose losses agree within what their certificates pin down (|gradient|^2 / "
        "(2 smallest eigenvalue), plus the further descent the continuation test allows) and whose "
        "aligned path does not rise by more than that are one optimum: one near-flat minimum reached "
        "at different points of its softest direction, or a connected flat family (its extent: the "
        "farthest member's distance from the lowest); a barrier is the highest loss on a path between "
        "two aligned networks minus the higher end, along a quadratic Bezier curve trained on the "
        "loss, beside the straight line (an upper bound).",
        "",
    ]
    runs = s.runs
    axes = ["depth", "width", *(a for a in analysis.varying_axes(s.summary) if a not in ("depth", "width"))]
    joined = s.endpoints.merge(runs[["run_id", *axes]], on="run_id")
    for key, g in joined.groupby(axes, sort=True):
        where = ", ".join(f"{a} {v}" for a, v in zip(axes, key, strict=True))
        counts = g["kind"].value_counts()
        parts = []
        for kind, one, many in (
            ("solved", "solved", "solved"),
            ("minimum", "strict local minimum", "strict local minima"),
            ("degenerate", "degenerate", "degenerate"),
            ("saddle", "saddle", "saddles"),
            ("valley", "valley", "valleys"),
            ("unconverged", "unconverged", "unconverged"),
        ):
            sub = g[g["kind"] == kind]
            if not len(sub):
                continue
            text = f"{len(sub)} {one if len(sub) == 1 else many}"
            if kind != "solved":
                lo, hi = sub["polished_loss"].min(), sub["polished_loss"].max()
                text += f" (loss {_loss(lo)}" + (f" to {_loss(hi)}" if hi > lo * 1.001 else "") + ")"
            if kind == "degenerate":
                text += f", median {sub['n_flat'].median():g} flat eigenvalue" + (
                    "" if sub["n_flat"].median() == 1 else "s"
                )
                origin = int(np.count_nonzero(sub["norm_end"] < 1e-8))
                if origin:
                    text += f", {origin} of them the all-zero network"
            parts.append(text)
        line = f"- {where}: {len(g)} end points: " + "; ".join(parts) + "."
        if counts.get("solved", 0) == len(g):
            line = f"- {where}: all {len(g)} end points solved."
        optima = s.optima
        if optima is not None and len(optima):
            mine = optima[(optima[axes] == pd.Series(dict(zip(axes, key, strict=True)))).all(axis=1)]
            if len(mine):
                described = "; ".join(
                    f"loss {_loss(o.polished_loss)} ({o.seeds} seed{'s' if o.seeds != 1 else ''}, "
                    f"eigenvalues {o.lambda_min:.2g} to {o.lambda_max:.2g}"
                    + (
                        f", a flat family of extent {o.extent:.2g}"
                        if np.isfinite(getattr(o, "extent", np.nan)) and o.extent > 0
                        else ""
                    )
                    + (
                        f", barrier {o.bezier_to_solved:.2g} along an optimized curve to the best "
                        f"network SGD solved (straight line: {o.barrier_to_solved:.2g}, an upper bound)"
                        if np.isfinite(o.barrier_to_solved)
                        else ""
                    )
                    + ")"
                    for o in mine.sort_values("polished_loss").itertuples(index=False)
                )
                line += f" {len(mine)} distinct optim{'um' if len(mine) == 1 else 'a'}: {described}."
        lines.append(line)
    lines.append("")
    return [*lines, *_splits_section(s)]


def _splits_section(s: ResultsFolder) -> list[str]:
    """One more unit (DIR/splits.parquet, `nnlab.sweep.endpoints.split_optima`): does splitting a
    hidden unit of each certified optimum turn it into a saddle of the wider network?"""
    path = s.path / "splits.parquet"
    if not path.is_file():
        return []
    splits = pd.read_parquet(path)
    if not len(splits):
        return []
    lines = [
        "### One more unit",
        "",
        "Each distinct optimum of width k embedded into width k + 1 by splitting one hidden unit at a "
        "time (the unit duplicated, its outgoing weights shared as a and 1 - a, a = "
        f"{splits['a'].iloc[0]:g}: the same function, the same loss; Fukumizu & Amari 2000) and certified "
        "again: a saddle means one more unit opens a way down from that optimum; a minimum (or "
        "degenerate point) that the wider network keeps it and width only shrinks its basin.",
        "",
    ]
    axes = ["depth", "width", *(a for a in analysis.varying_axes(s.summary) if a not in ("depth", "width"))]
    for key, g in splits.groupby([*axes, "optimum"], sort=True):
        where = ", ".join(f"{a} {v}" for a, v in zip(axes, key[:-1], strict=True))
        counts = g["kind"].value_counts()
        said = []
        for kind, count in counts.items():
            text = f"{count} {kind}{'s' if count != 1 and kind in ('saddle', 'minimum') else ''}"
            if kind == "saddle":
                orders = sorted({int(o) for o in g.loc[g["kind"] == kind, "saddle_order"]})
                text += f" (order {', '.join('unresolved' if o < 0 else str(o) for o in orders)})"
            said.append(text.replace("minimums", "minima"))
        width = int(key[axes.index("width")])
        units = width * int(key[axes.index("depth")])
        if counts.get("saddle", 0) == len(g):
            meaning = f"width {width + 1} opens a way down from it"
        elif counts.get("saddle", 0):
            meaning = f"some splits open a way down at width {width + 1}, others do not"
        else:
            meaning = f"width {width + 1} keeps it (no way down found by splitting)"
        lines.append(
            f"- {where}, optimum {key[-1]} (loss {_loss(g['loss'].iloc[0])}): {len(g)} of {units} unit"
            f"{'s' if units != 1 else ''} split: {'; '.join(said)}; {meaning}."
        )
    return [*lines, ""]


def report(s: ResultsFolder, figure_files: list[Path], captions: dict[str, str] | None = None) -> str:
    """DIR/report.md's text: the experiment, the summary table, the capacity verdicts, the figures
    (each with its caption from ``captions``, by stem, or `CAPTIONS`)."""
    r = s
    exp = r.experiment
    manifest_path = r.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    lines = [f"# {exp.name}", ""]
    if r.partial:
        lines += [
            f"> **Partial results:** {len(r.runs)} of {r.total} runs are stored; rerun "
            f"`nnlab run` on the experiment to finish the sweep, then `nnlab report` again.",
            "",
        ]
    if exp.description:
        lines += [exp.description, ""]
    task = ", ".join(f"{k} = {v}" for k, v in exp.task.items() if k != "kind")
    lines += [
        f"Task `{exp.task['kind']}` ({task}); {len(exp.configs())} configurations x {len(exp.seeds)} seeds; "
        f"a run is solved when its training loss falls below {exp.threshold:g}.",
    ]
    if manifest:
        sessions = manifest.get("sessions", [])
        trained = [x for x in sessions if x.get("runs_trained")]
        seconds = sum(
            (dt.datetime.fromisoformat(x["end"]) - dt.datetime.fromisoformat(x["start"])).total_seconds()
            for x in trained
        )
        took = f" in {seconds:.0f} s of sweep time" if trained else ""
        how = ", ".join(sorted({f"{x['jobs']} job(s), backend {x['backend']}" for x in trained}))
        commits = {str(x.get("git_commit"))[:10] for x in trained if x.get("git_commit")}
        commit = ", ".join(sorted(commits)) or str(manifest.get("git_commit"))[:10]
        lines += [
            f"Computed by nnlab {manifest.get('nnlab')} (commit {commit}){took}"
            + (f" ({how})." if how else ".")
        ]
    lines += [
        "",
        "<details><summary>The resolved experiment</summary>",
        "",
        "```toml",
        exp.to_toml().rstrip(),
    ]
    lines += ["```", "", "</details>", "", "## Summary", "", markdown(display(s.summary)), ""]
    if s.endpoints is not None:
        optima_text = (
            "the end points are those certified by `nnlab landscape` (see below): solved, strict local "
            "minimum, degenerate, saddle, valley or unconverged; optima (certified) counts the distinct "
            "strict local minima among them, modulo permutation and sign of the hidden units (solved end "
            "points are counted apart)."
        )
    else:
        optima_text = (
            f"optima (uncertified estimate) counts the distinct final losses (within {s.rtol:.0%}) of the "
            f"runs that stopped moving (final gradient norm at most {s.gtol:g} and a loss that changed by "
            f"at most {s.rtol:.0%} over the last tenth of the epochs), all solved runs counting as one "
            "optimum (zero loss); '-' where no run stopped moving. It is not a certificate: equal losses "
            "need not be one optimum, nor a stopped run an optimum (`nnlab landscape` certifies them)."
        )
    lines += [
        "Losses are final full-data training losses over the seeds (a diverged run counts as +inf), the "
        f"median with its bootstrap {analysis.LEVEL:.0%} interval ({analysis.BOOTSTRAP_REPS} resamples); "
        "success is the share of seeds whose loss fell below the threshold at some epoch (hitting-based, "
        f"as COCO counts it), with its Wilson {analysis.LEVEL:.0%} interval, and 'final < threshold' the "
        "share whose final loss is below it; ERT is the expected number of epochs to reach the threshold "
        "(failed runs count their whole budget) with its bootstrap interval; " + optima_text,
        "",
        *(_landscape_section(s) if s.endpoints is not None else []),
        "## Verdicts",
        "",
        f"Per configuration: over-capacity when the success rate's Wilson lower bound is at least "
        f"{analysis.RELIABLE:.0%}, critical when its upper bound is below it, undecided in between (with "
        "the seeds at which the same success rate would decide); a configuration never solved is "
        "diverged (half its runs or more), worse than at start (half its runs or more ended above "
        "their initial loss: the learning rate failed), "
        "under-capacity only when `nnlab landscape` certified every end point a non-solving minimum, "
        "degenerate point or "
        "valley, else unsolved within budget (most runs still descending at the end) or stuck (the loss "
        "flat). A verdict holds for its learning rate, initialization and budget only.",
        "",
        *_verdicts(s),
        "",
        *_tests_section(s),
        *_survival_section(s),
        *_best_section(s),
    ]
    if s.redundant is not None and "redundant_units" in s.summary:
        n = _samples(s)
        lines += [
            "## Inside the networks",
            "",
            "Hidden units a solved network can lose, one at a time and greedily (each removal refits the "
            "next layer by least squares over all the remaining units), kept only while the loss stays "
            f"within {analysis.PRUNE_RTOL:.0%} of the network's own loss plus {analysis.PRUNE_ATOL:.0%} of "
            "the threshold: a greedy count, so a lower bound of what could go."
            + (
                f" The {n} training samples give a layer's activations (with a column of ones) rank at most "
                f"{n}, so no layer ever needs more than {n - 1} units with biases ({n} without) to pass on "
                "what it computes."
                if n
                else ""
            ),
            "",
        ]
        # Every swept axis names the configuration, so no two lines read alike.
        axes = [
            "depth",
            "width",
            *(a for a in analysis.varying_axes(s.summary) if a not in ("depth", "width")),
        ]
        for row in s.summary.to_dict("records"):
            if not np.isnan(row["redundant_units"]):
                where = ", ".join(f"{a} {row[a]}" for a in axes)
                lines.append(
                    f"- {where}: median {row['redundant_units']:g} of "
                    f"{row['depth'] * row['width']} units redundant."
                )
        lines.append("")
    shown = [p for p in figure_files if p.suffix == ".png"]
    if shown:
        lines += ["## Figures", ""]
        for path in shown:
            text = (captions or {}).get(path.stem) or CAPTIONS.get(path.stem, "")
            lines += [f"![{path.stem}](figures/{path.name})", "", text, ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(
    s: ResultsFolder, formats: tuple[str, ...] = ("png", "svg"), size: str | None = None
) -> Path:
    """Write the figures and DIR/report.md; returns the report's path."""
    drawn = figures(s, size)
    captions = {stem: caption(stem, figure) for stem, figure in drawn.items()}
    files = save_figures(drawn, make_dir(s.path / "figures"), formats)
    path = s.path / "report.md"
    atomic_write_text(path, report(s, files, captions))
    return path
