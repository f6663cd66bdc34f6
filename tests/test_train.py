"""Learning-rate schedule, determinism, and kill-and-resume of the train stage."""

import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from mollify.train import learning_rate
from mollify import paths
from mollify.config import parse_params
from mollify.data import prepare_dataset
from mollify.experiment import train_method
from tests.conftest import tiny_params


def test_learning_rate_warmup_then_cosine():
    assert learning_rate(0, 100, 10, 0.1) == pytest.approx(0.01)
    assert learning_rate(9, 100, 10, 0.1) == pytest.approx(0.1)
    assert learning_rate(10, 100, 10, 0.1) == pytest.approx(0.1)
    assert learning_rate(55, 100, 10, 0.1) == pytest.approx(0.05)
    assert learning_rate(99, 100, 0, 0.1) == pytest.approx(0.1 * 0.5 * (1 + math.cos(0.99 * math.pi)))


def _weights(method="baseline"):
    return torch.load(paths.model_file("demo", method), weights_only=True)["state_dict"]


def _prepare(workdir, epochs):
    params = tiny_params(**{"data.demo": {"train_size": 640, "test_size": 32}, "train.epochs": epochs, "train.batch_size": 64})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = parse_params(params)
    prepare_dataset("demo", paths.clean_dir("demo"), download_dir=workdir, demo_train_size=640, demo_test_size=32)
    return cfg


def test_killed_training_resumes_to_the_same_weights(workdir):
    epochs = 6
    cfg = _prepare(workdir, epochs)
    train_method(cfg, "demo", "trivaug", show_progress=False)
    uninterrupted = _weights("trivaug")
    for path in (workdir / "data/demo").glob("*/trivaug.pt"):
        path.unlink()

    checkpoint = paths.checkpoint_file("demo", "trivaug")
    proc = subprocess.Popen([sys.executable, "stages/train.py", "--dataset", "demo", "--method", "trivaug"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stopped_at = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= stopped_at < epochs, "the run should be killed mid-training"
    assert not paths.model_file("demo", "trivaug").exists()

    history = train_method(cfg, "demo", "trivaug", show_progress=False)  # the re-run resumes
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    resumed = _weights("trivaug")
    assert resumed.keys() == uninterrupted.keys()
    for key in uninterrupted:
        assert torch.equal(resumed[key], uninterrupted[key]), key


def test_checkpoint_of_other_settings_is_not_resumed(workdir):
    cfg = _prepare(workdir, 1)
    train_method(cfg, "demo", "baseline", show_progress=False)
    first = _weights()
    cfg2 = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 2})})
    history = train_method(cfg2, "demo", "baseline", show_progress=False)
    assert [h["epoch"] for h in history] == [1, 2]  # from scratch: the 1-epoch checkpoint is another run
    assert not all(torch.equal(first[k], v) for k, v in _weights().items())


def test_same_seed_same_weights(workdir):
    cfg = _prepare(workdir, 1)
    train_method(cfg, "demo", "baseline", show_progress=False)
    first = _weights()
    paths.checkpoint_file("demo", "baseline").unlink()
    train_method(cfg, "demo", "baseline", show_progress=False)
    assert all(torch.equal(first[k], v) for k, v in _weights().items())
