"""The grid on many GPUs and machines: a layer above the DAG, not inside it.

Every (dataset, method, training seed) is one run: its train stage and its evaluate stage. A grid
1. reproduces the shared stages (validate, data, corrupt, diffusion) once;
2. runs the runs that DVC's run-cache does not hold yet, each in a workspace of its own with the
   repository's DVC cache shared, through an existing engine: DVC's experiment queue on one
   machine (`dvc exp run --queue`, `dvc queue start --jobs N`; each job leases a free GPU,
   mollify.device), submitit on a SLURM cluster (one job per run in a clone of the repository);
3. leaves the results in DVC's run-cache, so that `dvc repro` in the user's workspace restores
   every train and evaluate output and runs none of them.

A killed job loses at most an epoch: checkpoints live in one folder outside the job workspaces
($MOLLIFY_CHECKPOINTS, set to `<repository>/checkpoints`) and a relaunched job resumes from it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mollify import paths
from mollify.config import Params
from mollify.errors import MollifyError


@dataclass(frozen=True)
class Run:
    """One training run of the grid and the stages of dvc.yaml that make it."""

    dataset: str
    method: str
    diffaug: bool  # a `diffaug_methods` recipe: stages train_diffaug / evaluate_diffaug
    seed: int  # the training seed (an item of `seeds`)

    @property
    def key(self) -> str:
        """The stages' matrix key: `<dataset>-<method>-<seed>`."""
        return f"{self.dataset}-{self.method}-{self.seed}"

    @property
    def train_stage(self) -> str:
        return f"{'train_diffaug' if self.diffaug else 'train'}@{self.key}"

    @property
    def evaluate_stage(self) -> str:
        return f"{'evaluate_diffaug' if self.diffaug else 'evaluate'}@{self.key}"


def runs(cfg: Params) -> list[Run]:
    """Every run the params describe, in dvc.yaml's order."""
    return [Run(dataset, method, diffaug, seed)
            for diffaug, methods in ((False, cfg.methods), (True, cfg.diffaug_methods))
            for dataset in cfg.datasets for method in methods for seed in cfg.seeds]


def shared_stages(cfg: Params) -> list[str]:
    """The stages every run depends on: reproduced once, before the runs."""
    return ["validate", *(f"{stage}@{dataset}" for stage in ("data", "corrupt", "ood", "diffusion") for dataset in cfg.datasets)]


def checkpoint_root(repo: Path) -> Path:
    """Where the grid's jobs keep their checkpoints: one folder, outside the job workspaces."""
    return repo.resolve() / "checkpoints"


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with `extra` added and this Python's folder first on PATH, so
    that `dvc` and the `python` of a stage's command are this environment's."""
    return {**os.environ, **(extra or {}), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def dvc(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """`dvc <args>` in `subprocess_env(env)`."""
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True,
                            env=subprocess_env(env))
    if check and result.returncode != 0:
        raise MollifyError(f"`dvc {' '.join(args)}` failed in {cwd}:\n{result.stdout}{result.stderr}")
    return result


def stage_states(repo: Path, stages: Iterable[str]) -> dict[str, str]:
    """Each stage's state: "done" (up to date in the workspace), "cached" (DVC's run-cache holds
    a run with the workspace's dependencies: `dvc repro` restores it) or "to run"; a stage whose
    dependencies are not in the workspace yet (evaluate before its model) is "to run". Asked of
    DVC's Python API: `dvc repro --dry` does not hash the dependencies, so it never finds the run-cache."""
    from dvc.repo import Repo

    states = {}
    # from inside the repository: DVC resolves a stage's dependencies and params.yaml against the
    # working directory, so from elsewhere it would hash (and read) the wrong files
    with contextlib.chdir(repo), Repo(".") as dvc_repo, dvc_repo.lock:
        for name in stages:
            stage = dvc_repo.stage.collect(name)[0]
            try:
                if not stage.changed():
                    states[name] = "done"
                    continue
                stage.save_deps()  # hashes the dependencies (DVC's state database keeps them)
                states[name] = "cached" if dvc_repo.stage_cache._load(stage) else "to run"
            except Exception:  # a missing dependency: nothing to look up
                states[name] = "to run"
    return states


