"""Test-time perturbations of the comparison papers' robustness sweeps, on batches of images in
[0, 1] (B, C, H, W), each with its own generator. Level 0 returns the images unchanged.

- Noisy Feature Mixup (erichson/NFM `evaluate.py`): `white_noise` (cls_noisy_validate) and
  `salt_and_pepper` (sp / sp_wrapper), swept over eps in {0, .02, ..., .35}.
- Soft Augmentation (youngleox/soft_augmentation `cifar/utils.py`): `cutout` occlusion (its
  Cutout class, one hole, filled with the normalisation mean as after its Normalize) and `random_crop` (get_test_dataloader_crop: RandomCrop(size, padding)),
  each returning the fraction of the image left visible.
"""

from __future__ import annotations

import torch


def white_noise(x: torch.Tensor, eps: float, std: tuple[float, ...], g: torch.Generator) -> torch.Tensor:
    """x + eps * N(0, 1) on the *standardised* image, as NFM's evaluation (its test loader
    normalises first, no clipping): in [0, 1] units, eps * std_c * N(0, 1) in channel c."""
    if eps == 0:
        return x
    scale = eps * torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return x + scale * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)


def _random_pixels(n: int, pixels: int, k: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """k distinct pixel indices per image (sampling without replacement, as np.random.choice(..., False))."""
    return torch.rand(n, pixels, generator=g, device=device).argsort(dim=1)[:, :k]


def salt_and_pepper(x: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """NFM's salt-and-pepper noise: in the FIRST channel only (its sp_wrapper perturbs data[i, 0]),
    ceil(amount * H * W / 2) distinct pixels set to the channel's minimum, then another
    independently drawn ceil(amount * H * W / 2) set to the maximum of the result."""
    if amount == 0:
        return x
    n, _, h, w = x.shape
    k = int(torch.ceil(torch.tensor(amount * h * w * 0.5)))
    channel = x[:, 0].reshape(n, h * w).clone()
    channel.scatter_(1, _random_pixels(n, h * w, k, g, x.device), channel.min(dim=1, keepdim=True).values.expand(n, k))
    channel.scatter_(1, _random_pixels(n, h * w, k, g, x.device), channel.max(dim=1, keepdim=True).values.expand(n, k))
    out = x.clone()
    out[:, 0] = channel.view(n, h, w)
    return out


def cutout(x: torch.Tensor, length: int, g: torch.Generator,
           fill: tuple[float, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft Augmentation's Cutout with one hole (mask=0, cifar/utils.py:482-526): centre (y, x)
    uniform over the pixels, the square [y - length // 2, y + length // 2) x [...] clipped to the
    image and set to `fill` per channel (in [0, 1] units). The release applies its Cutout after
    Normalize (utils.py:302-305), so its hole is 0 in normalised space: pass the normalisation
    mean as `fill` for that; None fills black (0 in [0, 1]). Returns the images and each one's
    visible fraction 1 - (hole area) / (H W)."""
    n, _, h, w = x.shape
    if length == 0:
        return x, torch.ones(n, device=x.device)
    cy = torch.randint(h, (n,), generator=g, device=x.device)
    cx = torch.randint(w, (n,), generator=g, device=x.device)
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (rows[None] >= (cy - length // 2)[:, None]) & (rows[None] < (cy + length // 2)[:, None])
    in_cols = (cols[None] >= (cx - length // 2)[:, None]) & (cols[None] < (cx + length // 2)[:, None])
    hole = in_rows[:, :, None] & in_cols[:, None, :]
    colour = torch.tensor(fill or (0.0,) * x.shape[1], device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return torch.where(hole[:, None], colour, x), 1 - hole.flatten(1).double().mean(dim=1)


def random_crop(x: torch.Tensor, padding: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's RandomCrop(size, padding) as the release's test-time crop: zero-pad by
    `padding`, cut an image-size window at a uniform offset in [0, 2 padding] per axis (a shift by
    dy, dx in [-padding, padding], black fill). Returns the images and the visible fractions
    (H - |dy|)(W - |dx|) / (H W)."""
    n, _, h, w = x.shape
    if padding == 0:
        return x, torch.ones(n, device=x.device)
    dy = torch.randint(-padding, padding + 1, (n,), generator=g, device=x.device)
    dx = torch.randint(-padding, padding + 1, (n,), generator=g, device=x.device)
    rows = torch.arange(h, device=x.device)[None] + dy[:, None]  # source row of each output row
    cols = torch.arange(w, device=x.device)[None] + dx[:, None]
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[batch, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    out = out.permute(0, 3, 1, 2) * inside[:, None]
    return out, (h - dy.abs()) * (w - dx.abs()) / (h * w)
