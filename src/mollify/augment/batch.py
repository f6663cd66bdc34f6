"""The batch-level part of a recipe, on normalised images: labels -> soft targets (one-hot, or
soft crop), mixup / cutmix, mollification, and the forward pass (plain, or Noisy Feature Mixup
inside the network, or on the clean images plus their DiffAug versions)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from mollify.augment.diffaug import NormalizedDiffAug
from mollify.augment.mollification import Mollification
from mollify.augment.nfm import NoisyFeatureMixup
from mollify.augment.soft_augmentation import SoftAugmentation

MIXES = ("mixup", "cutmix")


@dataclass
class BatchRecipe:
    """(x, labels) -> (x, soft targets): one-hot or soft crop, then MixUp or CutMix (torchvision
    v2 defaults: one Beta(1, 1) weight per batch, paired with the batch rolled by one), then
    mollification, in the mollification reference's order; `forward` runs the model (with NFM's
    mixing inside it, or on [clean; DiffAug] in one pass, when configured)."""

    num_classes: int
    mix: str | None = None
    mollification: Mollification | None = None
    softaug: SoftAugmentation | None = None
    nfm: NoisyFeatureMixup | None = None
    diffaug: NormalizedDiffAug | None = None

    def __post_init__(self) -> None:
        self._mix = None
        if self.mix is not None:
            from torchvision.transforms import v2

            self._mix = {"mixup": v2.MixUp, "cutmix": v2.CutMix}[self.mix](num_classes=self.num_classes)

    @property
    def output_classes(self) -> int:
        return self.mollification.output_classes if self.mollification else self.num_classes

    @property
    def loss_scale(self) -> float:
        """DiffAug's loss is CE(clean) + CE(DiffAug): twice the mean over the doubled batch."""
        return 2.0 if self.diffaug is not None else 1.0

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

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the targets they are scored against (for DiffAug: [clean; DiffAug] rows)."""
        if self.nfm is not None:
            return self.nfm(model, x, y, g)
        if self.diffaug is not None:
            return model(torch.cat([x, self.diffaug(x, g)])), torch.cat([y, y])
        return model(x), y
