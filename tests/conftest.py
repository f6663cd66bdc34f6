from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.overrides import TorchFunctionMode

from mollify import grid
from mollify.cli import run

ROOT = Path(__file__).resolve().parents[1]
# the files whose tests run whole DVC pipelines: first, so that with several pytest-xdist workers
# (pyproject's addopts) each starts on one of them and no worker is left alone with one at the end
LONGEST_FIRST = ("test_pipeline.py", "test_bad_inputs.py", "test_profile_runs.py", "test_grid_runs.py")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # each worker (and the stage processes it starts) gets its share of the cores as torch threads:
    # with all of them each, the workers' spinning threads oversubscribe the cores (on 2 cores and 2
    # workers, a test of a second alone takes 15). torch is imported already: set its pool too
    os.environ.setdefault("OMP_NUM_THREADS",
                          str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """No workers under mutmut (benchmarks/mutation.py): it runs pytest in its own process, where
    it maps tests to the functions they call; elsewhere xdist's default (one worker a core)."""
    return 0 if "MUTANT_UNDER_TEST" in os.environ else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The whole-pipeline test files first (a stable sort: the order within and among the rest is kept)."""
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)


def default_params(*overrides: str) -> dict:
    """The params Hydra composes from conf/ (what the committed params.yaml holds), with `overrides`
    as `dvc exp run -S` gives them: never the working copy's params.yaml, which experiments change."""
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        return OmegaConf.to_container(compose(config_name="config", overrides=list(overrides)))


def tiny_params(**overrides: object) -> dict:
    """The default params shrunk to seconds of CPU work (the smoke-test override)."""
    params = default_params()
    params["seeds"] = [0]
    params["methods"] = ["baseline", "trivaug_mollify"]
    params["diffaug_methods"] = ["diffaug"]
    params["diffusion"].update({"steps": 4, "batch_size": 16, "eval_every": 2, "eval_images": 16})
    params["evaluate"]["diffaug_ensemble"].update({"step": 150, "corrupted_images": 8, "entropy_step": 250, "entropy_images": 16})
    params["data"]["demo"] = {"train_size": 256, "test_size": 64}
    params["corrupt"]["max_images"] = None
    params["corrupt"]["severities"] = [1, 3, 5]
    params["train"].update({"epochs": 2, "batch_size": 64, "warmup_epochs": 0})
    params["evaluate"]["batch_size"] = 64
    for sweep in ("occlusion", "crop", "white_noise", "salt_pepper"):
        params["evaluate"][sweep].update({"images": 16, "levels": params["evaluate"][sweep]["levels"][:3]})
    params["evaluate"]["ood"]["images"] = 16
    params["evaluate"]["certify"].update({"every": 32, "n0": 4, "n": 20, "batch_size": 16})
    for key, value in overrides.items():
        section, _, leaf = key.rpartition(".")
        target = params
        for part in filter(None, section.split(".")):
            target = target[part]
        target[leaf] = value
    return params


class DefaultDeviceWatch(TorchFunctionMode):
    """Within `with`, records (module, line, function) of every tensor factory that mollify's code calls
    without `device=`, and every `tensor.to(None, ...)`: on CUDA such a tensor would land on torch's default
    device, the CPU, beside data on the GPU. On the CPU the suite runs on, only this shows it."""

    FACTORIES = {torch.zeros, torch.ones, torch.full, torch.empty, torch.rand, torch.randn, torch.randint,
                 torch.randperm, torch.arange, torch.tensor, torch.linspace}

    def __init__(self) -> None:
        super().__init__()
        self.unplaced: list[tuple[str, int, str]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (func in self.FACTORIES and kwargs.get("device") is None) or (
                func is torch.Tensor.to and len(args) >= 2 and args[1] is None):
            caller = sys._getframe(1)  # the Python frame that called the torch function
            if caller.f_globals.get("__name__", "").startswith("mollify."):
                self.unplaced.append((caller.f_globals["__name__"], caller.f_lineno, func.__name__))
        return func(*args, **kwargs)


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch):
    """rich's global console, recorded: what a progress bar leaves on a terminal-less output (`export_text`)."""
    import io

    import rich
    from rich.console import Console

    recorded = Console(file=io.StringIO(), width=200, record=True)
    monkeypatch.setattr(rich, "_console", recorded)
    return recorded


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch copy of the pipeline (stages, library, conf, dvc.yaml) to run stages in."""
    for name in ("stages", "src", "conf"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "uv.lock"):  # uv.lock: a dependency of the plots_page stage
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_stage(stage: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a stage CLI as DVC does: a fresh process in `cwd`."""
    result = subprocess.run([sys.executable, f"stages/{stage}.py", *args], cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"stage {stage} failed:\n{result.stdout}\n{result.stderr}")
    return result


def call_stage(stage: str, *args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run a stage CLI in this process (same code path as `python stages/<stage>.py`, without the
    seconds a new process spends importing torch); returns the exit code."""
    spec = importlib.util.spec_from_file_location(f"stage_{stage}", Path("stages") / f"{stage}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [f"stages/{stage}.py", *args])
    try:
        run(module.app)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def dvc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run DVC in `cwd` with this environment's Python first on PATH (the stages' `python`) and
    the variables `env` added."""
    result = grid.dvc(*args, cwd=cwd, env=env, check=False)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def init_dvc(workdir: Path) -> None:
    """A DVC project without git in `workdir`, with the repository's plot templates."""
    dvc("init", "--no-scm", "-q", cwd=workdir)
    dvc("config", "core.analytics", "false", cwd=workdir)
    shutil.copytree(ROOT / ".dvc" / "plots", workdir / ".dvc" / "plots")


def git_dvc_workspace(ws: Path, params: dict) -> Path:
    """A scratch copy of the project in `ws` as a user has it: git (one commit) + DVC, with `params`
    both in params.yaml and as conf/config.yaml (what `dvc exp run` composes)."""
    for name in ("stages", "src", "conf", "hydra_plugins"):
        shutil.copytree(ROOT / name, ws / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "uv.lock", ".gitignore"):
        shutil.copy(ROOT / name, ws / name)
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    (ws / "conf/config.yaml").write_text(yaml.safe_dump({"defaults": ["_self_", {"profile": None}], **params}))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=ws, check=True)
    dvc("init", "-q", cwd=ws)
    dvc("config", "core.analytics", "false", cwd=ws)
    shutil.copytree(ROOT / ".dvc" / "plots", ws / ".dvc" / "plots")
    for args in (["add", "-A"], ["commit", "-qm", "project"]):
        subprocess.run([*git, *args], cwd=ws, check=True, capture_output=True)
    return ws
