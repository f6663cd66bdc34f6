"""What training tells the user: a line per epoch without a terminal, DVCLive metrics per epoch,
resumed and ignored checkpoints."""

import json
import logging
import subprocess

import pytest
import torch
import yaml

from mollify import paths
from mollify.config import parse_params
from mollify.data import prepare_dataset
from mollify.errors import MollifyError
from mollify.training.run import train_method
from tests.conftest import tiny_params


@pytest.fixture
def cfg(workdir, caplog):
    caplog.set_level(logging.INFO)
    params = tiny_params(**{"train.epochs": 2})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    prepare_dataset("demo", paths.clean_dir("demo"), download_dir=workdir, demo_train_size=128, demo_test_size=16)
    return parse_params(params)


def test_a_line_per_epoch_and_dvclive_metrics(cfg, caplog):
    history = train_method(cfg, "demo", "baseline", show_progress=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert f"loss {history[1]['train_loss']:.4f}, acc {history[1]['train_acc']:.4f}" in lines[1]
    live = paths.train_log_dir("demo", "baseline")
    summary = json.loads((live / "metrics.json").read_text())
    assert summary["step"] == 2 and summary["train_loss"] == pytest.approx(history[1]["train_loss"])
    rows = (live / "plots/metrics/train_loss.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["step", "train_loss"]
    assert [(int(r.split("\t")[0]), float(r.split("\t")[1])) for r in rows[1:]] == [
        (h["epoch"], pytest.approx(h["train_loss"])) for h in history]
    for key in ("train_acc", "lr", "images_per_s"):
        assert (live / "plots/metrics" / f"{key}.tsv").is_file()


def test_resumed_and_ignored_checkpoints_are_reported(cfg, caplog):
    one_epoch = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 1})})
    train_method(one_epoch, "demo", "baseline", show_progress=False)
    checkpoint = paths.checkpoint_file("demo", "baseline")

    caplog.clear()
    train_method(cfg, "demo", "baseline", show_progress=False)  # other settings: from scratch
    assert f"ignoring checkpoint {checkpoint}: made with other settings, train; starting from scratch" in caplog.messages

    state = torch.load(checkpoint, weights_only=True)  # made to look like one saved after epoch 1 of 2
    torch.save({**state, "epoch": 1, "history": state["history"][:1]}, checkpoint)
    caplog.clear()
    history = train_method(cfg, "demo", "baseline", show_progress=False)
    assert f"resumed from epoch 1 of {checkpoint}" in caplog.messages
    assert [h["epoch"] for h in history] == [1, 2]
    rows = (paths.train_log_dir("demo", "baseline") / "plots/metrics/train_loss.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows[1:]] == ["1", "2"]  # the resumed epoch is in the DVCLive log too

    checkpoint.write_bytes(b"not a checkpoint")
    caplog.clear()
    train_method(cfg, "demo", "baseline", show_progress=False)
    assert any(m.startswith(f"ignoring checkpoint {checkpoint}: unreadable (corrupt file") for m in caplog.messages)


def test_dvclive_in_a_repository_without_commits_says_what_to_do(cfg, workdir):
    from dvc.repo import Repo

    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    Repo.init(str(workdir))
    with pytest.raises(MollifyError, match=r"^DVCLive cannot log to plots/runs/demo/baseline/seed0/train: the git repository "
                                           r"has a problem \(Empty git repo\); in a new repository, commit once"):
        train_method(cfg, "demo", "baseline", show_progress=False)
