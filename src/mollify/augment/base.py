"""Base image augmentations on batched uint8 device tensors, drawn independently per sample.

The policies (TrivialAugment, RandAugment, AutoAugment, AugMix) are in `mollify.augment.policies`.
`fcr` of the mollification paper = horizontal flip + random crop (zero padding 4) + random
rotation (15 degrees, nearest, zero fill), i.e. torchvision's RandomHorizontalFlip, RandomCrop and
RandomRotation, here done for a whole batch with one tensor op each.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def random_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Flip each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=g, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_crop(x: torch.Tensor, padding: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad by `padding` and cut an (H, W) window at a per-sample uniform offset."""
    if padding == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=g, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=g, device=x.device)
    return cut_windows(padded, dy, dx, h, w)


def cut_windows(canvas: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The (h, w) window of each sample of `canvas` whose corner is at (top[i], left[i]): two gathers."""
    b, c, _, width = canvas.shape
    rows = (top[:, None] + torch.arange(h, device=canvas.device))[:, None, :, None].expand(b, c, h, width)
    cols = (left[:, None] + torch.arange(w, device=canvas.device))[:, None, None, :].expand(b, c, h, w)
    return canvas.gather(2, rows).gather(3, cols)


def random_rotation(x: torch.Tensor, degrees: float, g: torch.Generator) -> torch.Tensor:
    """Rotate each image by U(-degrees, degrees) about its centre (nearest, zero fill)."""
    if degrees == 0:
        return x
    b = x.shape[0]
    angle = (torch.rand(b, generator=g, device=x.device) * 2 - 1) * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False).to(x.dtype)


POLICIES = ("trivaug", "randaug", "autoaug", "augmix")


def make_policy(name: str) -> Augmentation:
    """TrivialAugmentWide, RandAugment, AutoAugment (ImageNet policy) or AugMix with torchvision's
    defaults as in the paper, drawn per sample on the whole batch (`mollify.augment.policies`); AugMix's
    JSD loss is the recipe option `augmix_jsd` (BatchRecipe.augmix_views)."""
    from mollify.augment import policies  # imported on use: torchvision adds seconds to every stage's start

    return policies.POLICIES[name]()


def make_augmix_views(ops: str = "release") -> Augmentation:
    """The AugMix of AugMix's JSD views: the release's (`policies.ReleaseAugMix`: its 9 operations,
    continuous levels, float mix) or torchvision's (`policies.AugMix`, as the `augmix` augmentation)."""
    from mollify.augment import policies

    return policies.ReleaseAugMix() if ops == "release" else policies.AugMix()


def compose(names: list[str], crop_padding: int = 4, rotation_degrees: float = 15.0) -> Augmentation:
    """The per-image augmentation of a recipe: geometric steps (flip, crop, rotate) then the
    policies, in that fixed order whatever the order of `names`; names of batch-level steps
    (mixup, cutmix) are left to `BatchRecipe`."""
    steps: list[Augmentation] = []
    if "flip" in names:
        steps.append(random_flip)
    if "crop" in names:
        steps.append(lambda x, g: random_crop(x, crop_padding, g))
    if "rotate" in names:
        steps.append(lambda x, g: random_rotation(x, rotation_degrees, g))
    steps += [make_policy(name) for name in POLICIES if name in names]

    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for step in steps:
            x = step(x, g)
        return x

    return augment
