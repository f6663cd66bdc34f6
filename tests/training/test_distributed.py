"""DDP under torchrun with 2 gloo processes on CPU against one process with the same global batch."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from mollify import paths
from mollify.data import load_split, prepare_dataset
from mollify.device import Normalize
from mollify.evaluation.predict import predict_probs
from mollify.artifacts import load_model
from tests.conftest import ROOT, tiny_params

EPOCHS = 4


def _launch(workdir, out, processes: int, checkpoints) -> dict:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    env = {**os.environ, paths.CHECKPOINTS_ENV: str(checkpoints), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([*(launcher if processes > 1 else [sys.executable]), str(ROOT / "tests/ddp_worker.py"), str(out)],
                            cwd=workdir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The worker run once with 2 processes and once with 1, on the same demo data and params."""
    workdir = tmp_path_factory.mktemp("ddp")
    params = tiny_params(**{"data.demo": {"train_size": 256, "test_size": 32}, "train.epochs": EPOCHS,
                            "train.batch_size": 32, "train.lr": 0.05})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    prepare_dataset("demo", workdir / paths.clean_dir("demo"), download_dir=workdir, demo_train_size=256, demo_test_size=32)
    one = _launch(workdir, workdir / "one.json", 1, workdir / "ckpt-one")
    model_one = (workdir / paths.model_file("demo", "baseline")).read_bytes()
    two = _launch(workdir, workdir / "two.json", 2, workdir / "ckpt-two")
    return workdir, one, two, model_one


def test_ddp_takes_the_steps_of_one_process_with_the_same_global_batch(runs):
    _, one, two, _ = runs
    assert one["steps"] == two["steps"] == {"linear": 3 * 96 // 32, "stage": EPOCHS * 256 // 32}
    assert [h["lr"] for h in two["history"]] == [h["lr"] for h in one["history"]]


def test_ddp_update_equals_the_one_process_update_of_the_whole_batch(runs):
    """A linear model without augmentation or BatchNorm: the mean of the two ranks' gradients of
    their 16-image halves is the gradient of the 32-image batch, so the weights agree up to float
    summation order."""
    _, one, two, _ = runs
    for a, b in zip(one["linear_weights"], two["linear_weights"]):
        torch.testing.assert_close(torch.tensor(b), torch.tensor(a), atol=1e-5, rtol=1e-5)
    assert [h["train_loss"] for h in two["linear_history"]] == pytest.approx([h["train_loss"] for h in one["linear_history"]], rel=1e-5)


def test_ddp_loss_curve_follows_the_one_process_curve(runs):
    """With augmentation and BatchNorm the runs differ by design: each rank draws its own
    augmentations and BatchNorm normalises by the statistics of 16 images instead of 32, so the
    two are samples of the same training process, not the same numbers. The per-epoch mean loss
    agrees within 5% (measured: 0.5-1.7% apart over 4 epochs falling from 2.40 to 2.15, while an
    epoch's step moves it by up to 5%: a curve of another process would not pass)."""
    _, one, two, _ = runs
    curve_one, curve_two = ([h["train_loss"] for h in run["history"]] for run in (one, two))
    assert curve_two == pytest.approx(curve_one, rel=0.05)
    assert curve_two[-1] < curve_two[0]  # it learns


def test_the_ddp_checkpoint_loads_in_one_process(runs, monkeypatch):
    workdir, _, _, model_one = runs
    monkeypatch.chdir(workdir)
    model = load_model("demo", "baseline", torch.device("cpu"))  # rank 0's weights, no DDP `module.` prefix
    x, y = load_split(paths.clean_dir("demo"), "test")
    probs = predict_probs(model, x, Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu")), torch.device("cpu"), 32, "fp32", 1)
    assert probs.shape == (32, 10) and torch.allclose(probs.sum(1), torch.ones(32, dtype=probs.dtype))
    assert (workdir / paths.model_file("demo", "baseline")).read_bytes() != model_one  # written by the DDP run


@pytest.mark.grid
def test_a_ddp_run_resumes_from_its_checkpoint(runs):
    """The checkpoint made to look as if the run had been killed after epoch 2 of 4 (as
    tests/training/test_train_log.py does): both ranks resume from it and take only the last 2 epochs' steps."""
    workdir, _, two, _ = runs
    checkpoint = workdir / "ckpt-two" / "demo" / "baseline" / "seed0.pt"
    state = torch.load(checkpoint, weights_only=True)
    torch.save({**state, "epoch": 2, "history": state["history"][:2]}, checkpoint)
    resumed = _launch(workdir, workdir / "resumed.json", 2, workdir / "ckpt-two")
    assert resumed["steps"]["stage"] == (EPOCHS - 2) * 256 // 32
    assert [h["epoch"] for h in resumed["history"]] == list(range(1, EPOCHS + 1))
    assert resumed["history"][:2] == two["history"][:2]
