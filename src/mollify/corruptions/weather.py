"""Snow, frost, fog and spatter: (B, C, H, W) float in [0, 1] -> same, on any device.

Reimplementations of `snow`, `frost`, `fog` and `spatter` in hendrycks/robustness
`make_cifar_c.py` / `make_tinyimagenet_c.py`, batched over images.
"""

from __future__ import annotations

import importlib.metadata
import math
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from mollify.corruptions import filters
from mollify.errors import MollifyError

# The reference draws one of its first five frost photographs; they ship in the `imagecorruptions`
# wheel (identical files). Only the image files are read: the package itself is never imported.
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
FROST_SCALE = {32: 0.2, 64: 0.3}  # photo resize factor in make_cifar_c.py / make_tinyimagenet_c.py


def _grey(x: torch.Tensor) -> torch.Tensor:
    """cv2.cvtColor(x, COLOR_RGB2GRAY) for float images: (B, 1, H, W)."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def snow(x: torch.Tensor, c: tuple, g: torch.Generator) -> torch.Tensor:
    """Reference `snow`: a N(c0, c1) layer, clipped-zoomed by c2, zeroed below c3, truncated to
    uint8, ImageMagick motion blur (radius c4, sigma c5, angle ~ U(-135, -45)) back to uint8;
    the image is blended towards max(x, 1.5 grey + 0.5) with weight 1 - c6, and the layer is added
    both as is and rotated by 180 degrees."""
    b, _, h, w = x.shape
    layer = c[0] + c[1] * torch.randn((b, 1, h, w), generator=g, device=x.device).double()
    layer = filters.clipped_zoom(layer, c[2])
    layer = torch.where(layer < c[3], 0.0, layer)
    layer = torch.floor(layer.clamp(0, 1) * 255)
    angle = torch.empty(b, dtype=torch.float64, device=x.device).uniform_(-135, -45, generator=g)
    layer = (filters.imagemagick_to_uint8(filters.motion_blur(layer, c[4], c[5], angle)) / 255).float()
    x = x.float()  # the reference's np.array(x, dtype=np.float32) / 255.
    x = c[6] * x + (1 - c[6]) * torch.maximum(x, _grey(x) * 1.5 + 0.5)
    return (x + layer + layer.flip(-1, -2)).clamp(0, 1)


def _resize_linear(image: np.ndarray, scale: float) -> torch.Tensor:
    """cv2.resize(image, (0, 0), fx=scale, fy=scale) with INTER_LINEAR on uint8 (H, W, 3), bit for
    bit: output size round(n scale), source coordinate (i + 0.5) / scale - 0.5 clamped to the
    image, 11-bit fixed-point weights, and the rounding of OpenCV's vectorised vertical pass
    ((S0 >> 4) b0 >> 16) + ((S1 >> 4) b1 >> 16) + 2 >> 2. Returns (3, H', W') in 0..255."""

    def taps(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = (torch.arange(int(round(n * scale)), dtype=torch.float64) + 0.5) / scale - 0.5
        i0 = f.floor()
        frac = torch.where((i0 < 0) | (i0 >= n - 1), 0.0, f - i0)
        i0 = i0.clamp(0, n - 1).long()
        w1 = torch.round(frac * 2048).long()
        return i0, (i0 + 1).clamp(max=n - 1), w1

    x = torch.from_numpy(image.copy()).permute(2, 0, 1).long()
    c0, c1, wx = taps(x.shape[2])
    rows = x[:, :, c0] * (2048 - wx) + x[:, :, c1] * wx  # horizontal pass, exact integers
    r0, r1, wy = taps(x.shape[1])
    top = ((rows[:, r0] >> 4) * (2048 - wy)[:, None]) >> 16
    bottom = ((rows[:, r1] >> 4) * wy[:, None]) >> 16
    return ((top + bottom + 2) >> 2).double()


@lru_cache(maxsize=4)
def frost_layers(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The five frost photographs resized for `image_size`, padded to one (5, 3, H, W) uint8-valued
    tensor, and their (5, 2) sizes."""
    try:
        dist = importlib.metadata.distribution("imagecorruptions")
    except importlib.metadata.PackageNotFoundError:
        raise MollifyError("the frost photographs come from the `imagecorruptions` package: run `uv sync`.") from None
    photos = []
    for name in FROST_FILES:
        with Image.open(str(dist.locate_file(f"imagecorruptions/frost/{name}"))) as im:
            photos.append(_resize_linear(np.asarray(im.convert("RGB")), FROST_SCALE[image_size]))
    sizes = torch.tensor([p.shape[1:] for p in photos])
    stack = torch.zeros(len(photos), 3, int(sizes[:, 0].max()), int(sizes[:, 1].max()), dtype=torch.float64)
    for k, p in enumerate(photos):
        stack[k, :, : p.shape[1], : p.shape[2]] = p
    return stack, sizes


