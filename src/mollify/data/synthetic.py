"""The embedded demo dataset: 32x32 RGB images of ten shapes, generated from a seed.

A class is a shape (not a colour or a pixel statistic). Every image draws its own pose (rotation
over the full circle, scale, aspect, position), its own foreground colour and shading, and a
textured background of random gratings, so that a small CNN needs a few epochs to reach high but
not perfect accuracy and standard corruptions (noise, blur, contrast, ...) measurably hurt it.
Shapes are chosen to stay distinct under any rotation (no "+" vs "x").
"""

from __future__ import annotations

import math

import numpy as np
import torch

CLASS_NAMES = ("disk", "square", "triangle", "cross", "ring", "star", "crescent", "corner", "bars", "frame")
IMAGE_SIZE = 32
_SUPERSAMPLE = 2  # render at 2x and average: anti-aliased edges


def _shape_masks(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-tests of the ten shapes on local coordinates (B, S, S) -> (10, B, S, S) bool."""
    r = torch.sqrt(u**2 + v**2)
    theta = torch.atan2(v, u)
    a, b = u.abs(), v.abs()
    tri = (v > -0.45) & (v < 0.8 - 1.732 * a * 0.9)  # apex up, flat base
    return torch.stack(
        [
            r < 0.75,
            torch.maximum(a, b) < 0.65,
            tri,
            ((a < 0.22) & (b < 0.85)) | ((b < 0.22) & (a < 0.85)),
            (r > 0.5) & (r < 0.85),
            r < 0.52 + 0.33 * torch.cos(5 * theta),
            (r < 0.8) & (torch.sqrt((u - 0.38) ** 2 + v**2) > 0.62),
            ((u > -0.7) & (u < 0.7) & (v > 0.35) & (v < 0.75)) | ((u > -0.7) & (u < -0.3) & (v > -0.75) & (v < 0.75)),
            (a < 0.8) & (((v - 0.42).abs() < 0.17) | ((v + 0.42).abs() < 0.17)),
            (torch.maximum(a, b) > 0.45) & (torch.maximum(a, b) < 0.78),
        ]
    )


# Out-of-distribution classes for the demo's OOD evaluation: shapes the ten classes never contain
NOVEL_CLASS_NAMES = ("half_disk", "three_dots", "arrow", "checker")


def _novel_shape_masks(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-tests of the four novel shapes (same local coordinates as _shape_masks)."""
    r = torch.sqrt(u**2 + v**2)
    a, b = u.abs(), v.abs()
    dots = torch.zeros_like(r, dtype=torch.bool)
    for angle in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3):
        dots |= torch.sqrt((u - 0.5 * math.cos(angle)) ** 2 + (v - 0.5 * math.sin(angle)) ** 2) < 0.25
    return torch.stack(
        [
            (r < 0.75) & (v > 0),
            dots,
            ((a < 0.15) & (v > -0.8) & (v < 0.2)) | ((v >= 0.1) & (v < 0.8 - 1.4 * a)),
            (torch.maximum(a, b) < 0.7) & ((u > 0) ^ (v > 0)),
        ]
    )


