"""From a results folder to what a reader sees: the summary table (text, markdown or CSV), the
figures written into DIR/figures/, and DIR/report.md.

The top room: it reads a folder (sweep), computes the statistics (analysis) and draws (figures).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nnlab import analysis
from nnlab.sweep import Results, load_data, read_networks, read_results

FORMATS = ("png", "pdf", "svg")
DPI = 150


@dataclass(frozen=True, eq=False)
class Study:
    """A results folder with its statistics.

    Attributes
    ----------
    results : Results
        The folder's experiment and tables.
    summary : DataFrame
        `nnlab.analysis.summarize` of the runs (with ``redundant_units`` when networks were saved).
    capacity : DataFrame
        `nnlab.analysis.capacity` of the summary.
    redundant : DataFrame or None
        `nnlab.analysis.redundancy` per run, when the experiment saved its networks.
    gtol, rtol : float
        The tolerances the optima were counted with.
    warnings : tuple of str
        What could not be computed, and why (say, pruning when the data file is gone).
    """

    results: Results
    summary: pd.DataFrame
    capacity: pd.DataFrame
    redundant: pd.DataFrame | None
    gtol: float = analysis.GTOL
    rtol: float = analysis.RTOL
    warnings: tuple[str, ...] = ()


def study(
    folder: Path, *, curves: bool = True, gtol: float = analysis.GTOL, rtol: float = analysis.RTOL
) -> Study:
    """Read ``folder`` and compute its statistics (see `nnlab.analysis.summarize` for gtol, rtol)."""
    results = read_results(folder, curves=curves)
    exp = results.experiment
    params = read_networks(folder, results.runs)
    redundant = None
    warnings = []
    if params:
        # Pruning needs the data; the tables do not, so a moved or changed data file costs only it.
        try:
            X, Y, _, _ = load_data(exp)
        except ValueError as err:
            warnings.append(f"redundant units not counted: {err}")
        else:
            redundant = analysis.redundancy(results.runs, params, X, Y, exp.threshold)
    summary = analysis.summarize(
        results.runs, exp.threshold, curves=results.curves, gtol=gtol, rtol=rtol, redundant=redundant
    )
    return Study(results, summary, analysis.capacity(summary), redundant, gtol, rtol, tuple(warnings))


def _pct(x: float) -> str:
    """A percentage that never rounds a near-certain or near-impossible rate to 100% or 0%."""
    return f"{x:.1%}" if 0 < x < 0.01 or 0.99 < x < 1 else f"{x:.0%}"


def _loss(x: float) -> str:
    return "diverged" if not np.isfinite(x) else f"{x:.2e}"


def display(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as short strings, for people: the swept axes (depth and width always), then the
    statistics that matter most."""
    axes = [a for a in analysis.config_axes(summary) if a in ("depth", "width")]
    axes += [a for a in analysis.varying_axes(summary) if a not in axes]
    out = pd.DataFrame({a: summary[a].astype(str) for a in axes})
    out["runs"] = summary["runs"].astype(str)
    out["diverged"] = summary["diverged"].astype(str)
    out["median loss"] = summary["median"].map(_loss)
    out["IQM"] = summary["iqm"].map(_loss)
    out["10% / 90%"] = [
        f"{_loss(a)} / {_loss(b)}" for a, b in zip(summary["q10"], summary["q90"], strict=True)
    ]
    out["success [95% CI]"] = [
        f"{_pct(s)} [{_pct(lo)}, {_pct(hi)}]"
        for s, lo, hi in zip(summary["success"], summary["success_lo"], summary["success_hi"], strict=True)
    ]
    out["ERT (epochs)"] = summary["ert"].map(lambda e: "never" if math.isinf(e) else f"{e:.0f}")
    out["median epochs"] = summary["median_epochs"].map(lambda e: "-" if np.isnan(e) else f"{e:.0f}")
    # 0 optima means no run stopped moving (and none solved): unknown, not "none".
    out["optima"] = summary["optima"].map(lambda k: str(k) if k else "-")
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
    out["capacity"] = summary["capacity"]
    return out


def markdown(table: pd.DataFrame) -> str:
    """A table of strings as a GitHub-flavoured markdown table (numbers right-aligned)."""
    right = [c for c in table.columns if c not in ("capacity", "hidden", "output", "loss")]
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("--:" if c in right else "---" for c in table.columns) + "|"
    rows = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in table.itertuples(False)
    ]
    return "\n".join([head, rule, *rows])


