"""What every stage CLI shares: one clear message instead of a traceback for bad input."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from mollify.errors import MollifyError


def run(app: typer.Typer) -> None:
    """Run a Typer app; a MollifyError prints `error: <what is wrong and how to fix it>`, exit 2.
    The library's log lines (resumed or ignored checkpoints, epochs without a terminal) go to stderr."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        app()
    except MollifyError as e:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/bold red] {e}")
        sys.exit(2)


def interactive() -> bool:
    """Rich progress bars on a terminal; otherwise (a DVC or cluster log) a line per epoch."""
    return Console().is_terminal


# the options the stage CLIs share
DATASET = typer.Option(..., help="demo, cifar10, cifar100 or tinyimagenet (made by the data stage)")
METHOD = typer.Option(..., help="a recipe name: a key of `recipes` in params.yaml")
PARAMS = typer.Option("params.yaml", help="the params file")
