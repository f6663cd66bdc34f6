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
    grad_clip: float | None = None  # global gradient norm bound (Ho et al.: 1.0)
    warmup_steps: int = 0  # linear learning-rate warm-up (Ho et al.: 5000)


def warmed_up_lr(lr: float, warmup_steps: int, step: int) -> float:
    """lr x min(step / warmup_steps, 1) for the update after `step` updates (0-based), as Ho et al.'s
    get_warmed_up_lr (hojonathanho/diffusion diffusion_tf/utils.py:145-148): the first update's is 0."""
    return lr if warmup_steps == 0 else lr * min(step / warmup_steps, 1.0)


def clip_global_norm_(parameters: list[torch.Tensor], clip: float) -> torch.Tensor:
    """Scale the gradients by clip / max(norm, clip), norm their global l2 norm, and return that norm:
    tf.clip_by_global_norm as Ho et al. apply it (diffusion_tf/utils.py:173), without the 1e-6 that
    torch's clip_grad_norm_ adds to the norm."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.double()) for g in grads]))
    scale = clip / torch.clamp(norm, min=clip)
    torch._foreach_mul_(grads, scale.to(grads[0].dtype))
    return norm


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
    t ~ U{0..T-1}, Adam (with `grad_clip` and `warmup_steps`: Ho et al.'s clipped global norm and
    linear warm-up); returns the EMA weights (decay warmed up as min(decay, (1+n)/(10+n))) and
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
            if settings.grad_clip is not None:
                clip_global_norm_(list(unet.parameters()), settings.grad_clip)
            for group in optimizer.param_groups:
                group["lr"] = warmed_up_lr(settings.lr, settings.warmup_steps, step)
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
