"""The documentation inside the repository: complete (every public function, command, option and
column is in it), current (docs/api.md is what the code generates), and self-contained (no link leaves
the repository)."""

import importlib
import inspect
import json
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import click
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import nnlab
from nnlab.cli import app

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference.md"
API = ROOT / "docs" / "api.md"
DOCS = [
    ROOT / "README.md",
    ROOT / "experiments" / "README.md",
    REFERENCE,
    API,
    *(ROOT / "docs" / f"{name}.md" for name in ("guide", "studies", "performance")),
]
sys.path.insert(0, str(ROOT / "scripts"))
import api_reference  # noqa: E402

runner = CliRunner()


def documented(name: str, text: str) -> bool:
    return (
        f"`{name}`" in text or f"`{name}(" in text or re.search(rf"\b{re.escape(name)}\b", text) is not None
    )


def test_api_reference_is_what_the_code_says():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "api_reference.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_every_public_name_is_documented():
    """Every name of nnlab.__all__, and every public function, class, method, property and constant
    of every module, has a heading in docs/api.md (with a docstring) and appears in the reference."""
    api = API.read_text(encoding="utf-8")
    reference = REFERENCE.read_text(encoding="utf-8")
    for name in nnlab.__all__:
        assert f"### `nnlab.{name}`" in api, name
        if not name.startswith("_") and not name.isupper():
            assert documented(name, reference), f"nnlab.{name} is not in docs/reference.md"
    for module_name, _ in api_reference.MODULES:
        module = importlib.import_module(module_name)
        for name, obj in api_reference.public(module):
            heading = f"### `{module_name}.{name}`"
            assert heading in api, heading
            if inspect.isfunction(obj) or inspect.isclass(obj):
                assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"
            if inspect.isclass(obj):
                for member, value in api_reference.members(obj):
                    func = value.fget if isinstance(value, property) else getattr(value, "func", value)
                    assert inspect.getdoc(func), f"{module_name}.{name}.{member} has no docstring"
                    assert f"`{name}.{member}" in api, f"{name}.{member}"
    assert "(no docstring)" not in api


def commands():
    group = typer.main.get_command(app)
    ctx = click.Context(group)
    return group, [(name, group.get_command(ctx, name)) for name in group.list_commands(ctx)]


def test_every_command_and_option_is_in_the_reference():
    reference = REFERENCE.read_text(encoding="utf-8")
    group, found = commands()
    assert {name for name, _ in found} >= {
        "run",
        "summary",
        "figures",
        "report",
        "landscape",
        "compare",
        "demo",
    }
    for name, command in found:
        assert f"### `nnlab {name}" in reference, name
        for param in command.params:
            for opt in [*param.opts, *param.secondary_opts]:
                if opt.startswith("--"):
                    assert f"`{opt}" in reference or f" {opt}" in reference, f"nnlab {name} {opt}"
    assert "--version" in reference
    for code in ("0", "1", "2", "130"):
        assert f"| {code} |" in reference


def test_help_names_what_options_take():
    """No type tags a user has to decode: flags take no value, options say what they take."""
    group, found = commands()
    for args in [[], *[[name] for name, _ in found]]:
        result = runner.invoke(app, [*args, "--help"], terminal_width=200)
        assert result.exit_code == 0, args
        for tag in ("<bool>", "<list[", "<int range>", "<float range>", "<str>", "--no-"):
            assert tag not in result.output, (args, tag)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A freshly written results folder with every table: saved networks, a held-out split, a
    classification loss (accuracies), certificates."""
    folder = tmp_path_factory.mktemp("docs")
    rows = ["x1,x2,label"] + [
        f"{a},{b},{int((a > 0) != (b > 0))}" for a in (-1, -0.5, 0.5, 1) for b in (-1, 1)
    ]
    (folder / "xor.csv").write_text("\n".join(rows) + "\n")
    out = folder / "every"
    exp = {
        "name": "every",
        "threshold": 0.05,
        "save_networks": True,
        "task": {
            "kind": "file",
            "path": str(folder / "xor.csv"),
            "inputs": ["x1", "x2"],
            "targets": ["label"],
            "classes": 2,
            "test_fraction": 0.25,
        },
        "model": {"width": [1, 3], "output": "softmax"},
        "train": {"lr": 0.1, "epochs": 40, "seeds": 6, "loss": "cross_entropy"},
    }
    nnlab.run(exp, out=out, quiet=True)
    result = runner.invoke(
        app, ["landscape", str(out), "--lbfgs-iters", "100", "--newton-iters", "5", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_every_column_and_key_is_in_the_reference(written):
    reference = REFERENCE.read_text(encoding="utf-8")
    for table in ("runs", "curves", "networks", "endpoints", "optima", "barriers", "splits"):
        for column in pd.read_parquet(written / f"{table}.parquet").columns:
            assert f"`{column}`" in reference, f"{table}.parquet: {column}"
    for format in ("csv",):
        summary = runner.invoke(app, ["summary", str(written), "--format", format]).stdout
        for column in pd.read_csv(StringIO(summary)).columns:
            assert f"`{column}`" in reference, f"summary: {column}"
    manifest = json.loads((written / "manifest.json").read_text())
    for key in [*manifest, *manifest["sessions"][-1]]:
        assert f"`{key}`" in reference, f"manifest.json: {key}"
    options = json.loads((written / "landscape" / "options.json").read_text())
    for key in options:
        assert f"`{key}`" in reference, f"landscape/options.json: {key}"


def test_the_uncertified_summary_columns_are_in_the_reference(tmp_path):
    reference = REFERENCE.read_text(encoding="utf-8")
    out = tmp_path / "plain"
    nnlab.run(
        {
            "name": "plain",
            "task": {"kind": "xor"},
            "model": {"width": [2]},
            "train": {"epochs": 5, "seeds": 2},
        },
        out=out,
        quiet=True,
    )
    summary = runner.invoke(app, ["summary", str(out), "--format", "csv"]).stdout
    for column in pd.read_csv(StringIO(summary)).columns:
        assert f"`{column}`" in reference, f"summary: {column}"


def test_links_stay_inside_the_repository():
    for doc in DOCS:
        text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)  # code is not links
        assert "../shared" not in text and "CONTRACT.md" not in text, doc
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path = (doc.parent / target).resolve()
            assert path.is_relative_to(ROOT), (doc, target)
            assert path.exists(), (doc, target)


def test_the_layout_has_no_upward_arrow_and_the_readme_shows_it():
    """Lower rooms never import higher ones (scripts/layout.py reads the imports), and the README's
    picture is what the script draws today."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "layout.py")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for line in done.stdout.strip().splitlines():
        assert "    " + line in readme, f"README's layout lacks: {line}"