def frost(x: torch.Tensor, c: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """clip(c0 x + c1 frost) with a random crop of a random one of five frost photographs
    (reference `frost`; the crop's top-left corner is uniform over [0, size - crop))."""
    b, _, h, w = x.shape
    stack, sizes = frost_layers(w)
    stack, sizes = stack.to(x.device), sizes.to(x.device)
    pick = torch.randint(0, len(FROST_FILES), (b,), generator=g, device=x.device)
    room = sizes[pick] - torch.tensor([h, w], device=x.device)
    top_left = (torch.rand((b, 2), generator=g, device=x.device, dtype=torch.float64) * room).long()
    rows = (top_left[:, 0, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (top_left[:, 1, None] + torch.arange(w, device=x.device))[:, None, :]
    crops = stack[pick[:, None, None], :, rows, cols].permute(0, 3, 1, 2)  # (B, 3, H, W)
    return ((c[0] * torch.round(x * 255) + c[1] * crops).clamp(0, 255) / 255)


def plasma_fractal(b: int, mapsize: int, wibbledecay: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    """The reference `plasma_fractal` (diamond-square heightmap in [0, 1]) for b maps at once."""
    m = torch.zeros(b, mapsize, mapsize, dtype=torch.float64, device=device)
    step, wibble = mapsize, 100.0

    def wibbled(a: torch.Tensor) -> torch.Tensor:
        noise = torch.empty(a.shape, dtype=torch.float64, device=device).uniform_(-wibble, wibble, generator=g)
        return a / 4 + wibble * noise

    while step >= 2:
        half = step // 2
        corners = m[:, 0::step, 0::step]
        squares = corners + corners.roll(-1, 1)
        squares = squares + squares.roll(-1, 2)
        m[:, half::step, half::step] = wibbled(squares)
        centres, corners = m[:, half::step, half::step], m[:, 0::step, 0::step]
        m[:, 0::step, half::step] = wibbled(centres + centres.roll(1, 1) + corners + corners.roll(-1, 2))
        m[:, half::step, 0::step] = wibbled(centres + centres.roll(1, 2) + corners + corners.roll(-1, 1))
        step //= 2
        wibble /= wibbledecay
    m = m - m.amin(dim=(1, 2), keepdim=True)
    return m / m.amax(dim=(1, 2), keepdim=True)


def fog(x: torch.Tensor, c: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """x + c0 plasma (wibble decay c1), rescaled by max / (max + c0) (reference `fog`; the map is
    as large as the image, 32 or 64)."""
    b, _, h, w = x.shape
    max_val = x.amax(dim=(1, 2, 3), keepdim=True)
    size = 1 << math.ceil(math.log2(max(h, w)))
    plasma = plasma_fractal(b, size, c[1], g, x.device)[:, None, :h, :w]
    return ((x + c[0] * plasma) * max_val / (max_val + c[0])).clamp(0, 1)


def _liquid_mask(liquid: torch.Tensor) -> torch.Tensor:
    """The reference's water mask for a liquid layer truncated to uint8 (B, H, W): distance to its
    Canny edges (cv2 L2 5x5, truncated at 20), 3x3 box blur truncated to uint8, equalizeHist,
    emboss filter saturated to uint8, 3x3 box blur rounded to uint8; times the layer."""
    edges = filters.canny(liquid, 50, 150)
    dist = filters.distance_transform_l2_5(edges, cap=20.0)
    dist = torch.floor(filters.box_blur3(dist.float()).double())
    dist = filters.equalize_hist(dist)
    emboss = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]], device=liquid.device)
    padded = torch.nn.functional.pad(dist[:, None].float(), (1, 1, 1, 1), mode="reflect")  # BORDER_REFLECT_101
    dist = torch.nn.functional.conv2d(padded, emboss[None, None])[:, 0].clamp(0, 255).double()  # integers: exact in float32
    dist = torch.round(filters.box_blur3(dist))
    return liquid * dist


def spatter(x: torch.Tensor, c: tuple, g: torch.Generator) -> torch.Tensor:
    """Reference `spatter`: a N(c0, c1) layer, Gaussian-blurred (sigma c2) and zeroed below c3; mode
    c5 = 0 adds pale-turquoise water shaped by the layer's Canny edges (strength c4), mode 1 pastes
    mud brown where the blurred (sigma c4) mask of the layer exceeds 0.8."""
    b, _, h, w = x.shape
    liquid = c[0] + c[1] * torch.randn((b, h, w), generator=g, device=x.device).double()
    liquid = filters.gaussian(liquid, c[2])
    liquid = torch.where(liquid < c[3], 0.0, liquid)
    x = x.float()  # the reference's np.array(x, dtype=np.float32) / 255.; the blend is in float32
    if c[5] == 0:
        m = _liquid_mask(torch.floor(liquid * 255)).float()
        m = m / m.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12) * c[4]
        colour = torch.tensor([175, 238, 238], device=x.device)[None, :, None, None] / 255
        return (x + m[:, None] * colour).clamp(0, 1)
    m = filters.gaussian((liquid > c[3]).float(), c[4])
    m = torch.where(m < 0.8, 0.0, m)[:, None]
    colour = torch.tensor([63, 42, 20], device=x.device)[None, :, None, None] / 255
    return (x * (1 - m) + colour * m).clamp(0, 1)
