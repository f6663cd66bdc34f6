"""DiffAug (Sastry et al., NeurIPS 2024): one diffuse-and-denoise step with a pretrained DDPM.

    t ~ U{0..T-1} per sample, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) z,
    x0_hat = (x_t - sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(abar_t), clamped to [-1, 1].

No gradient flows through the diffusion model. In a training loop::

    diffaug = DiffAug(unet)                       # a diffusers UNet2DModel (epsilon prediction)
    x_aug = diffaug(x01, generator)               # un-augmented images in [0, 1] -> their DiffAug versions
    logits = model(normalize(torch.cat([augment(x01), x_aug])))
    loss = F.cross_entropy(logits[:n], y) + F.cross_entropy(logits[n:], y)

The DiffAug Ensemble (test time) averages the softmax over fixed t in {0, 50, ..., 450}, t = 0
being the raw image; see `ensemble_timesteps` and mollify.evaluate.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, ContextManager

import torch

from mollify.device import Normalize, autocast
from mollify.diffusion.model import NUM_TIMESTEPS, denoise_one_step, linear_alphas_cumprod

if TYPE_CHECKING:
    from diffusers import UNet2DModel


def ensemble_timesteps(step: int = 50, max_t: int = 450) -> list[int]:
    """The DiffAug-Ensemble members {0, step, ..., max_t} (the released default: step 50, max 450)."""
    return list(range(0, max_t + 1, step))


class DiffAug:
    """Images in [0, 1] (B, C, H, W) -> their one-step diffuse-and-denoise versions in [0, 1].

    `precision` is the UNet's: the estimate divides the predicted noise's rounding error by
    sqrt(abar_t) (x 25.8 at t = 800, x 157 at t = 999), so fp32 (TF32 off) is the default; fp16 is
    the DiffAug release's (oore-lab/diffaug diffaug.py:34 convert_to_fp16, :49 and :63
    torch.autocast("cuda")), bf16 rounds 8x coarser than fp16."""

    def __init__(self, unet: UNet2DModel, precision: str = "fp32"):
        self.unet = unet.eval().requires_grad_(False)
        self.alphas_cumprod = linear_alphas_cumprod().to(unet.device)
        self.precision = precision

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None, t: torch.Tensor | int | None = None) -> torch.Tensor:
        """`t`: a timestep per sample, one for all, or None for t ~ U{0..T-1} per sample; t = 0 returns
        the image itself (the ensemble's raw member)."""
        n = len(x)
        if t is None:
            t = torch.randint(NUM_TIMESTEPS, (n,), generator=g, device=x.device)
        elif isinstance(t, int):
            if t == 0:
                return x
            t = torch.full((n,), t, device=x.device, dtype=torch.long)
        noise = torch.randn(x.shape, generator=g, device=x.device)
        with autocast(x.device, self.precision), _no_tf32(self.precision):
            x0_hat = denoise_one_step(self.unet, x.float() * 2 - 1, t, noise, self.alphas_cumprod)
        return ((x0_hat + 1) / 2).to(x.dtype)


def _no_tf32(precision: str) -> ContextManager:
    """fp32 convolutions without TF32 (cuDNN's default on Ampere and later rounds their inputs to
    10 mantissa bits, fp16's precision); nothing to change otherwise."""
    if precision != "fp32":
        return nullcontext()
    cudnn = torch.backends.cudnn
    return cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic, allow_tf32=False)


class NormalizedDiffAug:
    """DiffAug of uint8 images (B, C, H, W) as classifier inputs: diffuse-and-denoise in [0, 1],
    then standardise by `normalize` (as the training loop's clean rows)."""

    def __init__(self, diffaug: DiffAug, normalize: Normalize):
        self.diffaug, self.normalize = diffaug, normalize

    def __call__(self, images: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        return self.normalize(self.diffaug(images.float() / 255, g) * 255)
