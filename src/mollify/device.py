"""Device and numeric-format choices: CUDA when present, bf16 autocast and channels_last there."""

from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager

import torch

from mollify.errors import MollifyError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MollifyError("device: cuda was asked for but no CUDA device is visible; set `device: auto` or `cpu`.")
    return torch.device(name)


def autocast(device: torch.device, precision: str) -> ContextManager:
    """bf16 autocast for `precision: bf16`, and for `auto` on CUDA; plain fp32 otherwise."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def stream_seed(seed: int, index: int) -> int:
    """The seed of stream `index` (an epoch, a step, a diffusion time) of a run seeded with `seed`."""
    return seed * 1_000_003 + index


def seeded_generator(seed: int, index: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(stream_seed(seed, index))


class Normalize:
    """uint8 (B, C, H, W) -> float, standardised by the dataset's channel mean and std."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, channels_last: bool = False):
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.float() - self.mean) / self.std).contiguous(memory_format=self.memory_format)
