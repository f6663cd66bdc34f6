"""What every stage CLI shares: one clear message instead of a traceback for bad input."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path

import typer
from rich.console import Console

from mollify.errors import MollifyError


log = logging.getLogger("mollify")


def run(app: typer.Typer) -> None:
    """Run a Typer app; a MollifyError prints `error: <what is wrong and how to fix it>`, exit 2
    (under DVC, and after any other failure's traceback there, how to get the previous results back).
    The library's log lines (resumed or ignored checkpoints, epochs without a terminal) go to stderr,
    and last the stage's wall time with its start-up part (interpreter and imports), which
    benchmarks/stage_times.py collects from a `dvc repro` log."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    start_up = seconds_since_process_start()
    started = time.perf_counter()
    try:
        app()
    except MollifyError as e:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/bold red] {e}{recovery_hint()}")
        sys.exit(2)
    except Exception:  # a failure nobody foresaw: its traceback, then how to get the previous results back
        if not recovery_hint():
            raise
        traceback.print_exc()
        print(recovery_hint().lstrip("\n"), file=sys.stderr)
        sys.exit(1)
    except SystemExit as done:  # Typer's way to return; a failed stage prints only its error
        asked_for_help = any(arg in ("--help", "-h") for arg in sys.argv[1:])
        if done.code in (0, None) and start_up is not None and not asked_for_help:
            log.info("stage time: %s: %.1f s (start-up and imports %.1f s)", " ".join([Path(sys.argv[0]).stem, *sys.argv[1:]]),
                     start_up + time.perf_counter() - started, start_up)
        raise


# DVC removes a stage's outputs before it runs the stage; `validate` removes none (its outputs persist)
RECOVERY = ("\nDVC removed the previous outputs of stage {stage} before running it: `git checkout -- . && uv run dvc "
            "checkout` brings back the last committed results (`git stash` first keeps your uncommitted edits). To try "
            "a variant without touching the workspace, run it with `uv run dvc exp run --temp -S ...` (or `--queue`, "
            "then `uv run dvc queue start`).")


def recovery_hint() -> str:
    """For a stage that fails under `dvc repro` / `dvc exp run` in the workspace: how to get the
    previous results back (empty outside DVC, for `validate`, and in an experiment's temporary copy)."""
    stage = os.environ.get("DVC_STAGE")
    # `dvc exp run --temp` and queued runs work in a copy under .dvc/tmp/exps/ (DVC_ROOT names the workspace)
    if not stage or stage == "validate" or "/.dvc/tmp/exps/" in f"{Path.cwd().as_posix()}/":
        return ""
    return RECOVERY.format(stage=stage)


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
DATASET = typer.Option(..., help="an item of `datasets` in params.yaml (demo, cifar10, cifar100 or tinyimagenet), "
                       "made by the data stage")
DATA_DATASET = typer.Option(..., help="the dataset to make, an item of `datasets` in params.yaml: demo (generated), "
                            "cifar10, cifar100 or tinyimagenet (downloaded)")
METHOD = typer.Option(..., help="a recipe name listed in `methods` or `diffaug_methods` of params.yaml")
SEED = typer.Option(0, min=0, help="training seed of the run (an item of `seeds` in params.yaml)")
PARAMS = typer.Option("params.yaml", help="the params file")