def pending(repo: Path, grid: list[Run]) -> list[Run]:
    """The runs whose training is neither in the workspace nor in the run-cache. (A run whose
    training is cached but whose evaluation is not is evaluated by the final `dvc repro`.)"""
    states = stage_states(repo, [run.train_stage for run in grid])
    return [run for run in grid if states[run.train_stage] == "to run"]


def prepare(repo: Path) -> None:
    """Reproduce the shared stages in the workspace (each run's job then finds them done)."""
    from mollify.config import load_params

    dvc("repro", *shared_stages(load_params(repo / "params.yaml")), cwd=repo)


def run_local(repo: Path, jobs: int, grid: list[Run], poll_s: float = 5.0) -> list[str]:
    """Run `grid` through DVC's experiment queue with `jobs` workers; wait for it; return the
    names of the experiments that failed. Each queued experiment is `dvc repro` of one run's
    evaluate stage (with its train stage) in a temporary workspace that shares the cache."""
    env = {paths.CHECKPOINTS_ENV: str(checkpoint_root(repo))}
    names = []
    for run in grid:
        name = f"grid-{run.key}-{int(time.time())}"
        dvc("exp", "run", "--queue", "--name", name, run.evaluate_stage, cwd=repo, env=env)
        names.append(name)
    dvc("queue", "start", "--jobs", str(jobs), cwd=repo, env=env)
    # wait for each experiment's own final state: under load the listing can miss a running task
    # for a while and show its worker as idle
    final: dict[str, str] = {}
    while len(final) < len(names):
        time.sleep(poll_s)
        status = dvc("queue", "status", cwd=repo).stdout
        for name in names:
            if match := re.search(rf"{re.escape(name)}\s.*\b(Success|Failed)\b", status):
                final[name] = match.group(1)
    dvc("queue", "stop", cwd=repo, check=False)
    return [name for name in names if final[name] == "Failed"]


def workspace_commit(repo: Path) -> str:
    """A commit of the workspace's tracked files as they are (`git stash create`, as DVC's queue
    does): the jobs' clones check it out. Untracked files are not in it."""
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        if result.returncode != 0:
            raise MollifyError(f"the grid needs the project in git: `git {' '.join(args)}` failed: {result.stderr.strip()}")
        return result.stdout.strip()

    return git("stash", "create") or git("rev-parse", "HEAD")


def reproduce(repo: str, commit: str, targets: list[str], scratch: str, remote: str | None = None) -> str:
    """One cluster job: clone `repo` at `commit` into `scratch`, share the repository's DVC cache
    (or pull the run-cache from `remote`), `dvc repro` the targets, push the run-cache to
    `remote`; prints and returns DVC's output (with the stages' logs). Runs on the worker node
    (submitit pickles it)."""
    root, work = Path(repo), Path(scratch)
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", str(root), str(work)], check=True)
    subprocess.run(["git", "checkout", "--quiet", "--detach", commit], cwd=work, check=True)
    env = {paths.CHECKPOINTS_ENV: str(checkpoint_root(root))}
    try:
        if remote is None:
            dvc("config", "--local", "cache.dir", str(root / ".dvc" / "cache"), cwd=work)
        else:
            dvc("pull", "--run-cache", "--remote", remote, *targets, cwd=work, env=env, check=False)  # what exists
        result = dvc("repro", *targets, cwd=work, env=env)
        output = result.stdout + result.stderr
        print(output, flush=True)
        if remote is not None:
            dvc("push", "--run-cache", "--remote", remote, *targets, cwd=work, env=env)
        return output
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_cluster(executor, repo: Path, grid: list[Run], scratch: Path, remote: str | None = None) -> list[tuple[Run, str]]:
    """Submit the shared stages as one job, then one job per run of `grid`, through a submitit
    executor (SLURM, or its local executor); wait; return the failed runs with their job's log."""
    repo = repo.resolve()
    commit = workspace_commit(repo)
    from mollify.config import load_params

    first = executor.submit(reproduce, str(repo), commit, shared_stages(load_params(repo / "params.yaml")),
                            str(scratch / "shared"), remote)
    first.result()  # raises with the job's log if the shared stages fail
    jobs = executor.map_array(reproduce, [str(repo)] * len(grid), [commit] * len(grid),
                              [[run.evaluate_stage] for run in grid], [str(scratch / run.key) for run in grid],
                              [remote] * len(grid))
    failed = []
    for run, job in zip(grid, jobs):
        try:
            job.result()
        except Exception as e:  # submitit re-raises the job's error with its traceback
            failed.append((run, f"{job.paths.stderr}: {str(e).strip().splitlines()[-1] if str(e).strip() else e}"))
    return failed


