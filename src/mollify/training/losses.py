"""Losses on soft targets (timm-style: separate from the augmentations that produce the targets)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-sum_k y_k log softmax(f)_k, averaged over the batch (targets need not sum to 1: `ld`)."""
    return -(targets * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def normalized_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a tempered normaliser: CE(y, f) + log Z with
    Z = sum_k (g - f_k) / (log g - log f_k), g the geometric mean of the softmax probabilities f
    (the mollification reference's `nce`). Terms with f_k == g take their limit g."""
    log_f = F.log_softmax(logits.float(), dim=1)
    f = log_f.exp()
    log_g = log_f.mean(dim=1, keepdim=True)
    g = log_g.exp()
    diff = log_g - log_f
    safe = diff.abs() > 1e-6
    terms = torch.where(safe, (g - f) / torch.where(safe, diff, torch.ones_like(diff)), g.expand_as(f))
    return -(targets * log_f).sum(dim=1).mean() + terms.sum(dim=1).log().mean()


def binary_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-class sigmoid cross-entropy, averaged over classes and batch."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets)


def augmix_jsd(*logits: torch.Tensor) -> torch.Tensor:
    """AugMix's Jensen-Shannon consistency (Hendrycks et al., ICLR 2020, augmix/cifar.py):
    (1/m) sum_i KL(p_i || M) over the m views' softmaxes p_i, M their mean clamped to [1e-7, 1],
    averaged over the batch."""
    probs = [F.softmax(z.float(), dim=1) for z in logits]
    log_m = torch.clamp(sum(probs) / len(probs), 1e-7, 1).log()
    return sum(F.kl_div(log_m, p, reduction="batchmean") for p in probs) / len(probs)


LOSSES = {"ce": soft_cross_entropy, "nce": normalized_cross_entropy, "bce": binary_cross_entropy}
