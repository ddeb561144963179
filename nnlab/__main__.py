"""`python -m nnlab`: the command line."""

from nnlab.cli import app

app(prog_name="nnlab")
