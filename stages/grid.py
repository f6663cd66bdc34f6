"""The grid on many GPUs or a SLURM cluster (not a stage of dvc.yaml: it runs the stages).

    python stages/grid.py plan [-S profile=paper]     what would run, what is cached, device-hours
    python stages/grid.py local --jobs 8               DVC's experiment queue, one GPU per job
    python stages/grid.py slurm --partition gpu ...    submitit: one SLURM job per run
    python stages/grid.py collect                      `dvc repro` here: restores every finished run
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer
import yaml

from mollify import grid
from mollify.cli import run
from mollify.config import load_params, parse_params
from mollify.errors import MollifyError
from mollify.io import save_json

app = typer.Typer(add_completion=False, no_args_is_help=True)
REPO = typer.Option(Path("."), help="the project's root (a git + DVC repository)")
SET = typer.Option([], "--set-param", "-S", help="compose params.yaml from conf/ with these overrides first, as `dvc exp run -S`")


def _compose(repo: Path, overrides: list[str], out: Path) -> None:
    """params.yaml composed from conf/ with `overrides`, as `dvc exp run -S` does (and checked)."""
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(out, str((repo / "conf").resolve()), None, "config", str(repo.resolve()), overrides)


@app.command()
def plan(
    repo: Path = REPO,
    set_param: list[str] = SET,
    step_times: Path = typer.Option(Path("benchmarks/step_times.json"), help="measured step times (read, completed, written back)"),
    steps: int = typer.Option(3, help="steps measured per network not in --step-times (after one warm-up step)"),
    device: str = typer.Option("auto", help="the device to measure on: auto, cpu, cuda"),
    measure_rows: Optional[int] = typer.Option(None, help="time steps of this many images, scaled linearly to the "
                                               "network's rows (quick on a CPU; default: the full batch)"),
) -> None:
    """Show the runs of the grid, which are done or in DVC's run-cache, and the device-hours of the rest."""
    from mollify.device import resolve_device

    params_file = repo / "params.yaml"
    if set_param:
        with tempfile.TemporaryDirectory() as tmp:
            _compose(repo, set_param, Path(tmp) / "params.yaml")
            composed = yaml.safe_load((Path(tmp) / "params.yaml").read_text())
        cfg = parse_params(composed)
        consult_dvc = composed == yaml.safe_load(params_file.read_text())
    else:
        cfg, consult_dvc = load_params(params_file), True
    runs = grid.runs(cfg)
    states = grid.stage_states(repo, [r.train_stage for r in runs]) if consult_dvc else {}
    dev = resolve_device(device)
    label = f"{dev.type}:{__import__('torch').cuda.get_device_name(dev)}" if dev.type == "cuda" else "cpu"
    stored = json.loads(step_times.read_text()) if step_times.is_file() else {}
    seconds = stored.setdefault(label, {})
    for network in {grid.network_of(cfg, r) for r in runs}:
        if network.key not in seconds:
            typer.echo(f"measuring {network.key} on {label} ...", err=True)
            seconds[network.key] = grid.step_seconds(network, dev, steps, measure_rows)
    save_json(step_times, stored)
    rows = grid.plan(cfg, states, seconds)
    typer.echo(f"{'dataset':<13} {'method':<22} {'network':<44} runs done steps  s/step  hours to run")
    for row in rows:
        typer.echo(f"{row['dataset']:<13} {row['method']:<22} {row['network']:<44} {row['runs']:>4} {row['done']:>4} "
                   f"{row['steps']:>6} {row['s_per_step']:>7.3f} {row['hours_to_run']:>12.1f}")
    total = sum(r["runs"] for r in rows)
    done = sum(r["done"] for r in rows)
    hours = sum(r["hours_to_run"] for r in rows)
    typer.echo(f"{total} runs: {done} done or in DVC's run-cache, {total - done} to run: {hours:.1f} {label} device-hours "
               f"(training steps at the measured step times; evaluation and the shared stages not counted)")
    if not consult_dvc:
        typer.echo("(params.yaml is not this composition: DVC was not asked which runs are done)")


