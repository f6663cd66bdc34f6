"""Classification metrics of a predictive distribution (shared/reference/metrics.md).

`probs` is (N, K): the softmax of one model, or the mean softmax of an ensemble / MC samples.
All metrics are fractions computed over the whole evaluated set. `ece` is ours (equal-width bins,
the last one closed on the right, fp64). The comparison papers computed ECE differently; each of
their variants is kept apart under a name that says which (ECE_VARIANTS) and is computed beside
`ece` where a profile asks for it (`evaluate.paper_ece`):
- `ece_batch_mean`: the mollification reference's ECE of each test batch of 100, averaged;
- `ece_right_closed`: Soft Augmentation's 10 right-closed bins (a, b];
- `ece_reference`: spatial smoothing's: counted in (a, b], confidence summed in [a, b).
"""

from __future__ import annotations

import numpy as np
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


def _edges(n_bins: int) -> torch.Tensor:
    """np.linspace(0, 1, n_bins + 1), the references' bin edges, bit for bit (0.30000000000000004 ...)."""
    return torch.from_numpy(np.linspace(0.0, 1.0, n_bins + 1))


def right_closed_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> float:
    """ECE with right-closed bins (a, b] over [0, 1], as Soft Augmentation's release: its `ECE`
    (youngleox/soft_augmentation cifar/utils.py:680-711) bins the fp32 softmax's maximum with
    np.digitize(conf, np.linspace(0, 1, num_bins), right=True) (lines 691-692) and is called with
    num_bins=11 (cifar/train.py:163), i.e. 10 bins of width 0.1; ECE = sum_b |acc_b - conf_b| n_b / N.
    A confidence on an edge belongs to the bin below it (ours: to the bin above)."""
    conf, pred = probs.double().max(dim=1)
    correct = (pred == labels).double()
    # digitize's index i: edges[i - 1] < conf <= edges[i]; index 0 holds conf = 0 alone
    idx = torch.searchsorted(_edges(n_bins), conf, right=False)
    conf_sum = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, idx, conf)
    acc_sum = torch.zeros(n_bins + 1, dtype=torch.float64).index_add_(0, idx, correct)
    return float((acc_sum - conf_sum).abs().sum() / len(labels))


def reference_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 10) -> float:
    """ECE as spatial smoothing's release computes it (xxxnell/spatial-smoothing ops/tests.py): bins
    of np.linspace(0, 1, 11) (line 22); a sample is counted in bin (a, b] (its `cm`, line 243) but its
    confidence is summed in [a, b) (lines 81-83); conf_b = sum / (count + 1e-7) (line 94), ECE =
    sum_b |acc_b - conf_b| count_b / (N + 1e-7) (lines 313-318). The softmax there is fp32
    (F.softmax of fp32 logits, line 62): a confidence of exactly 1.0 is counted in the last bin and
    never summed, so that bin's mean confidence comes out low, which lowers the ECE of a confident,
    overconfident model. Computed here on the fp32 rounding of `probs` (exact where the evaluation's
    softmax is fp32: `evaluate.softmax`)."""
    conf, pred = probs.float().max(dim=1)
    conf = conf.double()
    correct = (pred == labels).double()
    edges = _edges(n_bins)
    count_idx = torch.searchsorted(edges, conf, right=False) - 1  # edges[i] < conf <= edges[i + 1]; conf = 0 falls out
    sum_idx = torch.searchsorted(edges, conf, right=True) - 1  # edges[i] <= conf < edges[i + 1]; conf = 1 falls out
    counted, summed = (count_idx >= 0) & (count_idx < n_bins), sum_idx < n_bins
    count = torch.bincount(count_idx[counted], minlength=n_bins).double()
    acc_sum = torch.bincount(count_idx[counted], weights=correct[counted], minlength=n_bins).double()
    conf_sum = torch.bincount(sum_idx[summed], weights=conf[summed], minlength=n_bins).double()
    acc = torch.where(count > 0, acc_sum / count.clamp_min(1), torch.zeros_like(count))
    mean_conf = conf_sum / (count + 1e-7)
    return float(((acc - mean_conf).abs() * (count / (count.sum() + 1e-7))).sum())


# the ECE variants of the comparison papers (`evaluate.paper_ece`), by the metric name they are stored under
ECE_VARIANTS = ("ece_batch_mean", "ece_right_closed", "ece_reference")


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15,
                           ece_batch_size: int | None = None, paper_ece: str = "ece") -> dict[str, float]:
    """acc, err, NLL (natural log), ECE (`n_bins` bins), Brier score (sum over classes), and the
    spatial-smoothing paper's acc90 (accuracy where conf > 0.9), freq90 (fraction with
    conf > 0.9) and unc90 (fraction of the wrong predictions with conf <= 0.9); acc90 and unc90
    are 0 where no sample qualifies, as the reference's ops/tests.py (gacc, unconfidence).
    With `ece_batch_size`, also `ece_batch_mean` (batch_mean_ece); with `paper_ece` one of
    `ece_right_closed` / `ece_reference`, also that variant (10 bins, as its paper)."""
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
    if paper_ece == "ece_right_closed":
        metrics[paper_ece] = right_closed_ece(probs, labels)
    elif paper_ece == "ece_reference":
        metrics[paper_ece] = reference_ece(probs, labels)
    return metrics

