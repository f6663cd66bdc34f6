"""Corrupted test sets (Hendrycks & Dietterich, ICLR 2019): batched torch reimplementations.

`corrupt(images, name, severity, seed)` takes uint8 (N, C, H, W) and returns the corrupted uint8
images; the severity table (32 px CIFAR or 64 px Tiny-ImageNet) is chosen by the image size.
Each function receives the float64 values k / 255, as the reference's `np.array(x) / 255.`, and
works in float32 where the reference does; outputs are truncated to uint8 like its `np.uint8(...)`.
"""

from __future__ import annotations

import zlib
from typing import Callable

import torch

from mollify.corruptions import blur, ops, weather
from mollify.corruptions.tables import SEVERITY_TABLES, severity_param

Corruption = Callable[[torch.Tensor, object, torch.Generator], torch.Tensor]

CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": ops.gaussian_noise,
    "shot_noise": ops.shot_noise,
    "impulse_noise": ops.impulse_noise,
    "speckle_noise": ops.speckle_noise,
    "defocus_blur": ops.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "gaussian_blur": ops.gaussian_blur,
    "snow": weather.snow,
    "frost": weather.frost,
    "fog": weather.fog,
    "spatter": weather.spatter,
    "brightness": ops.brightness,
    "contrast": ops.contrast,
    "elastic_transform": ops.elastic_transform,
    "pixelate": ops.pixelate,
    "jpeg_compression": ops.jpeg_compression,
    "saturate": ops.saturate,
}

GROUPS: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
    "weather": ("snow", "frost", "fog", "spatter"),
    "digital": ("brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate"),
}
STANDARD = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")

__all__ = ["CORRUPTIONS", "GROUPS", "STANDARD", "EXTRA", "SEVERITY_TABLES", "corrupt", "group_of"]


def group_of(name: str) -> str:
    return next(group for group, members in GROUPS.items() if name in members)


def _generator(seed: int, name: str, severity: int, batch: int, device: torch.device) -> torch.Generator:
    """An independent, reproducible stream per (seed, corruption, severity, batch)."""
    key = zlib.crc32(f"{seed}/{name}/{severity}/{batch}".encode())
    return torch.Generator(device=device).manual_seed(key)


def corrupt(images: torch.Tensor, name: str, severity: int, seed: int = 0, batch_size: int = 1000) -> torch.Tensor:
    """Corrupt uint8 (N, C, H, W) images at `severity` (1..5); deterministic for a seed and batch size."""
    fn = CORRUPTIONS[name]
    param = severity_param(name, images.shape[-1], severity)
    out = torch.empty_like(images)
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].double().div_(255)
        g = _generator(seed, name, severity, start // batch_size, images.device)
        y = fn(x, param, g).double()  # a fresh tensor in [0, 1] (each function clips): scaled in place
        # truncated like the reference's np.uint8() (the uint8 copy truncates), in float64 as its
        # `np.clip(x, 0, 1) * 255`
        out[start : start + batch_size] = y.mul_(255)
    return out
