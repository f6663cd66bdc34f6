"""The corruptions as batched torch functions: (B, C, H, W) float in [0, 1] -> same, on any device.

Each function reimplements the per-image reference generator (hendrycks/robustness) with the same
parameters; the docstrings name the reference call whose output they reproduce.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def gaussian_noise(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """x + N(0, c^2), clipped (reference: `np.random.normal(size=x.shape, scale=c)`)."""
    return (x + c * torch.randn(x.shape, generator=g, device=x.device)).clamp(0, 1)


def shot_noise(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """Poisson(x c) / c, clipped."""
    return (torch.poisson(x * c, generator=g) / c).clamp(0, 1)


def impulse_noise(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """Salt and pepper on a fraction `c` of the values, half each (skimage `random_noise(mode='s&p')`)."""
    flipped = torch.rand(x.shape, generator=g, device=x.device) < c
    salted = torch.rand(x.shape, generator=g, device=x.device) < 0.5
    return torch.where(flipped, salted.to(x.dtype), x)


def _separable(x: torch.Tensor, kernel_1d: torch.Tensor, mode: str) -> torch.Tensor:
    """Convolve each channel with kernel_1d along H and W (odd length, centred), with padding `mode`."""
    c = x.shape[1]
    k = kernel_1d.to(x)
    r = (k.numel() - 1) // 2
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _gaussian_kernel_1d(sigma: float, radius: int) -> torch.Tensor:
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """skimage `gaussian(x, sigma=c, channel_axis=-1)`: scipy's filter, truncate 4, mode 'nearest'."""
    radius = int(4.0 * c + 0.5)
    return _separable(x, _gaussian_kernel_1d(c, radius), mode="replicate").clamp(0, 1)


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The reference `disk()`: an aliased disk on a 17x17 grid, normalised, then cv2.GaussianBlur
    (3x3, sigma = alias_blur, border reflect-101) to soften the aliasing."""
    half = 8 if radius <= 8 else int(math.ceil(radius))
    ksize = 3 if radius <= 8 else 5
    coords = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(coords, coords)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    k = _gaussian_kernel_1d(alias_blur, ksize // 2).numpy()
    r = ksize // 2
    for axis in (0, 1):
        padded = np.pad(disk, [(r, r) if a == axis else (0, 0) for a in (0, 1)], mode="reflect")
        disk = sum(k[i] * np.take(padded, range(i, i + disk.shape[axis]), axis=axis) for i in range(ksize))
    return torch.from_numpy(disk)


def defocus_blur(x: torch.Tensor, c: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """Correlate each channel with `disk_kernel(*c)` (cv2.filter2D, border reflect-101)."""
    kernel = disk_kernel(*c).to(x)
    r = (kernel.shape[0] - 1) // 2
    channels = x.shape[1]
    out = F.conv2d(F.pad(x, (r, r, r, r), mode="reflect"), kernel.expand(channels, 1, -1, -1), groups=channels)
    return out.clamp(0, 1)


def contrast(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """(x - m) c + m with m the per-image, per-channel mean."""
    means = x.mean(dim=(2, 3), keepdim=True)
    return ((x - means) * c + means).clamp(0, 1)


def brightness(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """HSV value + c, clipped (skimage rgb2hsv / hsv2rgb), done without leaving RGB:
    with hue and saturation fixed every channel is proportional to V = max(r, g, b)."""
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    scaled = x * (v_new / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v_new.expand_as(x))


def pil_box_weights(in_size: int, out_size: int) -> torch.Tensor:
    """Pillow's fixed-point BOX resampling coefficients as an (out, in) matrix of integers.

    Mirrors Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` (22 fractional bits) so that
    `pixelate` reproduces `PIL.Image.resize(..., Image.BOX)` bit for bit.
    """
    precision = 22
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    weights = np.zeros((out_size, in_size))
    for xx in range(out_size):
        centre = (xx + 0.5) * scale
        xmin = max(int(centre - support + 0.5), 0)
        xmax = min(int(centre + support + 0.5), in_size)
        taps = np.array([(x + xmin - centre + 0.5) / filterscale for x in range(xmax - xmin)])
        w = ((taps > -0.5) & (taps <= 0.5)).astype(np.float64)
        if w.sum() != 0:
            w /= w.sum()
        weights[xx, xmin:xmax] = w
    fixed = np.where(weights < 0, np.trunc(-0.5 + weights * (1 << precision)), np.trunc(0.5 + weights * (1 << precision)))
    return torch.from_numpy(fixed)


def _pil_resize_box(x255: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Integer-valued (B, C, H, W) -> (B, C, out_h, out_w): horizontal then vertical pass, each
    rounded and clipped to uint8 as Pillow does. float64 keeps the integer arithmetic exact."""
    precision = 22
    half = float(1 << (precision - 1))
    wx = pil_box_weights(x255.shape[3], out_w).to(x255.device)
    wy = pil_box_weights(x255.shape[2], out_h).to(x255.device)
    h = torch.floor((x255.double() @ wx.T + half) / (1 << precision)).clamp(0, 255)
    return torch.floor((wy @ h + half) / (1 << precision)).clamp(0, 255)


def pixelate(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """PIL BOX resize to int(size c) and back (reference `x.resize(..., PILImage.BOX)` twice)."""
    h, w = x.shape[2:]
    x255 = torch.round(x.double() * 255)
    small = _pil_resize_box(x255, int(h * c), int(w * c))
    return (_pil_resize_box(small, h, w) / 255).to(x.dtype)


def jpeg_compression(x: torch.Tensor, c: int, g: torch.Generator) -> torch.Tensor:
    """Encode as JPEG at quality c and decode with Pillow, image by image (reference `x.save(output,
    'JPEG', quality=c)`): libjpeg has no batched API, and Pillow keeps the reference's defaults."""
    images = torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=int(c))
        out.append(np.asarray(Image.open(buffer)))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x.device, x.dtype) / 255
