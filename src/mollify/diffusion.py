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
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mollify.device import seeded_generator
from mollify.divergence import DIFFUSION_LOSS_BOUND, DivergenceGuard
from mollify.errors import MollifyError
from mollify.io import load_checkpoint, save_torch

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


@dataclass(frozen=True)
class DiffusionSettings:
    steps: int
    batch_size: int
    lr: float
    ema_decay: float
    seed: int
    eval_every: int
    eval_timesteps: tuple[int, ...] = (100, 300, 500)


def _ema_update(ema: UNet2DModel, model: UNet2DModel, decay: float) -> None:
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
        for b_ema, b in zip(ema.buffers(), model.buffers()):
            b_ema.copy_(b)


def train_diffusion(unet: UNet2DModel, images: torch.Tensor, held_out: torch.Tensor, settings: DiffusionSettings,
                    checkpoint: Path | None = None, fingerprint: dict[str, str] | None = None,
                    show_progress: bool = True, divergence_hint: str = "Lower the learning rate.",
                    ) -> tuple[UNet2DModel, list[dict[str, Any]]]:
    """Train `unet` on uint8 `images` (on its device) with DDPM's loss ||eps - eps_theta(x_t, t)||^2,
    t ~ U{0..T-1}, Adam; returns the EMA weights (decay warmed up as min(decay, (1+n)/(10+n))) and
    the log: training loss, and every `eval_every` steps the EMA model's denoising MSE on `held_out`.
    With `checkpoint`, state is saved at each evaluation and a matching one is resumed from. A loss
    that is not finite or above `DIFFUSION_LOSS_BOUND` raises `Diverged` before anything is saved."""
    from diffusers import UNet2DModel

    device = images.device
    abar = linear_alphas_cumprod().to(device)
    ema = UNet2DModel.from_config(unet.config).to(device)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.Adam(unet.parameters(), lr=settings.lr)
    log: list[dict[str, Any]] = []
    start = 0
    if (state := load_checkpoint(checkpoint, fingerprint or {})) is not None:
        unet.load_state_dict(state["unet"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        log, start = state["log"], state["step"]
        logger.info("resumed from step %d of %s", start, checkpoint)
    guard = DivergenceGuard(DIFFUSION_LOSS_BOUND, device)
    batch = min(settings.batch_size, len(images))
    columns = (TextColumn("[bold]diffusion"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}  {task.fields[ips]:.0f} img/s"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task("diffusion", total=settings.steps, completed=start, loss=math.nan, ips=0.0)
        loss_sum, started, since = torch.zeros((), device=device), time.perf_counter(), start
        for step in range(start, settings.steps):
            # a generator per step: a resumed run draws what an uninterrupted one would
            g = seeded_generator(settings.seed, step, device)
            unet.train()
            idx = torch.randint(len(images), (batch,), generator=g, device=device)
            x0 = to_model_range(images[idx])
            flip = torch.rand(batch, 1, 1, 1, generator=g, device=device) < 0.5  # DDPM's random flips
            x0 = torch.where(flip, x0.flip(-1), x0)
            t = torch.randint(NUM_TIMESTEPS, (batch,), generator=g, device=device)
            noise = torch.randn(x0.shape, generator=g, device=device)
            loss = F.mse_loss(unet(q_sample(x0, t, noise, abar), t).sample, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            _ema_update(ema, unet, min(settings.ema_decay, (1 + step) / (10 + step)))
            loss_sum += loss.detach()
            guard.update(step, loss)
            done = step + 1
            if done % settings.eval_every == 0 or done == settings.steps:
                guard.check(lambda _: settings.lr, divergence_hint)
                mse = denoising_mse(ema, held_out, list(settings.eval_timesteps), abar, settings.seed)
                log.append({"step": done, "train_loss": float(loss_sum) / (done - since),
                            **{f"mse_t{t}": v for t, v in mse.items()}})
                progress.update(task, completed=done, loss=log[-1]["train_loss"],
                                ips=(done - since) * batch / (time.perf_counter() - started))
                if not show_progress:
                    logger.info("diffusion step %d/%d: loss %.4f", done, settings.steps, log[-1]["train_loss"])
                loss_sum, started, since = torch.zeros((), device=device), time.perf_counter(), done
                if checkpoint is not None:
                    save_torch(checkpoint, {"unet": unet.state_dict(), "ema": ema.state_dict(),
                                            "optimizer": optimizer.state_dict(), "step": done, "log": log,
                                            "fingerprint": fingerprint, "settings": asdict(settings)})
    return ema, log


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
