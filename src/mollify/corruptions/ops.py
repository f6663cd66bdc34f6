"""The corruptions as batched torch functions: (B, C, H, W) float in [0, 1] -> same, on any device.

Each function reimplements the per-image reference generator (hendrycks/robustness) with the same
parameters; the docstrings name the reference call whose output they reproduce.
"""

from __future__ import annotations

import io
import math
import re
from functools import lru_cache

import numpy as np
import simplejpeg
import torch
import torch.nn.functional as F
from PIL import Image

from mollify.corruptions import filters


def _randn(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn in float32 (5x faster than float64 on CPU)."""
    return torch.randn(x.shape, generator=g, device=x.device)


def gaussian_noise(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """x + N(0, c^2), clipped (reference: `np.random.normal(size=x.shape, scale=c)`)."""
    return (x + c * _randn(x, g)).clamp(0, 1)


@lru_cache(maxsize=16)
def poisson_alias_table(c: float) -> torch.Tensor:
    """Walker's alias tables (Vose's construction) of Poisson(k c / 255) for the 256 levels k, over
    0..K-1 with K = c + 12 sqrt(c) + 20 (the mass above K is below 1e-25), row k at k K. Each
    entry packs the alias and the acceptance probability p into alias + p (p < 1; an entry that
    always accepts stores its own column with p = 0)."""
    size = int(c + 12 * math.sqrt(c) + 20)
    counts = np.arange(size)
    rates = np.arange(256)[:, None] * c / 255
    with np.errstate(divide="ignore", invalid="ignore"):
        pmf = np.exp(counts * np.log(rates) - rates - np.array([math.lgamma(n + 1) for n in counts]))
    pmf[0] = counts == 0  # rate 0: always 0
    scaled = pmf / pmf.sum(axis=1, keepdims=True) * size
    table = np.tile(counts, (256, 1)).astype(np.float64)
    for level in range(256):
        q = scaled[level].tolist()
        small = [j for j in range(size) if q[j] < 1]
        large = [j for j in range(size) if q[j] >= 1]
        while small and large:
            s, big = small.pop(), large.pop()
            table[level, s] = big + q[s]
            q[big] += q[s] - 1
            (small if q[big] < 1 else large).append(big)
    return torch.from_numpy(table.reshape(-1))


def shot_noise(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """Poisson(x c) / c, clipped (reference `np.random.poisson(x * c) / c`). x takes the 256 levels
    k / 255, so each value is drawn from its level's alias table: one uniform gives the column
    (integer part of u K) and the accept test (fractional part), exact up to float64 rounding,
    and 3x faster than torch.poisson on CPU."""
    table = poisson_alias_table(float(c)).to(x.device)
    size = len(table) // 256
    u = torch.rand(x.shape, generator=g, device=x.device, dtype=torch.float64).mul_(size)
    column = u.floor()
    entry = table[(torch.round(x * 255) * size + column).long()]
    alias = entry.floor()
    counts = torch.where(u - column < entry - alias, column, alias)
    return counts.div_(c).clamp_(0, 1)


def impulse_noise(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """Salt and pepper on a fraction `c` of the values, half each (skimage `random_noise(mode='s&p')`);
    one uniform u per value: flipped if u < c, salt if u < c / 2."""
    u = torch.rand(x.shape, generator=g, device=x.device)
    return torch.where(u < c, (u < c / 2).to(x.dtype), x)


def speckle_noise(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """x + x N(0, c^2), clipped (reference `speckle_noise`)."""
    return (x + x * c * _randn(x, g)).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """skimage `gaussian(x, sigma=c, channel_axis=-1)`: scipy's filter, truncate 4, mode 'nearest'."""
    return filters.gaussian(x, c).clamp(0, 1)


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The reference `disk()`: an aliased disk on a 17x17 grid, normalised, then cv2.GaussianBlur
    (3x3, sigma = alias_blur, border reflect-101) to soften the aliasing; in float32 as there
    (rows, then columns, taps summed in order)."""
    half = 8 if radius <= 8 else int(math.ceil(radius))
    ksize = 3 if radius <= 8 else 5
    coords = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(coords, coords)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float32)
    disk /= np.sum(disk)
    k = filters.gaussian_kernel(alias_blur, ksize // 2).numpy().astype(np.float32)
    r = ksize // 2
    for axis in (1, 0):
        padded = np.pad(disk, [(r, r) if a == axis else (0, 0) for a in (0, 1)], mode="reflect")
        taps = [k[i] * np.take(padded, range(i, i + disk.shape[axis]), axis=axis) for i in range(ksize)]
        disk = taps[0]
        for tap in taps[1:]:
            disk = disk + tap
    keep = np.flatnonzero(disk.any(axis=0))  # the kernel is symmetric: trim its zero border (exact, fewer taps)
    r = min(keep[0], len(disk) - 1 - keep[-1])
    return torch.from_numpy(disk[r : len(disk) - r, r : len(disk) - r].astype(np.float64))


def defocus_blur(x: torch.Tensor, c: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """Correlate each channel with `disk_kernel(*c)` (cv2.filter2D, border reflect-101): the nonzero
    taps summed in row-major order in float64, as filter2D's direct loop (a 5x5 kernel: 21 shifted
    multiply-adds, several times faster than a float64 depthwise conv2d on CPU)."""
    kernel = disk_kernel(*c)
    r = (kernel.shape[0] - 1) // 2
    h, w = x.shape[-2:]
    padded = F.pad(x, (r, r, r, r), mode="reflect")
    out = torch.zeros_like(x)
    for (i, j), weight in zip(kernel.nonzero().tolist(), kernel[kernel != 0].tolist()):
        out.add_(padded[..., i : i + h, j : j + w], alpha=weight)
    return out.clamp(0, 1)


def contrast(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """(x - m) c + m with m the per-image, per-channel mean, in float64 (reference `contrast`)."""
    means = x.mean(dim=(2, 3), keepdim=True)
    return ((x - means) * c + means).clamp(0, 1)


def brightness(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """HSV value + c, clipped: skimage rgb2hsv / hsv2rgb step for step in float64 (reference `brightness`)."""
    hsv = filters.rgb_to_hsv(x)
    hsv[:, 2] = (hsv[:, 2] + c).clamp(0, 1)
    return filters.hsv_to_rgb(hsv).clamp(0, 1)


def saturate(x: torch.Tensor, c: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """HSV saturation * c0 + c1, clipped: skimage rgb2hsv / hsv2rgb in float64 (reference `saturate`)."""
    hsv = filters.rgb_to_hsv(x)
    hsv[:, 1] = (hsv[:, 1] * c[0] + c[1]).clamp(0, 1)
    return filters.hsv_to_rgb(hsv).clamp(0, 1)


def _bilinear(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample x (B, C, H, W) bilinearly at pixel coordinates (ys, xs) (B, H, W), the signal extended
    by boundary `mode`: "mirror" (reflect-101) or "reflect" (half-sample symmetric). Interpolating the
    extended signal equals interpolating at the reflected coordinate, which is grid_sample's
    reflection padding (about the edge pixels' centres with align_corners, else their outer edges)."""
    h, w = x.shape[-2:]
    align = mode == "mirror"
    if align:
        grid = torch.stack([xs * (2 / (w - 1)) - 1, ys * (2 / (h - 1)) - 1], dim=-1)
    else:
        grid = torch.stack([(2 * xs + 1) / w - 1, (2 * ys + 1) / h - 1], dim=-1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection", align_corners=align)


def _warp_affine(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """cv2.warpAffine(x, M, (W, H), borderMode=BORDER_REFLECT_101) for float images: each output
    pixel samples the input at M^-1 (x, y), with OpenCV's coordinates rounded to 1/32 pixel
    (10-bit accumulation, 5 interpolation bits) and bilinear weights on that grid."""
    b, _, h, w = x.shape
    full = torch.cat([m, torch.tensor([0.0, 0.0, 1.0], dtype=m.dtype, device=m.device).expand(b, 1, 3)], dim=1)
    inv = torch.linalg.inv(full)[:, :2]  # (B, 2, 3)
    xs = torch.arange(w, dtype=torch.float64, device=x.device)
    ys = torch.arange(h, dtype=torch.float64, device=x.device)
    scale = 1 << 10
    coords = []
    for row in (0, 1):
        a = torch.round(inv[:, row, 0, None] * xs * scale)[:, None, :]  # per column
        b0 = torch.round((inv[:, row, 1, None] * ys + inv[:, row, 2, None]) * scale)[:, :, None] + 16  # per row
        coords.append(torch.floor((a + b0) / 32) / 32)  # arithmetic >> 5: position in 1/32 pixel
    return _bilinear(x, coords[1], coords[0], "mirror")


def elastic_transform(x: torch.Tensor, c: tuple[float, float, float], g: torch.Generator) -> torch.Tensor:
    """Reference `elastic_transform` (after erniejunior's gist): a random affine warp moving three
    points by U(-c2, c2) (cv2.warpAffine), then a smooth random displacement field, U(-1, 1) blurred
    with sigma c1 (skimage gaussian, mode 'reflect', truncate 3) times c0, sampled bilinearly
    (scipy map_coordinates order 1, mode 'reflect'); c are fractions of the image size. The image
    is float32, as there."""
    b, _, h, w = x.shape
    alpha, sigma, shift = (h * f for f in c)
    centre, half = h // 2, min(h, w) // 3
    pts1 = torch.tensor([[centre + half, centre + half], [centre + half, centre - half], [centre - half, centre - half]],
                        dtype=torch.float64, device=x.device)
    noise = torch.empty((b, 3, 2), dtype=torch.float64, device=x.device).uniform_(-shift, shift, generator=g)
    pts2 = pts1 + noise.float().double()  # the reference casts the offsets to float32
    # cv2.getAffineTransform: the 2x3 M with M (x, y, 1) = pts2 for the three (x, y) of pts1
    src = torch.cat([pts1, torch.ones(3, 1, dtype=torch.float64, device=x.device)], dim=1)
    m = torch.linalg.solve(src, pts2).transpose(1, 2)  # (B, 2, 3)
    x = _warp_affine(x.float(), m)
    fields = torch.empty((b, 2, h, w), device=x.device).uniform_(-1, 1, generator=g).double()  # drawn in float32: 3x faster
    dx, dy = (filters.gaussian(fields, sigma, mode="reflect", truncate=3) * alpha).float().double().unbind(1)
    ys = torch.arange(h, device=x.device, dtype=torch.float64)[None, :, None] + dy
    xs = torch.arange(w, device=x.device, dtype=torch.float64)[None, None, :] + dx
    return _bilinear(x, ys, xs, "reflect").clamp(0, 1)


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
    h = (x255.double() @ wx.T).add_(half).div_(1 << precision).floor_().clamp_(0, 255)
    vertical = h.transpose(-1, -2) @ wy.T  # one matrix product over all rows, not one per image
    return vertical.transpose(-1, -2).add_(half).div_(1 << precision).floor_().clamp_(0, 255)


def pixelate(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """PIL BOX resize to int(size c) and back (reference `x.resize(..., PILImage.BOX)` twice)."""
    h, w = x.shape[2:]
    x255 = torch.round(x * 255)
    small = _pil_resize_box(x255, int(h * c), int(w * c))
    return (_pil_resize_box(small, h, w) / 255).to(x.dtype)


def _scan(jpeg: bytes) -> tuple[bytes, bytes]:
    """Split a baseline JPEG file into its header (through the SOS segment) and entropy-coded scan."""
    sos = jpeg.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(jpeg[sos + 2 : sos + 4], "big")
    return jpeg[:start], jpeg[start : jpeg.rindex(b"\xff\xd9")]


def _jpeg_files(images: np.ndarray, quality: int) -> list[bytes]:
    """The file Pillow writes for each (H, W, 3) uint8 image with `save(..., "JPEG", quality=q)`,
    byte for byte, from one encoder call: the images stacked into one tall image (H, W multiples of
    the 16-px 4:2:0 MCU, so no MCU spans two images) with a restart marker after each image's MCUs.
    Colour conversion, subsampling, DCT and quantisation are local to an MCU and a restart resets
    the DC predictions, so each restart interval is exactly the scan of that image encoded alone;
    it gets the header of a single-image file."""
    b, h, w, _ = images.shape
    buffer = io.BytesIO()
    Image.fromarray(images.reshape(b * h, w, 3)).save(buffer, "JPEG", quality=quality, restart_marker_blocks=(h // 16) * (w // 16))
    single = io.BytesIO()
    Image.fromarray(images[0]).save(single, "JPEG", quality=quality)
    header = _scan(single.getvalue())[0]
    return [header + scan + b"\xff\xd9" for scan in re.split(rb"\xff[\xd0-\xd7]", _scan(buffer.getvalue())[1])]


def jpeg_compression(x: torch.Tensor, c: int, g: torch.Generator) -> torch.Tensor:
    """Encode as JPEG at quality c and decode (reference `x.save(output, 'JPEG', quality=c)` then
    `PILImage.open(output)`): Pillow's files (`_jpeg_files`), decoded image by image by libjpeg-turbo
    through simplejpeg (the decoder Pillow uses, without its per-file parsing)."""
    b, _, h, w = x.shape
    if h % 16 or w % 16:
        raise ValueError(f"jpeg_compression needs image sides that are multiples of 16, got {h}x{w}")
    images = torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
    per_file = 65500 // h  # libjpeg's largest side (JPEG_MAX_DIMENSION)
    files = [f for start in range(0, b, per_file) for f in _jpeg_files(images[start : start + per_file], int(c))]
    return torch.from_numpy(np.stack([simplejpeg.decode_jpeg(f) for f in files])).permute(0, 3, 1, 2).to(x.device, x.dtype) / 255
