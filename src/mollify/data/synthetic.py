"""The embedded demo dataset: 32x32 RGB images of ten classes, generated from a seed.

The default design (`cifar_like`) is built so that a standard-trained network, trained at the
study's scale, keeps a clean error of several percent and its errors over the 15 CIFAR-10-C
corruptions rank as a standard CIFAR-10 model's do on CIFAR-10-C (the data criterion of
mollify.report.profile): the class lives partly in the coarse shape and partly in fine, faint
detail near the pixel scale, the high frequencies that standard CIFAR models rely on, so that noise,
glass blur and impulse noise hurt most and brightness, fog and contrast least.

A class is one of five shapes (disk, square, triangle, cross, ring) carrying one of two fine
surface textures (stripes or a checker of period `Design.period` px): a network must resolve the
texture to tell the two classes of a shape apart. The texture's amplitude is uniform on
`Design.detail`, from 0: on some images it is too faint to tell, which gives the task an
irreducible error, as ambiguous photos give CIFAR-10 one. Every image draws its own pose (rotation
over the full circle, scale, aspect, position), colours, texture phase and orientation, a
dead-leaves background (occluding disks with radius density r^-3, which gives the 1/f amplitude
spectrum of natural images), and the exposure of a photo: whole-image contrast and brightness and a
smooth grey illumination field, so that no colour or pixel statistic gives the class away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SHAPE_NAMES = ("disk", "square", "triangle", "cross", "ring")
TEXTURE_NAMES = ("striped", "checkered")
# class = 2 x shape + texture
CLASS_NAMES = tuple(f"{texture} {shape}" for shape in SHAPE_NAMES for texture in TEXTURE_NAMES)
IMAGE_SIZE = 32
_SUPERSAMPLE = 2  # render at 2x and average: anti-aliased edges


@dataclass(frozen=True)
class Design:
    """The knobs of the rendering; the defaults are the design that came closest to the data criterion
    (docs/demo.md lists the designs tried and what each reached)."""

    half_size: tuple[float, float] = (8.0, 13.0)  # object half-size in px
    period: tuple[float, float] = (2.0, 2.8)  # fine texture period in px
    detail: tuple[float, float] = (0.0, 0.5)  # texture amplitude (intensities in [0, 1])
    object_contrast: tuple[float, float] = (0.25, 0.5)  # |object colour - background colour|, per channel mean
    leaves: int = 16  # dead-leaves disks of the background
    leaf_radius: tuple[float, float] = (1.0, 14.0)  # their radius range in px (density r^-3)
    leaf_spread: float = 0.1  # std of a leaf's colour around the image's background colour
    global_contrast: tuple[float, float] = (0.3, 1.0)  # whole-image contrast factor around each channel's mean
    # (log-uniform): photos vary in exposure and haze
    brightness: float = 0.05  # whole-image brightness shift, uniform in +- this
    noise: float = 0.01  # sensor noise std
    shading: float = 0.3  # smooth grey illumination field (bilinear from 4 x 4 draws in [-1, 1]) times a
    # uniform amplitude in [0, this]: uneven lighting


DEFAULT_DESIGN = Design()
# The designs that params.yaml's `data.demo.design` names (mollify.config checks the name)
DESIGNS = {
    # meets the data criterion at the study's scale (docs/demo.md, "The data and its criterion")
    "cifar_like": DEFAULT_DESIGN,
    # coarser, stronger texture, no shading: learned in the quick demo's schedule (3,600 images x 8
    # epochs), where `cifar_like` is not; its corruption profile misses the criterion
    "quick": Design(period=(2.5, 3.5), detail=(0.3, 0.45), global_contrast=(0.6, 1.0), shading=0.0),
}


def _shape_masks(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-tests of ten shapes on local coordinates (B, S, S) -> (10, B, S, S) bool; the classes use
    the first five (SHAPE_NAMES), the OOD test checks its novel shapes against all ten."""
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