# train split sizes of the downloaded datasets (the demo's comes from its params)
TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "tinyimagenet": 100_000}


@dataclass(frozen=True)
class Network:
    """What a training step's time depends on: the network, its input and the rows per step."""

    model: str
    image_size: int
    num_classes: int
    rows: int  # images per forward pass: the batch, x2 with DiffAug's rows, x3 with AugMix's JSD views

    @property
    def key(self) -> str:
        return f"{self.model}/{self.image_size}px/{self.num_classes}classes/{self.rows}rows"


def network_of(cfg: Params, run: Run) -> Network:
    from mollify.data.datasets import DATASETS

    recipe = cfg.recipe(run.method)
    info = DATASETS[run.dataset]
    views = 1 + (1 if recipe.diffaug else 0) + (2 if recipe.augmix_jsd else 0)
    return Network(cfg.model_name(run.method, run.dataset), info.image_size, info.num_classes, cfg.train.batch_size * views)


def steps_of(cfg: Params, dataset: str) -> int:
    """Optimiser steps of one run (mollify.training.loop: per epoch n // batch, or ceil with drop_last off)."""
    n = cfg.data.demo.train_size if dataset == "demo" else TRAIN_IMAGES[dataset]
    batch = min(cfg.train.batch_size, n)
    return cfg.train.epochs * (n // batch if cfg.train.drop_last else -(-n // batch))


def step_seconds(network: Network, device, steps: int = 3, rows: int | None = None) -> float:
    """Median seconds of a full SGD step (forward, backward, update) of `network` on random
    images on `device`, after one warm-up step; bf16 autocast on CUDA, as training. With `rows`,
    a step of that many images is timed and scaled linearly to the network's rows (fair on a
    CPU; on a GPU, whose small batches underuse it, an upper bound)."""
    measured = rows or network.rows
    import statistics

    import torch

    from mollify.device import autocast
    from mollify.models import create_model

    model = create_model(network.model, network.num_classes).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(measured, 3, network.image_size, network.image_size, device=device)
    y = torch.randint(0, network.num_classes, (measured,), device=device)
    times = []
    for _ in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with autocast(device, "auto"):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) * network.rows / measured


def plan(cfg: Params, states: dict[str, str], seconds: dict[str, float]) -> list[dict[str, object]]:
    """One row per (dataset, method): runs, their train stages' states, network, steps and
    estimated device-hours (steps x the network's measured step time, `seconds` by Network.key)."""
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for run in runs(cfg):
        network = network_of(cfg, run)
        row = rows.setdefault((run.dataset, run.method), {
            "dataset": run.dataset, "method": run.method, "network": network.key, "runs": 0, "done": 0,
            "to_run": 0, "steps": steps_of(cfg, run.dataset), "s_per_step": seconds[network.key], "hours_to_run": 0.0,
        })
        row["runs"] += 1
        if states.get(run.train_stage, "to run") == "to run":
            row["to_run"] += 1
            row["hours_to_run"] += row["steps"] * row["s_per_step"] / 3600
        else:
            row["done"] += 1
    return list(rows.values())
