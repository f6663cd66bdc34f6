"""Generating the corrupted test sets: each corruption's function (ops, blur, weather) at its
severity's parameter (tables), batch by batch on independent, reproducible noise streams."""

from __future__ import annotations

import zlib
from typing import Callable

import torch

from mollify.corruptions import blur, ops, weather
from mollify.corruptions.tables import severity_param

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
