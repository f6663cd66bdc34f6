"""Batched torch equivalents of the image-processing calls the reference generator makes.

Each helper names the scikit-image / SciPy / OpenCV / ImageMagick call it reproduces; they work on
(B, C, H, W) or (B, H, W) float tensors on any device. Linear filters with boundary handling are
built as dense (n, n) matrices, so any kernel radius and any boundary mode is one matmul per axis.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def fold(index: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Map indices outside 0..n-1 back inside, as the boundary `mode` extends the signal."""
    if mode == "nearest":  # scipy 'nearest', OpenCV BORDER_REPLICATE: a a | a b c | c c
        return index.clamp(0, n - 1)
    if mode == "reflect":  # scipy 'reflect' (half-sample symmetric): b a | a b c | c b
        m = index % (2 * n)
        return torch.where(m >= n, 2 * n - 1 - m, m)
    if mode == "mirror":  # scipy 'mirror', OpenCV BORDER_REFLECT_101: c b | a b c | b a
        if n == 1:
            return torch.zeros_like(index)
        m = index % (2 * n - 2)
        return torch.where(m >= n, 2 * n - 2 - m, m)
    raise ValueError(f"unknown boundary mode {mode!r}")


def filter_matrix(n: int, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """(n, n) matrix A with A @ signal = the centred correlation of the signal with `kernel`
    (odd length) under boundary `mode`; the boundary taps are folded into the matrix."""
    r = (kernel.numel() - 1) // 2
    rows = torch.arange(n)[:, None].expand(n, kernel.numel())
    cols = fold(rows + torch.arange(-r, r + 1)[None], n, mode)
    a = torch.zeros(n, n, dtype=torch.float64)
    return a.index_put_((rows, cols), kernel.double()[None].expand(n, -1), accumulate=True)


def separable(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Correlate the last two axes of x with `kernel` along each (a separable 2-D filter)."""
    ah = filter_matrix(x.shape[-2], kernel, mode).to(x)
    aw = ah if x.shape[-1] == x.shape[-2] else filter_matrix(x.shape[-1], kernel, mode).to(x)
    return ah @ x @ aw.T


def gaussian_kernel(sigma: float, radius: int) -> torch.Tensor:
    """Normalised Gaussian weights at -radius..radius (scipy gaussian_filter1d, cv2 getGaussianKernel)."""
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian(x: torch.Tensor, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> torch.Tensor:
    """skimage.filters.gaussian over the two spatial axes (channels untouched); scipy skips
    sigma 0. Default mode 'nearest' as in skimage."""
    if sigma <= 1e-15:
        return x
    return separable(x, gaussian_kernel(sigma, int(truncate * sigma + 0.5)), mode)


def zoom_matrix(n: int, zoom: float) -> torch.Tensor:
    """The reference `clipped_zoom` along one axis as an (n, n) matrix: take the centre
    ceil(n / zoom) pixels, scipy.ndimage.zoom(order=1) them to round(ceil(n / zoom) zoom) pixels
    (scipy maps output i to input i (in - 1) / (out - 1)), and keep the centre n."""
    crop = int(math.ceil(n / zoom))
    top = (n - crop) // 2
    out = int(round(crop * zoom))
    trim = (out - n) // 2
    coord = torch.arange(trim, trim + n, dtype=torch.float64) * ((crop - 1) / (out - 1) if out > 1 else 0.0)
    i0 = coord.floor().clamp(0, crop - 1)
    frac = coord - i0
    i1 = (i0 + 1).clamp(max=crop - 1)
    m = torch.zeros(n, n, dtype=torch.float64)
    rows = torch.arange(n)
    m.index_put_((rows, top + i0.long()), 1 - frac, accumulate=True)
    return m.index_put_((rows, top + i1.long()), frac, accumulate=True)


def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """The reference `clipped_zoom(img, zoom)` on the last two (square) axes."""
    m = zoom_matrix(x.shape[-1], zoom).to(x)
    return m @ x @ m.T


def motion_blur(x: torch.Tensor, radius: float, sigma: float, angle: torch.Tensor) -> torch.Tensor:
    """ImageMagick's MotionBlurImage(radius, sigma, angle in degrees, one per image), no Wand needed.

    ImageMagick (effect.c) uses width = 2 ceil(radius) + 1 taps with weights exp(-i^2 / 2 sigma^2),
    i = 0..width-1, normalised, at offsets (ceil(i cos a - 0.5), ceil(i sin a - 0.5)) from the
    pixel along the blur direction, and the edge virtual pixel method (replicate) outside the image.
    Each tap is one indexing of a strided view holding every shift of the edge-padded image (no
    copy) by the per-image offsets. Summed in float32: against float64, about 1 value in 10^5 of
    the 8-bit output moves by 1.
    """
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    width = 2 * int(math.ceil(radius)) + 1
    i = torch.arange(width, dtype=torch.float64)
    weights = torch.exp(-(i**2) / (2 * sigma**2))
    weights = (weights / weights.sum()).tolist()
    a = torch.deg2rad(angle.double())[:, None]
    p = width  # offsets lie in -p..p
    off_x = torch.ceil(i.to(a) * torch.cos(a) - 0.5).long() + p  # (B, width), shifted to 0..2p
    off_y = torch.ceil(i.to(a) * torch.sin(a) - 0.5).long() + p
    padded = F.pad(x.reshape(b, -1, h, w).float(), (p, p, p, p), mode="replicate")
    c, ph, pw = padded.shape[1:]
    # shifts[n, dy + p, dx + p] = padded[n, :, p + dy : p + dy + h, p + dx : p + dx + w]
    shifts = padded.as_strided((b, 2 * p + 1, 2 * p + 1, c, h, w), (c * ph * pw, pw, 1, ph * pw, pw, 1))
    images = torch.arange(b, device=x.device)
    out = torch.zeros(b, c, h, w, device=x.device)
    for k in range(width):
        out.add_(shifts[images, off_y[:, k], off_x[:, k]], alpha=weights[k])
    return out.reshape(x.shape).to(x.dtype)


def imagemagick_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """ImageMagick's 8-bit output of a filtered 0..255 value: rounded to its 16-bit quantum
    (x 257), then truncated to 8 bits (the reference's PNG round trip through Wand)."""
    return torch.floor(torch.round(x * 257).clamp(0, 65535) / 257)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """skimage.color.rgb2hsv on (B, 3, H, W), step for step (hue 0 and saturation 0 where grey)."""
    r, g, b = x.unbind(1)
    v = x.amax(dim=1)
    delta = v - x.amin(dim=1)
    grey = delta == 0
    s = torch.where(grey, torch.zeros_like(v), delta / torch.where(grey, torch.ones_like(v), v))
    safe = torch.where(grey, torch.ones_like(delta), delta)
    h = torch.zeros_like(v)
    h = torch.where(r == v, (g - b) / safe, h)  # later matches overwrite earlier ones, as in skimage
    h = torch.where(g == v, 2.0 + (b - r) / safe, h)
    h = torch.where(b == v, 4.0 + (r - g) / safe, h)
    h = torch.where(grey, torch.zeros_like(h), torch.remainder(h / 6.0, 1.0))
    return torch.stack([h, s, v], dim=1)


# hsv2rgb's choice per hue sector 0..5 of (v, t, p, q) for r, g and b: r = v q p p t v, and so on.
_SECTOR_PICKS = torch.tensor([[0, 3, 2, 2, 1, 0], [1, 0, 0, 3, 2, 2], [2, 2, 1, 0, 0, 3]])


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """skimage.color.hsv2rgb on (B, 3, H, W), step for step."""
    h, s, v = hsv.unbind(1)
    hi = torch.floor(h * 6)
    f = h * 6 - hi
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    picks = _SECTOR_PICKS.to(hsv.device)[:, hi.long() % 6]  # (3, B, H, W)
    return torch.stack([v, t, p, q], dim=1).gather(1, picks.transpose(0, 1))


def box_blur3(x: torch.Tensor) -> torch.Tensor:
    """cv2.blur(x, (3, 3)): the 3x3 mean with BORDER_REFLECT_101."""
    return separable(x, torch.full((3,), 1 / 3, dtype=torch.float64), "mirror")


def canny(img: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """cv2.Canny(img, low, high) on uint8-valued (B, H, W): 3x3 Sobel (BORDER_REPLICATE), L1
    magnitude, OpenCV's non-maximum suppression (22.5-degree sectors in fixed point, zero
    magnitude outside the image), then hysteresis with 8-connectivity. Returns a bool edge map."""
    p = F.pad(img[:, None].float(), (1, 1, 1, 1), mode="replicate")[:, 0].int()  # int32: |values| < 2^27 below
    across, down = p[:, :, 2:] - p[:, :, :-2], p[:, 2:] - p[:, :-2]  # Sobel: differences, then 1 2 1
    dx = across[:, :-2] + 2 * across[:, 1:-1] + across[:, 2:]
    dy = down[:, :, :-2] + 2 * down[:, :, 1:-1] + down[:, :, 2:]
    mag = dx.abs() + dy.abs()
    m = F.pad(mag, (1, 1, 1, 1))  # zero magnitude around the image

    def at(di: int, dj: int) -> torch.Tensor:
        return m[:, 1 + di : m.shape[1] - 1 + di, 1 + dj : m.shape[2] - 1 + dj]

    shift = 15
    tg22 = int(0.4142135623730950488016887242097 * (1 << shift) + 0.5)
    ax, ay = dx.abs(), dy.abs() << shift
    tg22x = ax * tg22
    tg67x = tg22x + (ax << (shift + 1))
    s = torch.where((dx ^ dy) < 0, -1, 1)
    horizontal = (mag > at(0, -1)) & (mag >= at(0, 1))
    vertical = (mag > at(-1, 0)) & (mag >= at(1, 0))
    diag_pos = (mag > at(-1, -1)) & (mag > at(1, 1))  # s = +1
    diag_neg = (mag > at(-1, 1)) & (mag > at(1, -1))  # s = -1
    diagonal = torch.where(s > 0, diag_pos, diag_neg)
    maximum = torch.where(ay < tg22x, horizontal, torch.where(ay > tg67x, vertical, diagonal))
    candidate = (mag > int(math.floor(low))) & maximum
    edges = candidate & (mag > int(math.floor(high)))
    while True:
        grown = candidate & _dilate3(edges)
        if torch.equal(grown, edges):
            return edges
        edges = grown


def _dilate3(mask: torch.Tensor) -> torch.Tensor:
    """3x3 binary dilation of a bool (B, H, W) map (8-connectivity), nothing from outside."""
    rows = mask.clone()
    rows[:, :, 1:] |= mask[:, :, :-1]
    rows[:, :, :-1] |= mask[:, :, 1:]
    out = rows.clone()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def distance_transform_l2_5(zero: torch.Tensor, cap: float) -> torch.Tensor:
    """cv2.distanceTransform(img, DIST_L2, 5), capped at `cap`: the 5x5 chamfer distance to the
    nearest zero pixel (`zero` is a bool (B, H, W) map), OpenCV's steps 1, 1.4, 2.1969 in 16-bit
    fixed point, nothing propagated from outside the image, by OpenCV's two raster passes (top-down
    with the upper half of the mask, then bottom-up with the lower half). Each row is one batched
    step: the moves from the two rows before it, then the move along the row as a min-plus prefix
    scan, min_j (s_j + a |x - j|) = a x + cummin_j (s_j - a j)."""
    one = 1 << 16
    a, b, c = one, round(1.4 * one), round(2.1969 * one)
    upper = ((-2, -1, c), (-2, 1, c), (-1, -2, c), (-1, -1, b), (-1, 0, a), (-1, 1, b), (-1, 2, c))
    far = 1 << 40
    batch, h, w = zero.shape
    d = torch.full((batch, h + 4, w + 4), far, dtype=torch.long, device=zero.device)
    d[:, 2:-2, 2:-2] = torch.where(zero, 0, far)
    ramp = torch.arange(w, device=zero.device) * a
    for sign, rows in ((1, range(2, h + 2)), (-1, range(h + 1, 1, -1))):
        for y in rows:
            row = d[:, y, 2:-2]
            for dy, dx, step in upper:
                row = torch.minimum(row, d[:, y + sign * dy, 2 + sign * dx : 2 + sign * dx + w] + step)
            if sign > 0:
                row = ramp + torch.cummin(row - ramp, dim=1).values
            else:
                row = torch.cummin((row + ramp).flip(1), dim=1).values.flip(1) - ramp
            d[:, y, 2:-2] = row
    return (d[:, 2:-2, 2:-2].double() / one).clamp(max=cap)


def equalize_hist(img: torch.Tensor) -> torch.Tensor:
    """cv2.equalizeHist on uint8-valued (B, H, W): the lowest occupied level maps to 0 and level i to
    round(cdf(i) 255 / (N - count(lowest))) in float32, as OpenCV's lookup table."""
    b = img.shape[0]
    levels = img.reshape(b, -1).long()
    hist = torch.zeros(b, 256, dtype=torch.long, device=img.device).scatter_add_(1, levels, torch.ones_like(levels))
    total = levels.shape[1]
    lowest = (hist > 0).float().argmax(dim=1, keepdim=True)
    count_lowest = hist.gather(1, lowest)
    scale = (torch.tensor(255.0, dtype=torch.float32) / (total - count_lowest).clamp_min(1).float())
    cdf = hist.cumsum(1) - count_lowest  # sums of counts above the lowest level
    lut = torch.round(cdf.float() * scale).clamp(0, 255)
    lut = torch.where(torch.arange(256, device=img.device)[None] <= lowest, 0.0, lut)
    lut = torch.where(count_lowest == total, lowest.float().expand(-1, 256), lut)  # a flat image keeps its level
    return lut.gather(1, levels).reshape(img.shape).to(img.dtype)