def _start(repo: Path, set_param: list[str]) -> list[grid.Run]:
    """Compose params.yaml if asked, reproduce the shared stages, and return the pending runs."""
    if set_param:
        _compose(repo, set_param, repo / "params.yaml")
    runs = grid.runs(load_params(repo / "params.yaml"))
    grid.prepare(repo)
    todo = grid.pending(repo, runs)
    typer.echo(f"{len(runs)} runs: {len(runs) - len(todo)} done or cached, {len(todo)} to run")
    return todo


@app.command()
def local(
    jobs: int = typer.Option(..., help="parallel jobs: the number of GPUs (each job leases a free one)"),
    repo: Path = REPO,
    set_param: list[str] = SET,
) -> None:
    """Run the grid on this machine through DVC's experiment queue, then restore it here."""
    started = time.perf_counter()
    todo = _start(repo, set_param)
    queued = time.perf_counter()
    failed = grid.run_local(repo, jobs, todo) if todo else []
    typer.echo(f"grid time: shared stages {queued - started:.1f} s, the queue ({len(todo)} runs, {jobs} workers) "
               f"{time.perf_counter() - queued:.1f} s", err=True)
    _finish(repo, [f"experiment {name}: `dvc queue logs {name}`" for name in failed])


@app.command()
def slurm(
    repo: Path = REPO,
    set_param: list[str] = SET,
    folder: Path = typer.Option(Path("logs/grid"), help="submitit's folder: job scripts and logs (shared storage)"),
    scratch: Path = typer.Option(Path("logs/grid/workspaces"), help="where each job clones the project (shared or node-local)"),
    partition: Optional[str] = typer.Option(None, help="SLURM partition"),
    gpus_per_job: int = typer.Option(1, help="GPUs per job (more: torchrun inside the job is not wired here)"),
    cpus_per_job: int = typer.Option(8),
    hours: float = typer.Option(24.0, help="time limit of a job; a job past it is resumed by the next launch"),
    parallel: int = typer.Option(64, help="at most this many jobs at once (SLURM array parallelism)"),
    remote: Optional[str] = typer.Option(None, help="a DVC remote that carries the run-cache instead of a shared cache"),
    executor: str = typer.Option("slurm", help="slurm, or local (submitit's local executor: a test on one machine)"),
) -> None:
    """Run the grid on a SLURM cluster through submitit (one job per run), then restore it here."""
    import submitit

    todo = _start(repo, set_param)
    ex = submitit.AutoExecutor(folder=folder, cluster=executor)
    ex.update_parameters(timeout_min=int(hours * 60), gpus_per_node=gpus_per_job, cpus_per_task=cpus_per_job,
                         slurm_partition=partition, slurm_array_parallelism=parallel, name="mollify-grid")
    failed = grid.run_cluster(ex, repo, todo, scratch.resolve(), remote) if todo else []
    if remote is not None:
        grid.dvc("pull", "--run-cache", "--remote", remote, cwd=repo, check=False)
    _finish(repo, [f"{r.key}: {log}" for r, log in failed])


def _finish(repo: Path, failed: list[str]) -> None:
    if failed:
        raise MollifyError(f"{len(failed)} runs failed (the others are in DVC's run-cache; relaunch to finish, "
                           "killed runs resume from their checkpoints):\n  " + "\n  ".join(failed))
    collect(repo)


@app.command()
def collect(repo: Path = REPO) -> None:
    """`dvc repro` here: every finished run is restored from DVC's run-cache, not run again."""
    started = time.perf_counter()
    output = grid.dvc("repro", cwd=repo).stdout
    typer.echo(output)
    typer.echo(f"grid time: collect (dvc repro) {time.perf_counter() - started:.1f} s", err=True)


if __name__ == "__main__":
    run(app)
