"""The grid end to end (slow): two local workers through DVC's queue against a sequential
`dvc repro` of the same params; the cluster path through submitit's local executor, with a job
killed mid-training and the grid relaunched."""

import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from mollify import grid
from mollify.config import load_params
from tests.conftest import dvc, git_dvc_workspace, tiny_params

pytestmark = pytest.mark.grid


def _stages_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]


def test_two_local_workers_give_the_metrics_of_a_sequential_repro(tmp_path):
    params = tiny_params()
    methods = params["methods"] + params["diffaug_methods"]
    parallel, sequential = (git_dvc_workspace(tmp_path / name, params) for name in ("grid", "sequential"))
    env = grid.subprocess_env()
    result = subprocess.run([sys.executable, "stages/grid.py", "local", "--jobs", "2"], cwd=parallel, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = result.stdout  # the final `dvc repro` in the workspace: restores, runs no train or evaluate
    assert not [s for s in _stages_run(collected) if s.startswith(("train", "evaluate"))], collected
    for run in grid.runs(load_params(parallel / "params.yaml")):
        for stage in (run.train_stage, run.evaluate_stage):
            assert f"Stage '{stage}' is cached - skipping run, checking out outputs" in collected
    dvc("repro", cwd=sequential)
    for method in methods:
        for path in (f"metrics/demo/{method}.json", f"plots/methods/demo/{method}/summary.json",
                     f"plots/runs/demo/{method}/seed0/summary.json"):
            assert (parallel / path).read_text() == (sequential / path).read_text(), path
    assert "up to date" in dvc("repro", cwd=parallel)


def test_cluster_path_resumes_a_killed_job_and_redoes_no_finished_run(tmp_path):
    import submitit

    epochs = 12  # a wide window for the kill, after the first checkpoint
    ws = git_dvc_workspace(tmp_path / "ws", tiny_params(**{"methods": ["baseline", "trivaug"], "diffaug_methods": [],
                                                           "train.epochs": epochs}))
    grid.prepare(ws)
    executor = submitit.LocalExecutor(folder=tmp_path / "jobs")
    executor.update_parameters(timeout_min=60)
    commit = grid.workspace_commit(ws)
    finished = executor.submit(grid.reproduce, str(ws), commit, ["evaluate@demo-baseline-0"], str(tmp_path / "a"))
    killed = executor.submit(grid.reproduce, str(ws), commit, ["evaluate@demo-trivaug-0"], str(tmp_path / "b"))
    checkpoint = grid.checkpoint_root(ws) / "demo" / "trivaug" / "seed0.pt"
    deadline = time.time() + 900
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.2)
    job = psutil.Process(killed._process.pid)  # the whole job, as a lost node: controller, DVC, the stage
    for process in [job, *job.children(recursive=True)]:
        process.send_signal(signal.SIGKILL)
    killed._process.wait()
    finished.result()
    stopped_at = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= stopped_at < epochs, "the job should be killed mid-training"

    runs = grid.runs(load_params(ws / "params.yaml"))
    todo = grid.pending(ws, runs)
    assert [run.key for run in todo] == ["demo-trivaug-0"]  # the finished run is in the run-cache
    assert grid.run_cluster(executor, ws, todo, tmp_path / "scratch") == []
    logs = "".join(p.read_text() for p in (tmp_path / "jobs").glob("*_log.out"))
    assert f"resumed from epoch {stopped_at} of {checkpoint}" in logs
    collected = dvc("repro", cwd=ws)
    assert not [s for s in _stages_run(collected) if s.startswith(("train", "evaluate"))], collected
    assert "Stage 'train@demo-trivaug-0' is cached" in collected and "Stage 'evaluate@demo-baseline-0' is cached" in collected


def _slurm_up() -> bool:
    try:
        return subprocess.run(["sinfo", "--noheader"], capture_output=True, text=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _slurm_up(), reason="no SLURM cluster answers (sh tests/slurm/single_node.sh stands one up)")
def test_grid_on_a_real_single_node_slurm(tmp_path):
    ws = git_dvc_workspace(tmp_path / "ws", tiny_params(**{"methods": ["baseline"], "diffaug_methods": []}))
    env = grid.subprocess_env()
    result = subprocess.run([sys.executable, "stages/grid.py", "slurm", "--folder", str(tmp_path / "jobs"),
                             "--scratch", str(tmp_path / "scratch"), "--gpus-per-job", "0", "--cpus-per-job", "1",
                             "--hours", "1"], cwd=ws, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [s for s in _stages_run(result.stdout) if s.startswith(("train", "evaluate"))], result.stdout
    assert "Stage 'train@demo-baseline-0' is cached" in result.stdout
    assert list((tmp_path / "jobs").glob("*_log.out"))  # sbatch's logs
