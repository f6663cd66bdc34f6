"""The divergence guard: a non-finite or exploding loss stops training before anything is saved;
metrics JSON stays strict JSON."""

import json
import math

import pytest
import torch
import yaml

from mollify import paths
from mollify.config import parse_params
from mollify.data import prepare_dataset
from mollify.training.divergence import DIFFUSION_LOSS_BOUND, Diverged, DivergenceGuard, classifier_loss_bound
from mollify.errors import MollifyError
from mollify.training.run import train_method
from mollify.io import save_json
from tests.conftest import tiny_params


def test_loss_bound_is_100_times_the_uniform_prediction_loss():
    assert classifier_loss_bound(10) == pytest.approx(100 * 2.302585093)
    assert classifier_loss_bound(100, terms=2) == pytest.approx(200 * 4.605170186)
    assert classifier_loss_bound(1) == pytest.approx(100 * 0.693147181)  # never below log 2
    assert DIFFUSION_LOSS_BOUND == 100


def test_guard_reports_the_first_bad_step_with_its_loss_and_lr():
    guard = DivergenceGuard(bound=10.0, device=torch.device("cpu"))
    for step, loss in enumerate([2.3, 9.9, 10.0]):  # at the bound is not above it
        guard.update(step, torch.tensor(loss))
    guard.check(lambda step: 0.1, "hint")  # nothing raised
    guard.update(3, torch.tensor(10.5))
    guard.update(4, torch.tensor(float("nan")))  # later: the message keeps the first
    with pytest.raises(Diverged, match=r"^training diverged at step 4: loss 10\.5 is above the divergence bound 10 "
                                       r"\(learning rate 0\.003\); nothing was saved\. Lower it\.$"):
        guard.check(lambda step: 0.001 * step, "Lower it.")


def test_guard_names_a_non_finite_loss():
    guard = DivergenceGuard(bound=1e9, device=torch.device("cpu"))
    guard.update(0, torch.tensor(float("inf")))
    with pytest.raises(Diverged, match=r"step 1: loss inf is not finite"):
        guard.check(lambda step: 1.0, "")


def test_diverging_training_saves_nothing(workdir, caplog):
    params = tiny_params(**{"train.lr": 1e8, "train.epochs": 2})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    prepare_dataset("demo", paths.clean_dir("demo"), download_dir=workdir, demo_train_size=128, demo_test_size=16)
    with pytest.raises(MollifyError, match=r"training diverged at step \d+: loss .* \(learning rate .*\); nothing was "
                                           r"saved\. Lower train\.lr \(now 1e\+08\) or raise train\.warmup_epochs\."):
        train_method(parse_params(params), "demo", "baseline", show_progress=False)
    assert not paths.model_file("demo", "baseline").exists()
    assert not paths.checkpoint_file("demo", "baseline").exists()
    assert not (paths.train_log_dir("demo", "baseline") / "metrics.json").exists()


def test_save_json_writes_null_and_lists_undefined_values(tmp_path):
    path = tmp_path / "m.json"
    save_json(path, {"clean": {"err": 0.5, "nll": math.nan}, "curve": [1.0, math.inf], "n": 3})

    def reject(constant):
        raise ValueError(f"bare {constant} in the file")

    assert json.loads(path.read_text(), parse_constant=reject) == {
        "clean": {"err": 0.5, "nll": None}, "curve": [1.0, None], "n": 3, "undefined": ["clean.nll", "curve.1"]}
    save_json(path, {"err": 0.25})
    assert json.loads(path.read_text()) == {"err": 0.25}  # no flag when all is defined
