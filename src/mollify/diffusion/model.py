"""The unconditional DDPM behind DiffAug (Ho et al., 2020; Sastry et al., NeurIPS 2024), with diffusers:
UNet2DModel + DDPMScheduler, epsilon prediction, linear betas 1e-4..0.02, T = 1000.

Images are in the model's range [-1, 1]. The forward process is
    x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) z,
and the one-step (Tweedie) estimate of x0 from the predicted noise is
    x0_hat = (x_t - sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(abar_t), clamped to [-1, 1].
The model's quality metric for DiffAug is the held-out one-step denoising error E||x0_hat - x0||^2
as a function of t (DiffAug needs good one-step estimates, not good samples).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from mollify.errors import MollifyError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # diffusers takes seconds to import: only the functions that need it do
    from diffusers import DDPMScheduler, UNet2DModel

NUM_TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02

# UNet2DModel configurations. `ddpm_cifar10` is google/ddpm-cifar10-32's (35.7M parameters, attention
# at 16 px); `demo` is a small attention-free UNet that trains for a few minutes on a CPU.
UNETS: dict[str, dict[str, Any]] = {
    "demo": dict(
        block_out_channels=(8, 16, 32), layers_per_block=1, norm_num_groups=4,
        down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3,
    ),
    "ddpm_cifar10": dict(
        block_out_channels=(128, 256, 256, 256), layers_per_block=2, norm_num_groups=32, norm_eps=1e-6,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        downsample_padding=0, flip_sin_to_cos=False, freq_shift=1, dropout=0.1,
    ),
}


def make_scheduler() -> DDPMScheduler:
    """DDPM's noise schedule: linear betas 1e-4..0.02 over T = 1000 steps, epsilon prediction."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=NUM_TIMESTEPS, beta_schedule="linear", beta_start=BETA_START,
                         beta_end=BETA_END, prediction_type="epsilon", clip_sample=True)


def linear_alphas_cumprod() -> torch.Tensor:
    """abar_t = prod_{s <= t} (1 - beta_s) for the linear schedule, on the CPU in float32 as DDPMScheduler
    computes it (bit-equal; callers move it to their device)."""
    betas = torch.linspace(BETA_START, BETA_END, NUM_TIMESTEPS, dtype=torch.float32, device="cpu")
    return torch.cumprod(1.0 - betas, dim=0)


def make_unet(name: str, image_size: int, channels: int = 3) -> UNet2DModel:
    from diffusers import UNet2DModel

    if name not in UNETS:
        raise MollifyError(f"unknown UNet {name!r}; choices: {', '.join(UNETS)}")
    return UNet2DModel(sample_size=image_size, in_channels=channels, out_channels=channels, **UNETS[name])


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, with a timestep per sample."""
    abar = alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1).to(x0.dtype)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def tweedie_x0(x_t: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clamped to [-1, 1] (a timestep per sample)."""
    abar = alphas_cumprod.to(x_t.device)[t].view(-1, 1, 1, 1).to(torch.float32)
    return ((x_t.float() - (1 - abar).sqrt() * eps.float()) / abar.sqrt()).clamp(-1, 1)


@torch.no_grad()
def denoise_one_step(unet: UNet2DModel, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
                     alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Diffuse x0 (in [-1, 1]) to x_t and return the one-step estimate x0_hat (float32)."""
    x_t = q_sample(x0, t, noise, alphas_cumprod)
    return tweedie_x0(x_t, unet(x_t, t).sample, t, alphas_cumprod)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1]."""
    return images.float() / 127.5 - 1


@torch.no_grad()
def denoising_mse(unet: UNet2DModel, images: torch.Tensor, timesteps: list[int], alphas_cumprod: torch.Tensor,
                  seed: int, batch_size: int = 500) -> dict[int, float]:
    """Held-out one-step denoising error: mean over images and pixels of (x0_hat - x0)^2 in [-1, 1]
    units, per timestep; one fixed noise draw per (image, t) from `seed`."""
    unet.eval()
    g = torch.Generator(device=images.device).manual_seed(seed)
    errors = {}
    for t in timesteps:
        total = 0.0
        for start in range(0, len(images), batch_size):
            x0 = to_model_range(images[start : start + batch_size])
            noise = torch.randn(x0.shape, generator=g, device=x0.device)
            tt = torch.full((len(x0),), t, device=x0.device, dtype=torch.long)
            total += float(F.mse_loss(denoise_one_step(unet, x0, tt, noise, alphas_cumprod), x0, reduction="sum"))
        errors[t] = total / images[:1].float().numel() / len(images)
    return errors


def save_pipeline(unet: UNet2DModel, directory: Path) -> None:
    """Write a diffusers DDPMPipeline directory (unet/, scheduler/, model_index.json) atomically."""
    from diffusers import DDPMPipeline

    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    DDPMPipeline(unet=unet, scheduler=make_scheduler()).save_pretrained(tmp)
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def load_unet(source: str | Path, allow_download: bool = False) -> UNet2DModel:
    """A UNet2DModel from a local diffusers directory (a pipeline with unet/, or a bare model), or
    from a hub id when `allow_download` is set: nothing is fetched implicitly."""
    from diffusers import UNet2DModel

    path = Path(source)
    if path.is_dir():
        subfolder = "unet" if (path / "unet" / "config.json").is_file() else None
        if subfolder is None and not (path / "config.json").is_file():
            raise MollifyError(f"{path} is not a diffusers model directory (no config.json or unet/config.json); "
                               "re-run the diffusion stage or point diffusion.pretrained at a saved UNet2DModel.")
        return UNet2DModel.from_pretrained(path, subfolder=subfolder, low_cpu_mem_usage=False)
    if not allow_download:
        raise MollifyError(f"diffusion.pretrained: {source!r} is not a local directory; to fetch it from the "
                           "Hugging Face hub set diffusion.download: true (needs network), or give a local path.")
    try:
        return UNet2DModel.from_pretrained(str(source), low_cpu_mem_usage=False)
    except (OSError, ValueError) as e:
        raise MollifyError(f"could not fetch the diffusion model {source!r} from the hub ({e.__class__.__name__}: "
                           f"{str(e).splitlines()[0]}); check the id and the network, or download it elsewhere and "
                           "set diffusion.pretrained to its local directory.") from None