def text(table: pd.DataFrame, title: str = "") -> str:
    """A table of strings as fixed-width text (a rich table, no colour)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title or None, box=None, pad_edge=False, title_justify="left")
    for c in table.columns:
        t.add_column(c, justify="left" if c == "capacity" else "right", no_wrap=True)
    for row in table.itertuples(False):
        t.add_row(*map(str, row))
    console = Console(width=400, color_system=None, record=True, file=io.StringIO())
    console.print(t)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def figures(s: Study) -> dict:
    """The figures that apply to the study, by file stem (see `nnlab.figures.figures_for`)."""
    from nnlab import figures as fig

    r = s.results
    chain = None
    if r.experiment.task["kind"] == "chain":
        X, Y, _, _ = load_data(r.experiment)
        lengths = sorted({int(d) + 1 for d in r.runs["depth"]})
        chain = analysis.chain_gradients(lengths, r.experiment.seeds, X, Y)
    return fig.figures_for(r.runs, r.curves, s.summary, r.experiment.threshold, chain=chain)


def write_figures(s: Study, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Draw the study's figures into DIR/figures/ in each format; returns the files written."""
    import matplotlib.pyplot as plt

    folder = s.results.path / "figures"
    folder.mkdir(exist_ok=True)
    written = []
    for stem, figure in figures(s).items():
        for ext in formats:
            path = folder / f"{stem}.{ext}"
            tmp = folder / f".{stem}.tmp.{ext}"
            # Fixed metadata, so regenerated figures differ only where the numbers do.
            meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(ext, {"Software": None})
            figure.savefig(tmp, dpi=DPI, bbox_inches="tight", metadata=meta)
            tmp.replace(path)
            written.append(path)
        plt.close(figure)
    return written


CAPTIONS = {
    "spread": "Final training loss of every seed, per width: where the points spread over several "
    "levels, SGD stopped in different local optima depending on the seed.",
    "ecdf": "Share of seeds that reached each final loss, per width: a curve further up and left "
    "means more seeds reached a low loss.",
    "convergence": "Training loss against epoch: median over seeds, with the band between the 25% and "
    "75% quantiles.",
    "capacity": "Success rate (with its Wilson 95% interval) and expected running time against width.",
    "heatmap": "Success rate per depth and width.",
    "chain_gradients": "|dLoss/dw_1| at initialization against the chain's length, one point per seed.",
}


def _verdicts(s: Study) -> list[str]:
    lines = []
    others = [a for a in analysis.varying_axes(s.summary) if a not in ("depth", "width")]
    axes = [a for a in analysis.config_axes(s.summary) if a != "width"]  # what s.capacity groups by
    for row in s.capacity.itertuples(False):
        where = ", ".join(f"{a} {getattr(row, a)}" for a in ["depth", *others])
        solves = (
            "no width solves the task"
            if np.isnan(row.min_width_solves)
            else (f"the smallest width that ever solves the task is {row.min_width_solves:g}")
        )
        reliable = (
            "none solves it in 95% of seeds"
            if np.isnan(row.min_width_reliable)
            else (f"from width {row.min_width_reliable:g} at least 95% of seeds do")
        )
        # This group's widths by label, so that verdicts of different depths or lrs never mix.
        mine = s.summary[(s.summary[axes] == pd.Series(row._asdict())[axes]).all(axis=1)]
        labels = [
            f"{label} {', '.join(str(w) for w in sorted(mine.loc[mine['capacity'] == label, 'width']))}"
            for label in analysis.LABELS
            if (mine["capacity"] == label).any()
        ]
        lines.append(f"- {where}: {solves}; {reliable}. Widths: {'; '.join(labels)}.")
    return lines


def report(s: Study, figure_files: list[Path]) -> str:
    """DIR/report.md's text: the experiment, the summary table, the capacity verdicts, the figures."""
    r = s.results
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
    lines += [
        "Losses are final full-data training losses over the seeds (a diverged run counts as +inf); "
        "success is the share of seeds below the threshold, with its Wilson 95% interval; ERT is "
        "the expected number of epochs to reach the threshold (failed runs count their whole budget); "
        f"optima counts the distinct final losses (within {s.rtol:.0%}) of the runs that stopped moving "
        f"(final gradient norm at most {s.gtol:g} and a loss that changed by at most {s.rtol:.0%} over "
        "the last tenth of the epochs), all solved runs counting as one optimum (zero loss); "
        "'-' where no run stopped moving.",
        "",
        "## Capacity",
        "",
        *_verdicts(s),
        "",
    ]
    if s.redundant is not None and "redundant_units" in s.summary:
        lines += [
            "Inside the networks (solved runs; hidden units removable, greedily, with the loss kept below "
            "the threshold):",
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
            lines += [f"![{path.stem}](figures/{path.name})", "", CAPTIONS.get(path.stem, ""), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(s: Study, formats: tuple[str, ...] = ("png", "svg")) -> Path:
    """Write the figures and DIR/report.md; returns the report's path."""
    files = write_figures(s, formats)
    path = s.results.path / "report.md"
    tmp = path.with_name(".report.md.tmp")
    tmp.write_text(report(s, files), encoding="utf-8")
    tmp.replace(path)
    return path
