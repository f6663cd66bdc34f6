"""Classification metrics of a predictive distribution (shared/reference/metrics.md).

`probs` is (N, K): the softmax of one model, or the mean softmax of an ensemble / MC samples.
All metrics are fractions computed over the whole evaluated set (not averaged over batches).
"""

from __future__ import annotations

import torch


def _confidence_bins(conf: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Bin index of each confidence: equal-width bins over [0, 1], the last one closed on the
    right so that conf = 1.0 falls into it."""
    return torch.clamp((conf * n_bins).floor().long(), 0, n_bins - 1)


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict[str, torch.Tensor]:
    """Per-bin count, mean confidence and accuracy (the reliability diagram's data)."""
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).double()
    idx = _confidence_bins(conf, n_bins)
    count = torch.bincount(idx, minlength=n_bins).double()
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, conf.double())
    acc_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, correct)
    safe = count.clamp_min(1)
    return {"count": count, "confidence": conf_sum / safe, "accuracy": acc_sum / safe}


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE = sum_b (n_b / N) |acc_b - conf_b| over `n_bins` equal-width confidence bins (L1)."""
    bins = reliability_bins(probs, labels, n_bins)
    weight = bins["count"] / bins["count"].sum()
    return float((weight * (bins["accuracy"] - bins["confidence"]).abs()).sum())


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict[str, float | None]:
    """acc, err, NLL (natural log), ECE (`n_bins` bins), Brier score (sum over classes), and the
    spatial-smoothing paper's acc90 (accuracy where conf > 0.9; None if there are none), freq90
    (fraction with conf > 0.9) and unc90 (fraction of the wrong predictions with conf <= 0.9)."""
    probs = probs.double().cpu()
    labels = labels.long().cpu()
    acc = float((probs.argmax(dim=1) == labels).double().mean())
    p_true = probs.gather(1, labels[:, None]).squeeze(1)
    nll = float(-torch.log(p_true.clamp_min(torch.finfo(torch.float64).tiny)).mean())
    onehot = torch.nn.functional.one_hot(labels, probs.shape[1]).double()
    brier = float(((probs - onehot) ** 2).sum(dim=1).mean())
    ece = expected_calibration_error(probs, labels, n_bins)
    conf = probs.max(dim=1).values
    correct = probs.argmax(dim=1) == labels
    confident = conf > 0.9
    acc90 = float(correct[confident].double().mean()) if bool(confident.any()) else None
    wrong = ~correct
    unc90 = float((conf[wrong] <= 0.9).double().mean()) if bool(wrong.any()) else None
    return {"acc": acc, "err": 1.0 - acc, "nll": nll, "ece": ece, "brier": brier,
            "acc90": acc90, "freq90": float(confident.double().mean()), "unc90": unc90}

