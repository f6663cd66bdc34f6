"""Classification metrics of a predictive distribution (shared/reference/metrics.md).

`probs` is (N, K): the softmax of one model, or the mean softmax of an ensemble / MC samples.
All metrics are fractions computed over the whole evaluated set; `ece_batch_mean` (optional) is
the mollification reference's batch-averaged ECE, kept apart under a name that says so.
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


def batch_mean_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15, batch_size: int = 100) -> float:
    """ECE computed on each consecutive batch of `batch_size` rows and averaged over the batches,
    weighted by batch size, as the mollification reference reports it (supervised-mollification
    src/model.py: torchmetrics' per-batch ECE on test batches of 100, and Lightning's epoch mean
    of logged values weights each batch by its size). Biased upwards by the small batches."""
    parts = [(expected_calibration_error(p, y, n_bins), len(y)) for p, y in zip(probs.split(batch_size), labels.split(batch_size))]
    return sum(ece * n for ece, n in parts) / len(labels)


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15,
                           ece_batch_size: int | None = None) -> dict[str, float]:
    """acc, err, NLL (natural log), ECE (`n_bins` bins), Brier score (sum over classes), and the
    spatial-smoothing paper's acc90 (accuracy where conf > 0.9), freq90 (fraction with
    conf > 0.9) and unc90 (fraction of the wrong predictions with conf <= 0.9); acc90 and unc90
    are 0 where no sample qualifies, as the reference's ops/tests.py (gacc, unconfidence).
    With `ece_batch_size`, also `ece_batch_mean` (batch_mean_ece)."""
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
    wrong = ~correct
    metrics = {"acc": acc, "err": 1.0 - acc, "nll": nll, "ece": ece, "brier": brier,
               "acc90": float((correct & confident).double().sum() / confident.double().sum().clamp_min(1)),
               "freq90": float(confident.double().mean()),
               "unc90": float((wrong & ~confident).double().sum() / wrong.double().sum().clamp_min(1))}
    if ece_batch_size is not None:
        metrics["ece_batch_mean"] = batch_mean_ece(probs, labels, n_bins, ece_batch_size)
    return metrics

