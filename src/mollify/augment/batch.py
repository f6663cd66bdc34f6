"""The batch-level part of a recipe, on normalised images: labels -> soft targets (one-hot, or
soft crop), mixup / cutmix, mollification; the extra views of a batch (two AugMix views for
AugMix's JSD loss, the DiffAug version of the un-augmented images), the forward pass (plain, or
Noisy Feature Mixup inside the network) and the loss over the views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from mollify.augment.base import Augmentation
from mollify.augment.diffaug import NormalizedDiffAug
from mollify.augment.mollification import Mollification
from mollify.augment.nfm import NoisyFeatureMixup
from mollify.augment.soft_augmentation import SoftAugmentation
from mollify.device import Normalize
from mollify.training.losses import augmix_jsd

# AugMix's consistency-loss weight (Hendrycks et al. 2020, augmix/cifar.py; DiffAug's diffaugmix.py)
JSD_WEIGHT = 12.0

MIXES = ("mixup", "cutmix")


@dataclass
class BatchRecipe:
    """(x, labels) -> (x, soft targets): one-hot or soft crop, then MixUp or CutMix (torchvision
    v2 defaults: one Beta(1, 1) weight per batch, paired with the batch rolled by one), then
    mollification, in the mollification reference's order; `prepare` adds the extra views,
    `forward` runs the model (with NFM's mixing inside it) on all views in one pass, `loss` scores
    them: loss(clean) [+ loss(DiffAug)] [+ 12 JSD(clean, AugMix 1, AugMix 2)]."""

    num_classes: int
    mix: str | None = None
    mollification: Mollification | None = None
    softaug: SoftAugmentation | None = None
    nfm: NoisyFeatureMixup | None = None
    diffaug: NormalizedDiffAug | None = None
    augmix_views: Augmentation | None = None  # AugMix drawn per sample on uint8: its JSD loss is on

    def __post_init__(self) -> None:
        self._mix = None
        if self.mix is not None:
            from torchvision.transforms import v2

            self._mix = {"mixup": v2.MixUp, "cutmix": v2.CutMix}[self.mix](num_classes=self.num_classes)

    @property
    def output_classes(self) -> int:
        return self.mollification.output_classes if self.mollification else self.num_classes

    def start_epoch(self, epoch: int, epochs: int) -> None:
        if self.softaug is not None:
            self.softaug.start_epoch(epoch, epochs)

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.softaug is not None:
            x, y = self.softaug(x, labels, g)
        elif self._mix is not None:
            x, y = self._mix(x, labels)
        else:
            y = F.one_hot(labels, self.num_classes).to(x.dtype)
        if self.mollification is not None:
            x, y = self.mollification(x, y, g)
        return x, y

    def prepare(self, images: torch.Tensor, labels: torch.Tensor, augment: Augmentation, normalize: Normalize,
                g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 batch -> the model's input rows and the soft targets of the first len(labels) rows:
        [clean; AugMix view 1; AugMix view 2 (augmix_views); DiffAug (diffaug)]. The clean rows are
        the recipe's augmentation; the AugMix views are drawn from the same augmented image (AugMix's
        AugMixDataset); the DiffAug rows are made from the UN-augmented image, normalised only
        (DiffAug's diffaugmix.py / diffda.py feed the diffusion model the da_transform image)."""
        base = augment(images, g)
        x, y = self(normalize(base), labels, g)
        views = [x]
        if self.augmix_views is not None:
            views += [normalize(self.augmix_views(base, g)) for _ in range(2)]
        if self.diffaug is not None:
            views.append(self.diffaug(images, g))
        return (torch.cat(views) if len(views) > 1 else x), y

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the targets of the clean rows (NFM mixes both inside the network)."""
        if self.nfm is not None:
            return self.nfm(model, x, y, g)
        return model(x), y

    def loss(self, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """loss_fn(clean) + loss_fn(DiffAug rows) + 12 JSD(clean, AugMix views), as configured."""
        n = len(y)
        loss = loss_fn(logits[:n], y)
        if self.diffaug is not None:
            loss = loss + loss_fn(logits[-n:], y)
        if self.augmix_views is not None:
            loss = loss + JSD_WEIGHT * augmix_jsd(*logits[: 3 * n].split(n))
        return loss
