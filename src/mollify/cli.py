"""What every stage CLI shares: one clear message instead of a traceback for bad input."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from mollify.errors import MollifyError


log = logging.getLogger("mollify")


def run(app: typer.Typer) -> None:
    """Run a Typer app; a MollifyError prints `error: <what is wrong and how to fix it>`, exit 2.
    The library's log lines (resumed or ignored checkpoints, epochs without a terminal) go to stderr,
    and last the stage's wall time with its start-up part (interpreter and imports), which
    benchmarks/stage_times.py collects from a `dvc repro` log."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    start_up = seconds_since_process_start()
    started = time.perf_counter()
    try:
        app()
    except MollifyError as e:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/bold red] {e}")
        sys.exit(2)
    finally:
        if start_up is not None:
            log.info("stage time: %s: %.1f s (start-up and imports %.1f s)", " ".join([Path(sys.argv[0]).stem, *sys.argv[1:]]),
                     start_up + time.perf_counter() - started, start_up)


def seconds_since_process_start() -> float | None:
    """Wall seconds since this process started, from Linux's /proc (None where there is none)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def interactive() -> bool:
    """Rich progress bars on a terminal; otherwise (a DVC or cluster log) a line per epoch."""
    return Console().is_terminal


# the options the stage CLIs share
DATASET = typer.Option(..., help="demo, cifar10, cifar100 or tinyimagenet (made by the data stage)")
METHOD = typer.Option(..., help="a recipe name: a key of `recipes` in params.yaml")
SEED = typer.Option(0, min=0, help="training seed of the run (an item of `seeds` in params.yaml)")
PARAMS = typer.Option("params.yaml", help="the params file")
