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
from torch.optim.optimizer import register_optimizer_step_pre_hook

from mollify.train import TrainSettings, learning_rate, train
from mollify import paths
from mollify.augment import BatchRecipe
from mollify.device import Normalize
from mollify.errors import MollifyError
from mollify.losses import soft_cross_entropy
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


def _run_schedule(schedule_unit: str, drop_last: bool, epochs: int = 4) -> tuple[list[int], list[float]]:
    """Batch sizes and learning rates of every optimiser step of a run on 10 images in batches of 4."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 10))
    sizes, lrs = [], []
    model.register_forward_pre_hook(lambda m, args: sizes.append(len(args[0])))
    hook = register_optimizer_step_pre_hook(lambda opt, *_: lrs.append(opt.param_groups[0]["lr"]))
    settings = TrainSettings(epochs=epochs, batch_size=4, lr=0.1, momentum=0.9, nesterov=False, weight_decay=5e-4,
                             warmup_epochs=0, seed=0, schedule_unit=schedule_unit, drop_last=drop_last)
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    try:
        history = train(model, images, torch.arange(10), lambda x, g: x, Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu")),
                        BatchRecipe(10), soft_cross_entropy, settings, show_progress=False)
    finally:
        hook.remove()
    assert [row["lr"] for row in history] == lrs[len(lrs) // epochs - 1 :: len(lrs) // epochs]
    return sizes, lrs


def test_per_epoch_cosine_is_torchs_cosine_annealing_lr_stepped_each_epoch():
    sizes, lrs = _run_schedule("epoch", drop_last=False)
    assert sizes == [4, 4, 2] * 4  # the last partial batch kept: 3 steps per epoch
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)  # the reference's, stepped per epoch
    expected = []
    for _ in range(4):
        expected += [optimizer.param_groups[0]["lr"]] * 3
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert lrs[::3] == pytest.approx([0.1, 0.05 * (1 + math.cos(math.pi / 4)), 0.05, 0.05 * (1 - math.cos(math.pi / 4))])


@pytest.mark.parametrize(("drop_last", "sizes_per_epoch"), [(True, [4, 4]), (False, [4, 4, 2])])
def test_per_step_cosine_over_the_steps_with_and_without_the_last_partial_batch(drop_last, sizes_per_epoch):
    sizes, lrs = _run_schedule("step", drop_last)
    steps = len(sizes_per_epoch) * 4
    assert sizes == sizes_per_epoch * 4
    assert lrs == pytest.approx([0.05 * (1 + math.cos(math.pi * i / steps)) for i in range(steps)], rel=1e-12)


def test_a_last_batch_of_one_image_is_refused_with_a_message():
    settings = TrainSettings(epochs=1, batch_size=4, lr=0.1, momentum=0, nesterov=False, weight_decay=0, warmup_epochs=0,
                             seed=0, drop_last=False)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 10))
    with pytest.raises(MollifyError, match="leaves a last batch of one image"):
        train(model, torch.zeros(9, 3, 4, 4, dtype=torch.uint8), torch.zeros(9, dtype=torch.long), lambda x, g: x,
              Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu")), BatchRecipe(10), soft_cross_entropy, settings,
              show_progress=False)


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
    for path in (paths.model_file("demo", "trivaug"), paths.checkpoint_file("demo", "trivaug")):
        path.unlink(missing_ok=True)

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
