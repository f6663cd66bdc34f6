"""Metric functions against independent computations (numpy by hand, torchmetrics)."""

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from mollify.metrics import classification_metrics, expected_calibration_error, reliability_bins


def _random_probs(n: int, k: int, seed: int, with_certain: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 3
    probs = torch.softmax(logits.double(), dim=1)
    if with_certain:  # rows whose confidence is exactly 1.0, right or wrong
        probs[:10] = torch.nn.functional.one_hot(torch.randint(0, k, (10,), generator=g), k).double()
    labels = torch.where(torch.rand(n, generator=g) < 0.7, probs.argmax(1), torch.randint(0, k, (n,), generator=g))
    return probs, labels


def _numpy_reference(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> dict[str, float]:
    conf, pred = probs.max(1), probs.argmax(1)
    correct = pred == labels
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        in_bin = (conf >= lo) & ((conf < hi) if b < n_bins - 1 else (conf <= hi))
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    onehot = np.eye(probs.shape[1])[labels]
    with np.errstate(divide="ignore"):
        nll = -np.log(probs[np.arange(len(labels)), labels])
    confident = conf > 0.9
    return {
        "acc": correct.mean(), "err": 1 - correct.mean(), "nll": nll.mean(), "ece": ece,
        "brier": ((probs - onehot) ** 2).sum(1).mean(),
        "acc90": correct[confident].mean(), "freq90": confident.mean(), "unc90": (conf[~correct] <= 0.9).mean(),
    }


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_bins", [10, 15])
def test_metrics_match_numpy_with_certain_predictions(seed, n_bins):
    probs, labels = _random_probs(2000, 10, seed, with_certain=True)
    probs[10:] = probs[10:].clamp_min(1e-9)  # finite NLL; exact 1.0 rows kept only where labelled right
    labels[:10] = probs[:10].argmax(1)
    ours = classification_metrics(probs, labels, n_bins)
    ref = _numpy_reference(probs.numpy(), labels.numpy(), n_bins)
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key


def test_confidence_one_is_in_the_last_bin():
    probs = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0])
    bins = reliability_bins(probs, labels, 15)
    assert bins["count"][14] == 2 and bins["count"].sum() == 3
    assert bins["confidence"][14] == 1.0 and bins["accuracy"][14] == 0.5
    # |0.5 - 1.0| * 2/3 from the last bin + |1 - 0.5| * 1/3 from the bin of 0.5
    assert expected_calibration_error(probs, labels, 15) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(3))
def test_ece_matches_torchmetrics(seed):
    probs, labels = _random_probs(3000, 7, seed, with_certain=False)
    ref = multiclass_calibration_error(probs.float(), labels, num_classes=7, n_bins=15, norm="l1")
    assert expected_calibration_error(probs, labels, 15) == pytest.approx(float(ref), abs=1e-5)


def test_perfect_and_uniform_predictions():
    labels = torch.arange(10)
    perfect = classification_metrics(torch.eye(10, dtype=torch.float64), labels)
    assert perfect == {"acc": 1.0, "err": 0.0, "nll": 0.0, "ece": 0.0, "brier": 0.0, "acc90": 1.0, "freq90": 1.0, "unc90": None}
    uniform = classification_metrics(torch.full((10, 10), 0.1, dtype=torch.float64), labels)
    assert uniform["nll"] == pytest.approx(np.log(10))
    assert uniform["brier"] == pytest.approx(0.9)
    assert uniform["acc90"] is None and uniform["freq90"] == 0.0 and uniform["unc90"] == 1.0


def test_nll_of_a_zero_probability_is_large_but_finite():
    m = classification_metrics(torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([1]))
    assert np.isfinite(m["nll"]) and m["nll"] > 700
