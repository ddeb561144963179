"""The `nnlab` command line: a thin typer layer over the library."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

import nnlab
from nnlab import tasks

app = typer.Typer(
    help="nnlab: optimization studies of feedforward networks trained with SGD.", no_args_is_help=True
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


@app.command()
def demo(
    seeds: Annotated[int, typer.Option(min=1, max=4096, help="Seeds (replicas) per network.")] = 32,
    epochs: Annotated[int, typer.Option(min=1, max=100_000, help="Epochs of per-sample SGD.")] = 400,
    lr: Annotated[float, typer.Option(min=1e-12, help="Learning rate.")] = 0.1,
    threshold: Annotated[float, typer.Option(min=0.0, help="A run is solved below this loss.")] = 1e-3,
) -> None:
    """Train the seed's tanh chain and XOR networks of growing width; print their loss curves."""
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