def _stroke(n: int, g: torch.Generator, yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
    """Coverage (B, 1, H, W) of a random line segment, 4-10 px long and 1-2 px wide."""
    start = (torch.rand(n, 2, generator=g) - 0.5) * IMAGE_SIZE
    angle = torch.rand(n, generator=g) * 2 * math.pi
    length = 4 + 6 * torch.rand(n, generator=g)
    width = 0.5 + 0.5 * torch.rand(n, generator=g)
    direction = torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    px, py = xx[None] - start[:, 0, None, None], yy[None] - start[:, 1, None, None]
    along = (px * direction[:, 0, None, None] + py * direction[:, 1, None, None]).clamp(min=0)
    along = torch.minimum(along, length[:, None, None])
    dist2 = (px - along * direction[:, 0, None, None]) ** 2 + (py - along * direction[:, 1, None, None]) ** 2
    coverage = (dist2 < width[:, None, None] ** 2).float()
    return torch.nn.functional.avg_pool2d(coverage[:, None], _SUPERSAMPLE)


def _render(labels: torch.Tensor, g: torch.Generator, shapes=_shape_masks) -> torch.Tensor:
    """Render one chunk of images with the given labels (indices into `shapes`' masks): float
    (B, 3, H, W) in [0, 1]."""
    n = labels.shape[0]
    s = IMAGE_SIZE * _SUPERSAMPLE

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, *shape, generator=g)

    # pose: object half-size in pixels, aspect, rotation, centre offset
    half_size = uniform(6.0, 12.0)
    aspect = uniform(0.85, 1.15)
    angle = uniform(0.0, 2 * math.pi)
    centre = uniform(-6.0, 6.0, 2)
    grid = (torch.arange(s, dtype=torch.float32) + 0.5) / _SUPERSAMPLE - IMAGE_SIZE / 2
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    dx = xx[None] - centre[:, 0, None, None]
    dy = yy[None] - centre[:, 1, None, None]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    u = (cos * dx + sin * dy) / (half_size * aspect)[:, None, None]
    v = (-sin * dx + cos * dy) / (half_size / aspect)[:, None, None]
    masks = shapes(u, v)
    alpha = masks[labels, torch.arange(n)].float()
    alpha = torch.nn.functional.avg_pool2d(alpha[:, None], _SUPERSAMPLE)  # (B, 1, H, W)

    # colours: foreground and background on opposite sides of mid-grey so the shape stays visible
    # (the ranges overlap: some images have little contrast, as natural photos do)
    fg_light = torch.rand(n, generator=g) < 0.5
    light, dark = uniform(0.45, 1.0, 3), uniform(0.0, 0.55, 3)
    dark2 = uniform(0.0, 0.55, 3)
    light2 = uniform(0.45, 1.0, 3)
    fg = torch.where(fg_light[:, None], light, dark)
    bg1 = torch.where(fg_light[:, None], dark, light2)
    bg2 = torch.where(fg_light[:, None], dark2, light)

    # background texture: a sum of three random gratings, squashed to a blend weight
    pix = torch.arange(IMAGE_SIZE, dtype=torch.float32)
    py, px = torch.meshgrid(pix, pix, indexing="ij")
    texture = torch.zeros(n, IMAGE_SIZE, IMAGE_SIZE)
    for _ in range(3):
        freq = uniform(0.5, 4.0) * 2 * math.pi / IMAGE_SIZE
        orient = uniform(0.0, math.pi)
        phase = uniform(0.0, 2 * math.pi)
        proj = torch.cos(orient)[:, None, None] * px + torch.sin(orient)[:, None, None] * py
        texture += torch.sin(freq[:, None, None] * proj + phase[:, None, None])
    weight = torch.sigmoid(1.5 * texture)[:, None]
    background = bg1[:, :, None, None] * weight + bg2[:, :, None, None] * (1 - weight)

    # foreground shading: a linear gradient across the object
    shade_dir = uniform(0.0, 2 * math.pi)
    shade = 1.0 + 0.15 * (torch.cos(shade_dir)[:, None, None] * px + torch.sin(shade_dir)[:, None, None] * py - IMAGE_SIZE) / IMAGE_SIZE
    foreground = fg[:, :, None, None] * shade[:, None]

    # clutter: thin strokes of random colour, three behind the shape and one in front of it
    strokes = [_stroke(n, g, yy, xx) for _ in range(4)]
    stroke_colours = [uniform(0.0, 1.0, 3)[:, :, None, None] for _ in strokes]
    for stroke, colour in zip(strokes[:3], stroke_colours[:3]):
        background = stroke * colour + (1 - stroke) * background
    image = alpha * foreground + (1 - alpha) * background
    image = strokes[3] * stroke_colours[3] + (1 - strokes[3]) * image
    image = image + 0.03 * torch.randn(image.shape, generator=g)
    return image.clamp(0, 1)


def generate(n: int, seed: int, chunk: int = 1000, novel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`n` images with balanced, shuffled labels: uint8 (n, 3, 32, 32) and int64 (n,); with
    `novel`, of the NOVEL_CLASS_NAMES instead (out-of-distribution images, the same rendering)."""
    g = torch.Generator().manual_seed(seed)
    names, shapes = (NOVEL_CLASS_NAMES, _novel_shape_masks) if novel else (CLASS_NAMES, _shape_masks)
    labels = torch.arange(n) % len(names)
    labels = labels[torch.randperm(n, generator=g)]
    images = torch.cat([_render(labels[i : i + chunk], g, shapes) for i in range(0, n, chunk)])
    images = (images * 255).round().to(torch.uint8)
    return images.numpy(), labels.numpy().astype(np.int64)


def generate_at(n: int, seed: int, size: int) -> np.ndarray:
    """`n` demo images resized bilinearly from 32 px to `size` px: uint8 (n, 3, size, size), for
    tests and benchmarks of the 64-px (Tiny-ImageNet) corruption tables."""
    return resize(generate(n, seed)[0], size)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, C, H, W) resized bilinearly to `size` px (unchanged at the same size)."""
    if images.shape[-1] == size:
        return images
    x = torch.nn.functional.interpolate(torch.from_numpy(images).float(), size=(size, size), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).numpy()
