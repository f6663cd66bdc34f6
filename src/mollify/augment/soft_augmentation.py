"""Soft Augmentation (Liu, Yan, Leal-Taixe, Hays, Ramanan, CVPR 2023): aggressive crops whose
target confidence softens with the visible fraction v of the image.

    offsets o1, o2 ~ N(0, sigma_crop), redrawn until |o| <= size, then truncated toward zero
    v = (H - |o1|)(W - |o2|) / (H W)
    p(v) = 1 - (1 - 1/K)(1 - v)^k        (k = `power`, 2 by default; p = 1/K when v <= 0)
    target: p on the true class, (1 - p) / (K - 1) on each other class

The crop window is cut from the image centred on a 3x canvas filled with a per-channel constant
`background` * N(0, 1) (images are normalised, so ~0 is the mean colour).

Loss weight (`confidence_weight`): the released loss (youngleox/soft_augmentation cifar/utils.py,
soft_target) multiplies a (B, 1) weight p by the (B,) per-sample KL, which broadcasts to (B, B):
its mean is mean(p) x mean(KL), so the weight is the BATCH MEAN of p (`batch_mean`, the default);
`per_sample` weights each sample's loss by its own p (the paper's "target & weight" reading);
`none` leaves the loss unweighted. Cross-entropy is linear in the target, so the weight is folded
into the returned targets: soft-target cross-entropy against w * target (with the `ce` loss,
the same value and gradients as w * CE; KL differs from CE by the target entropy, a constant).

The release runs EPOCH + 1 epochs and turns the soft crop off (sigma / 1000) from epoch
max(0.05 EPOCH, EPOCH - ft) on (cifar/train.py): `soft_crop_off_from`.
Batched: one gather cuts every sample's window at its own offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mollify.augment.base import cut_windows


def target_confidence(visible: torch.Tensor, num_classes: int, power: float = 2.0) -> torch.Tensor:
    """p(v) = 1 - (1 - 1/K)(1 - v)^power for v in (0, 1]; 1/K for v <= 0."""
    p = 1 - (1 - 1 / num_classes) * (1 - visible.clamp(max=1)) ** power
    return torch.where(visible > 0, p, torch.full_like(p, 1 / num_classes))


def soft_targets(labels: torch.Tensor, confidence: torch.Tensor, num_classes: int) -> torch.Tensor:
    """p on the true class, (1 - p) / (K - 1) on each of the others."""
    others = ((1 - confidence) / (num_classes - 1))[:, None]
    onehot = F.one_hot(labels, num_classes).to(confidence.dtype)
    return onehot * confidence[:, None] + (1 - onehot) * others


def crop_offsets(batch: int, size: int, sigma: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """(batch, 2) integer offsets: o ~ N(0, sigma) redrawn until |o| <= size, then truncated toward
    zero (the release's draw_offset tests the real draw, so |offset| = size, an empty crop, never occurs)."""
    offsets = torch.zeros(batch, 2, device=device)
    todo = torch.ones(batch, 2, dtype=torch.bool, device=device)
    while bool(todo.any()):  # a few rounds at most: P(|o| > size) is tiny for sigma <= size / 2
        offsets = torch.where(todo, sigma * torch.randn(batch, 2, generator=g, device=device), offsets)
        todo = offsets.abs() > size
    return torch.trunc(offsets).long()


# The release's fine-tune phase: `--ft 20` (cifar/train.py:265) switches the soft crop off from epoch
# EPOCH - ft on (train.py:451) of a loop over epochs 0..EPOCH (train.py:446): the last 21 epochs.
RELEASE_FINAL_EPOCHS_WITHOUT = 21


def soft_crop_off_from(epochs: int, final_epochs_without: int) -> float:
    """The first epoch (0-based) without the soft crop: the release runs EPOCH + 1 = `epochs` epochs
    and switches from epoch max(0.05 EPOCH, EPOCH - ft) on, i.e. the last ft + 1 =
    `final_epochs_without` epochs, but never the first 5% of the schedule."""
    return max(0.05 * (epochs - 1), epochs - final_epochs_without)


def soft_crop(x: torch.Tensor, offsets: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """Cut each (H, W) window at `offsets` from the image centred on a 3x canvas of `background`
    (B, C) constants: out[i, j] = canvas[H + o1 + i, W + o2 + j]."""
    b, c, h, w = x.shape
    canvas = background[:, :, None, None].expand(b, c, 3 * h, 3 * w).clone()
    canvas[:, :, h : 2 * h, w : 2 * w] = x
    return cut_windows(canvas, h + offsets[:, 0], w + offsets[:, 1], h, w)


@dataclass
class SoftAugmentation:
    num_classes: int
    sigma_crop: float = 12.0
    power: float = 2.0
    background: float = 0.01
    confidence_weight: str = "batch_mean"  # batch_mean (the release) | per_sample | none
    final_epochs_without: int = RELEASE_FINAL_EPOCHS_WITHOUT  # soft crop off (sigma / 1000) for these last epochs
    active: bool = True

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.active = epoch < soft_crop_off_from(epochs, self.final_epochs_without)

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        sigma = self.sigma_crop if self.active else self.sigma_crop / 1000
        offsets = crop_offsets(x.shape[0], x.shape[-1], sigma, g, x.device)
        background = self.background * torch.randn(x.shape[:2], generator=g, device=x.device, dtype=x.dtype)
        h, w = x.shape[-2:]
        visible = (h - offsets[:, 0].abs()) * (w - offsets[:, 1].abs()) / (h * w)
        p = target_confidence(visible.to(x.dtype), self.num_classes, self.power)
        weight = {"batch_mean": p.mean().expand_as(p), "per_sample": p, "none": torch.ones_like(p)}[self.confidence_weight]
        return soft_crop(x, offsets, background), weight[:, None] * soft_targets(labels, p, self.num_classes)
