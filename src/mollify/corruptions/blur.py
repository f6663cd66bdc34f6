"""Glass, motion and zoom blur: (B, C, H, W) float in [0, 1] -> same, on any device.

Reimplementations of `glass_blur`, `motion_blur` and `zoom_blur` in hendrycks/robustness
`make_cifar_c.py` / `make_tinyimagenet_c.py`, batched over images.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import torch

from mollify.corruptions import filters


def _glass_shuffle(x: torch.Tensor, max_delta: int, g: torch.Generator) -> torch.Tensor:
    """One pass of the reference's "local shuffle": for h from H - d down to d + 1 and, inside,
    w from W - d down to d + 1, draw dx, dy in [-d, d) and do `x[h, w], x[h', w'] = x[h', w'], x[h, w]`
    with (h', w') = (h + dy, w + dx).

    On numpy rows that tuple assignment is not a swap: `x[h, w]` is a view, so the first store
    overwrites what the second would write back, and each step is the copy x[h, w] <- x[h', w'].
    The copies run in sequence and read values written earlier in the same pass, so this is exact
    but vectorised: each visited pixel links to its source when the source was written before it;
    following links to their end (pointer doubling, log2(H W) gathers) gives, for every pixel, the
    pixel of the input it ends up holding.
    """
    b, c, h, w = x.shape
    d = max_delta
    visit = [(i, j) for i in range(h - d, d, -1) for j in range(w - d, d, -1)]
    pos = torch.tensor([i * w + j for i, j in visit], device=x.device)
    order = torch.full((h * w,), len(visit), device=x.device)  # unvisited: after every visit
    order[pos] = torch.arange(len(visit), device=x.device)
    deltas = torch.randint(-d, d, (b, len(visit), 2), generator=g, device=x.device)  # (dx, dy) per visit
    src = pos + deltas[..., 1] * w + deltas[..., 0]  # (B, visits)
    written_before = order[src] < order[pos]
    identity = torch.arange(h * w, device=x.device).expand(b, -1)
    link = identity.clone()
    link[:, pos] = torch.where(written_before, src, pos)
    source = identity.clone()
    source[:, pos] = src
    for _ in range(math.ceil(math.log2(h * w)) + 1):  # enough for the longest chain; most end sooner
        longer = link.gather(1, link)
        if torch.equal(longer, link):
            break
        link = longer
    final = source.gather(1, link)
    flat = x.reshape(b, c, h * w)
    return flat.gather(2, final[:, None].expand(-1, c, -1)).reshape(x.shape)


def glass_blur(x: torch.Tensor, c: tuple[float, int, int], g: torch.Generator) -> torch.Tensor:
    """Gaussian blur (sigma c0), truncate to uint8, `c2` passes of the local shuffle with max
    delta c1, Gaussian blur again (reference `glass_blur`)."""
    sigma, max_delta, iterations = c
    x = torch.floor(filters.gaussian(x, sigma) * 255)
    for _ in range(int(iterations)):
        x = _glass_shuffle(x, int(max_delta), g)
    return filters.gaussian(x / 255, sigma).clamp(0, 1)


def motion_blur(x: torch.Tensor, c: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """ImageMagick motion blur (radius c0, sigma c1) at an angle ~ U(-45, 45) degrees per image,
    back to 8 bits as ImageMagick writes it (reference `motion_blur`)."""
    angle = torch.empty(x.shape[0], dtype=torch.float64, device=x.device).uniform_(-45, 45, generator=g)
    x255 = torch.round(x * 255)
    return filters.imagemagick_to_uint8(filters.motion_blur(x255, c[0], c[1], angle)) / 255


@lru_cache(maxsize=16)
def zoom_blur_matrix(n: int, c: float) -> torch.Tensor:
    """The reference zoom blur on flattened n x n images as one sparse (n^2, n^2) float32 CSR
    matrix: the mean of the identity and the clipped zooms M_z x M_z^T, z in np.arange(1, c, 0.01),
    i.e. (I + sum_z M_z (x) M_z) / (Z + 1) with (x) the Kronecker product (about 12 nonzeros a row
    at 32 px: a tenth of the work of the zooms one by one)."""
    zooms = np.arange(1, c, 0.01)
    rows, cols, values = [torch.arange(n * n)], [torch.arange(n * n)], [torch.ones(n * n, dtype=torch.float64)]
    for zoom in zooms:
        m = filters.zoom_matrix(n, float(zoom)).to_sparse()
        (r, k), v = m.indices(), m.values()
        rows.append((r[:, None] * n + r[None, :]).reshape(-1))
        cols.append((k[:, None] * n + k[None, :]).reshape(-1))
        values.append((v[:, None] * v[None, :]).reshape(-1))
    matrix = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(values), (n * n, n * n),
                                     check_invariants=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return (matrix.coalesce() / (len(zooms) + 1)).float().to_sparse_csr()


def zoom_blur(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    """Mean of the image and its clipped zooms by 1, 1.01, ... < c (reference `zoom_blur`,
    `np.arange(1, c, 0.01)` zoom factors, scipy zoom order 1), in float32 as there, as one sparse
    matrix product (`zoom_blur_matrix`)."""
    b, ch, h, w = x.shape
    matrix = zoom_blur_matrix(h, float(c)).to(x.device)
    out = torch.sparse.mm(matrix, x.float().reshape(b * ch, h * w).T).T
    return out.reshape(b, ch, h, w).clamp(0, 1)
