"""Training the DDPM behind DiffAug (Ho et al., 2020): eps-MSE with t ~ U{0..999}, Adam, EMA of the
weights, held-out one-step denoising MSE as the quality metric; resumable from a checkpoint."""

from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mollify.device import seeded_generator
from mollify.diffusion.model import NUM_TIMESTEPS, denoising_mse, linear_alphas_cumprod, q_sample, to_model_range
from mollify.io import load_checkpoint, save_torch
from mollify.timing import timed
from mollify.training.divergence import DIFFUSION_LOSS_BOUND, DivergenceGuard

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # diffusers takes seconds to import: only the functions that need it do
    from diffusers import UNet2DModel


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
                    seconds: dict[str, float] | None = None) -> tuple[UNet2DModel, list[dict[str, Any]]]:
    """Train `unet` on uint8 `images` (on its device) with DDPM's loss ||eps - eps_theta(x_t, t)||^2,
    t ~ U{0..T-1}, Adam; returns the EMA weights (decay warmed up as min(decay, (1+n)/(10+n))) and
    the log: training loss, and every `eval_every` steps the EMA model's denoising MSE on `held_out`.
    With `checkpoint`, state is saved at each evaluation and a matching one is resumed from. A loss
    that is not finite or above `DIFFUSION_LOSS_BOUND` raises `Diverged` before anything is saved.
    `seconds` gets the wall time of the evaluations with their checkpoints (`held-out MSE and checkpoints`)."""
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
    evaluating = (lambda: timed(seconds, "held-out MSE and checkpoints")) if seconds is not None else nullcontext
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
                with evaluating():
                    mse = denoising_mse(ema, held_out, list(settings.eval_timesteps), abar, settings.seed)
                log.append({"step": done, "train_loss": float(loss_sum) / (done - since),
                            **{f"mse_t{t}": v for t, v in mse.items()}})
                progress.update(task, completed=done, loss=log[-1]["train_loss"],
                                ips=(done - since) * batch / (time.perf_counter() - started))
                if not show_progress:
                    logger.info("diffusion step %d/%d: loss %.4f", done, settings.steps, log[-1]["train_loss"])
                loss_sum, started, since = torch.zeros((), device=device), time.perf_counter(), done
                if checkpoint is not None:
                    with evaluating():
                        save_torch(checkpoint, {"unet": unet.state_dict(), "ema": ema.state_dict(),
                                                "optimizer": optimizer.state_dict(), "step": done, "log": log,
                                                "fingerprint": fingerprint, "settings": asdict(settings)})
    return ema, log
