"""Write docs/api.md: every public function, class and constant of nnlab's modules, with its signature
and docstring, read from the code itself (so the reference cannot drift from it; tests/test_docs.py
checks that the committed file is what this script writes).

    python scripts/api_reference.py          # rewrite docs/api.md
    python scripts/api_reference.py --check  # exit 1 if docs/api.md is out of date
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "api.md"

# Rooms in the order data flows through them (nnlab's own __init__ first: what `import nnlab` gives).
MODULES = (
    ("nnlab", "The package: the network, back-propagation and training, and the front door."),
    ("nnlab.front", "The front door: `nnlab.load`, `nnlab.run`, `nnlab.compare`."),
    ("nnlab.functions", "Activations and losses, with their first and second derivatives."),
    ("nnlab.tasks", "Data: each task a pure function of its fields and the data's seed."),
    ("nnlab.network", "Networks of R replicas: initialization, forward pass, back-propagation."),
    ("nnlab.sgd", "Plain SGD on all replicas at once; the compiled layouts; memory and time."),
    ("nnlab.errors", "What the user got wrong (InputError, exit 2), said once for every room."),
    ("nnlab.schema", "What every room agrees on: the axes (Config's fields), columns, kinds, limits."),
    ("nnlab.landscape", "Second order: Hessians, certification of end points, symmetries."),
    ("nnlab.landscape.curvature", "Hessian-vector products and Hessians by the second-order recursion."),
    ("nnlab.landscape.polish", "Polishing an end point and classifying it."),
    ("nnlab.landscape.symmetry", "Canonical forms modulo permutation and sign, distinct optima, barriers."),
    ("nnlab.landscape.paths", "Optimized paths between two networks: quadratic Bezier barriers."),
    ("nnlab.landscape.splitting", "Unit splitting: a width-k network embedded in width k+1, certified."),
    ("nnlab.landscape.escape", "The SGD escape test: resume SGD from an end point with fresh streams."),
    ("nnlab.sweep.experiment", "Experiment files: validation, the grid, run ids."),
    ("nnlab.sweep.planning", "A sweep's plan and its limits (`nnlab run --dry-run`)."),
    ("nnlab.sweep.progress", "What a running sweep prints."),
    ("nnlab.sweep.runner", "The sweep runner: jobs planned, trained and stored (`nnlab run`)."),
    ("nnlab.sweep.store", "Part files, their merge into the tables, reading a results folder back."),
    ("nnlab.sweep.workers", "Worker processes (loky or Dask) that always end: lost workers, retries, stops."),
    ("nnlab.sweep.folder", "A results folder's lock and whole-file writes."),
    ("nnlab.sweep.endpoints", "`nnlab landscape` on a results folder."),
    ("nnlab.analysis.intervals", "Intervals: Wilson, bootstrap, quantiles, ERT."),
    ("nnlab.analysis.runs", "The runs table's axes and per-run statistics."),
    ("nnlab.analysis.summary", "The summary: one row per configuration."),
    ("nnlab.analysis.verdicts", "Capacity labels, the capacity table, best settings."),
    ("nnlab.analysis.comparisons", "Two sweeps side by side; tests between neighbouring widths."),
    ("nnlab.analysis.pruning", "Saved networks analysed: units not needed, gradients along a chain."),
    ("nnlab.figures", "Figures: each an axes-level panel (ax=) and a figure-level function; figures_for."),
    ("nnlab.figures.layout", "What every figure shares: style, sizes, palettes, facets, loss and epoch axes"),
    ("nnlab.results", "One object for a results folder: its experiment, tables and statistics."),
    ("nnlab.report", "Summary table, figures and report.md of a results folder."),
)


def public(module) -> list[tuple[str, object]]:
    """The module's public names: its ``__all__`` when it has one, else every function, class and
    UPPER_CASE constant its own top level defines (not those it imports), not starting with ``_``."""
    names = getattr(module, "__all__", None)
    if names is None:
        defined = []
        for node in ast.parse(inspect.getsource(module)).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.append(node.name)
            elif isinstance(node, ast.Assign):
                defined += [t.id for t in node.targets if isinstance(t, ast.Name) and t.id.isupper()]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined += [node.target.id] if node.target.id.isupper() else []
        names = [n for n in dict.fromkeys(defined) if not n.startswith("_")]
    return [(n, getattr(module, n)) for n in names]


def _annotation(a) -> str:
    if a is inspect.Parameter.empty:
        return ""
    return a if isinstance(a, str) else getattr(a, "__name__", repr(a))


def signature(name: str, obj) -> str:
    """``name(a: int, *, b: float = 0.5) -> T`` from the code (annotations as written)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    parts, star = [], False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        text = ("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "") + p.name
        if p.kind is p.VAR_POSITIONAL:
            star = True
        ann = _annotation(p.annotation)
        if ann:
            text += f": {ann}"
        if p.default is not inspect.Parameter.empty:
            text += f" = {p.default!r}" if ann else f"={p.default!r}"
        parts.append(text)
    ret = _annotation(sig.return_annotation)
    return f"{name}({', '.join(parts)})" + (f" -> {ret}" if ret else "")


def _doc(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return f"```text\n{doc}\n```\n" if doc else "(no docstring)\n"


def _constant(value) -> str:
    if isinstance(value, dict):
        keys = ", ".join(map(str, list(value)[:12])) + (", ..." if len(value) > 12 else "")
        return f"dict of {len(value)}: {keys}"
    if isinstance(value, frozenset | set):
        return "{" + ", ".join(sorted(map(str, value))) + "}"
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def members(cls) -> list[tuple[str, object]]:
    """A class's public methods and properties (its own, not inherited from object or a dataclass)."""
    out = []
    for n, obj in vars(cls).items():
        if n.startswith("_"):
            continue
        if isinstance(obj, property | staticmethod | classmethod) or inspect.isfunction(obj):
            out.append((n, obj))
        elif type(obj).__name__ == "cached_property":
            out.append((n, obj))
    return out


def render() -> str:
    lines = [
        "# nnlab API reference",
        "",
        "Generated from the code by `python scripts/api_reference.py` (signatures and docstrings as "
        "written; `tests/test_docs.py` fails when this file is out of date). The guided tour of the "
        "same interface, the command line, the tables and their columns is [reference.md](reference.md).",
        "",
        "Notation: R replicas (seeds trained together), n samples, d inputs, out outputs, P parameters "
        "of one network; weights of layer i are shaped (R, n_in, n_out).",
        "",
        "## Contents",
        "",
    ]
    lines += [f"- [`{name}`](#{name.replace('.', '')}): {what}" for name, what in MODULES]
    for name, what in MODULES:
        module = importlib.import_module(name)
        lines += ["", f"## {name}", "", what, ""]
        for n, obj in public(module):
            if n == "__version__":
                lines += [f"### `{name}.__version__`", "", f"`{obj!r}`", ""]
                continue
            if inspect.ismodule(obj):
                lines += [f"### `{name}.{n}`", "", f"The module `{obj.__name__}` (below).", ""]
                continue
            where = getattr(obj, "__module__", name)
            if where != name and (inspect.isfunction(obj) or inspect.isclass(obj)):
                # Re-exported: point to where it is documented in full.
                lines += [
                    f"### `{name}.{n}`",
                    "",
                    f"`{where}.{n}`: see [{where}](#{where.replace('.', '')}).",
                    "",
                ]
                continue
            if inspect.isclass(obj):
                kind = "dataclass" if dataclasses.is_dataclass(obj) else "class"
                lines += [f"### `{name}.{n}` ({kind})", "", f"```python\n{signature(n, obj)}\n```", _doc(obj)]
                for m, member in members(obj):
                    if isinstance(member, property) or type(member).__name__ == "cached_property":
                        func = member.fget if isinstance(member, property) else member.func
                        ret = _annotation(inspect.signature(func).return_annotation)
                        lines += [
                            f"- `{n}.{m}`"
                            + (f" -> `{ret}`" if ret else "")
                            + f" (property): {_oneline(func)}"
                        ]
                    else:
                        func = member.__func__ if isinstance(member, staticmethod | classmethod) else member
                        lines += [f"- `{n}.{signature(m, func)}`: {_oneline(func)}"]
                lines.append("")
            elif callable(obj):
                lines += [f"### `{name}.{n}`", "", f"```python\n{signature(n, obj)}\n```", _doc(obj)]
            else:
                lines += [f"### `{name}.{n}` (constant)", "", f"`{_constant(obj)}`", ""]
    return "\n".join(lines).rstrip() + "\n"


def _oneline(func) -> str:
    doc = inspect.getdoc(func) or ""
    return " ".join(doc.split("\n\n")[0].split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.is_file() else ""
        if current != text:
            print(
                f"{OUT.relative_to(ROOT)} is out of date: run python scripts/api_reference.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {text.count(chr(10))} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