def leaf_radius(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Radii with density proportional to r^-3 on [lo, hi] (scale-invariant dead leaves, whose images
    have a 1/f amplitude spectrum) from uniform `u` in [0, 1], by the inverse CDF:
    F(r) = (lo^-2 - r^-2) / (lo^-2 - hi^-2)."""
    return (lo**-2 - u * (lo**-2 - hi**-2)) ** -0.5


def _dead_leaves(n: int, g: torch.Generator, yy: torch.Tensor, xx: torch.Tensor, base: torch.Tensor,
                 design: Design) -> torch.Tensor:
    """(B, 3, H, W) dead-leaves background around colours `base` (B, 3) on the pixel grid `yy`, `xx`:
    `design.leaves` disks, each drawn over the earlier ones, radius r with density r^-3 on
    `design.leaf_radius` (inverse CDF)."""
    lo, hi = design.leaf_radius
    image = base[:, :, None, None].expand(n, 3, *yy.shape).clone()
    for _ in range(design.leaves):
        radius = leaf_radius(torch.rand(n, generator=g), lo, hi)
        centre = (torch.rand(n, 2, generator=g) - 0.5) * (IMAGE_SIZE + 2 * radius[:, None])
        colour = (base + design.leaf_spread * torch.randn(n, 3, generator=g)).clamp(0, 1)
        inside = (xx[None] - centre[:, 0, None, None]) ** 2 + (yy[None] - centre[:, 1, None, None]) ** 2 < radius[:, None, None] ** 2
        image = torch.where(inside[:, None], colour[:, :, None, None], image)
    return image


def _render(labels: torch.Tensor, g: torch.Generator, design: Design, novel: bool = False) -> torch.Tensor:
    """Render one chunk of images with the given labels: float (B, 3, H, W) in [0, 1]. Class c is shape
    c // 2 of _shape_masks with texture c % 2; with `novel`, shape c of _novel_shape_masks with a
    random texture."""
    n = labels.shape[0]
    s = IMAGE_SIZE * _SUPERSAMPLE

    def uniform(bounds: tuple[float, float], *shape: int) -> torch.Tensor:
        lo, hi = bounds
        return lo + (hi - lo) * torch.rand(n, *shape, generator=g)

    # pose: object half-size in pixels, aspect, rotation, centre offset
    half_size = uniform(design.half_size)
    aspect = uniform((0.85, 1.15))
    angle = uniform((0.0, 2 * math.pi))
    centre = uniform((-7.0, 7.0), 2)
    grid = (torch.arange(s, dtype=torch.float32) + 0.5) / _SUPERSAMPLE - IMAGE_SIZE / 2
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    dx = xx[None] - centre[:, 0, None, None]
    dy = yy[None] - centre[:, 1, None, None]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    u = (cos * dx + sin * dy) / (half_size * aspect)[:, None, None]
    v = (-sin * dx + cos * dy) / (half_size / aspect)[:, None, None]
    if novel:
        shape, texture = labels, torch.rand(n, generator=g) < 0.5
        masks = _novel_shape_masks(u, v)
    else:
        shape, texture = labels // 2, labels % 2 == 1
        masks = _shape_masks(u, v)
    alpha = masks[shape, torch.arange(n)].float()[:, None]  # (B, 1, S, S)

    # background: dead leaves around one colour; the object's colour a random step away from it
    base = uniform((0.15, 0.85), 3)
    pixels = torch.arange(IMAGE_SIZE, dtype=torch.float32) + 0.5 - IMAGE_SIZE / 2
    background = _dead_leaves(n, g, *torch.meshgrid(pixels, pixels, indexing="ij"), base, design)  # at 1x: 4x cheaper
    background = background.repeat_interleave(_SUPERSAMPLE, 2).repeat_interleave(_SUPERSAMPLE, 3)
    sign = torch.where(torch.rand(n, 1, generator=g) < 0.5, -1.0, 1.0)
    step = uniform(design.object_contrast)[:, None] * sign + 0.08 * torch.randn(n, 3, generator=g)
    colour = (base + step).clamp(0.05, 0.95)

    # fine texture in the object's own frame (it turns with the object): stripes or a checker
    period = uniform(design.period)[:, None, None]
    phase = uniform((0.0, 2 * math.pi), 2)
    pu = (cos * dx + sin * dy) * 2 * math.pi / period + phase[:, 0, None, None]
    pv = (-sin * dx + cos * dy) * 2 * math.pi / period + phase[:, 1, None, None]
    pattern = torch.where(texture[:, None, None], math.sqrt(2) * torch.sin(pu) * torch.sin(pv), torch.sin(pu))
    amplitude = uniform(design.detail)[:, None, None]
    foreground = colour[:, :, None, None] + (amplitude * pattern)[:, None]

    image = alpha * foreground + (1 - alpha) * background
    image = torch.nn.functional.avg_pool2d(image, _SUPERSAMPLE)
    coarse = 2 * torch.rand(n, 1, 4, 4, generator=g) - 1
    field = torch.nn.functional.interpolate(coarse, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=True)
    image = image + uniform((0.0, design.shading))[:, None, None, None] * field
    lo, hi = design.global_contrast
    factor = torch.exp(uniform((math.log(lo), math.log(hi))))[:, None, None, None]
    mean = image.mean(dim=(2, 3), keepdim=True)  # per channel, as the contrast corruption
    image = (image - mean) * factor + mean + uniform((-design.brightness, design.brightness))[:, None, None, None]
    image = image + design.noise * torch.randn(image.shape, generator=g)
    return image.clamp(0, 1)


def generate(n: int, seed: int, chunk: int = 1000, novel: bool = False, design: Design = DEFAULT_DESIGN) -> tuple[np.ndarray, np.ndarray]:
    """`n` images with balanced, shuffled labels: uint8 (n, 3, 32, 32) and int64 (n,); with
    `novel`, of the NOVEL_CLASS_NAMES instead (out-of-distribution images, the same rendering)."""
    g = torch.Generator().manual_seed(seed)
    classes = len(NOVEL_CLASS_NAMES) if novel else len(CLASS_NAMES)
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=g)]
    images = torch.cat([_render(labels[i : i + chunk], g, design, novel) for i in range(0, n, chunk)])
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
