"""Batch-level steps on normalised images: labels -> soft targets, mixup / cutmix, mollification."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mollify.augment.mollification import Mollification

MIXES = ("mixup", "cutmix")


@dataclass
class Targets:
    """(x, labels) -> (x, soft targets): one-hot, then MixUp or CutMix (torchvision v2 defaults:
    one Beta(1, 1) weight per batch, paired with the batch rolled by one), then mollification,
    in the reference's order."""

    num_classes: int
    mix: str | None = None
    mollification: Mollification | None = None

    def __post_init__(self) -> None:
        self._mix = None
        if self.mix is not None:
            from torchvision.transforms import v2

            self._mix = {"mixup": v2.MixUp, "cutmix": v2.CutMix}[self.mix](num_classes=self.num_classes)

    @property
    def output_classes(self) -> int:
        return self.mollification.output_classes if self.mollification else self.num_classes

    def __call__(self, x: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self._mix is not None:
            x, y = self._mix(x, labels)
        else:
            y = F.one_hot(labels, self.num_classes).to(x.dtype)
        if self.mollification is not None:
            x, y = self.mollification(x, y, g)
        return x, y
