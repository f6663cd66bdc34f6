"""The diffusion stage's run: train the DDPM on a dataset's train split (or load a pretrained one)
and write it with its quality metrics, plot data and example images."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict
from typing import Any

import torch

from mollify import paths
from mollify.augment.diffaug import DiffAug
from mollify.config import Params
from mollify.data import load_split
from mollify.device import resolve_device
from mollify.diffusion.model import NUM_TIMESTEPS, denoising_mse, linear_alphas_cumprod, load_unet, make_unet, save_pipeline
from mollify.diffusion.training import DiffusionSettings, train_diffusion
from mollify.errors import MollifyError
from mollify.io import code_fingerprint, fingerprint_parts, save_csv, save_json
from mollify.report.examples import diffaug_examples
from mollify.timing import parts_text, timed

logger = logging.getLogger(__name__)


def prepare_diffusion(cfg: Params, dataset: str, show_progress: bool = True) -> dict[str, Any]:
    """The diffusion stage: train the DDPM on the train split (resumably) or load the configured
    pretrained one; write it as a diffusers pipeline, its held-out denoising MSE vs t (metrics and
    plot data) and its training log."""
    settings_cfg = cfg.diffusion
    device = resolve_device(cfg.device)
    seconds: dict[str, float] = {}  # wall time of each part, logged at the end
    with timed(seconds, "data"):
        x, _ = load_split(paths.clean_dir(dataset), "train")
        test_images = load_split(paths.clean_dir(dataset), "test")[0]
        held_out = torch.from_numpy(test_images[: settings_cfg.eval_images]).to(device)
    log: list[dict[str, Any]] = []
    if settings_cfg.pretrained is not None:
        with timed(seconds, "loading the pretrained model"):
            unet = load_unet(settings_cfg.pretrained, settings_cfg.download).to(device)
        if unet.config.sample_size != x.shape[-1] or unet.config.in_channels != x.shape[1]:
            raise MollifyError(f"diffusion.pretrained {settings_cfg.pretrained!r} is a {unet.config.sample_size} px, "
                               f"{unet.config.in_channels}-channel model; {dataset} has {x.shape[-1]} px images.")
    else:
        with timed(seconds, "model set-up"):
            torch.manual_seed(cfg.seed)
            unet = make_unet(settings_cfg.unet, x.shape[-1], x.shape[1]).to(device)
            settings = DiffusionSettings(steps=settings_cfg.steps, batch_size=settings_cfg.batch_size, lr=settings_cfg.lr,
                                         ema_decay=settings_cfg.ema_decay, seed=cfg.seed, eval_every=settings_cfg.eval_every,
                                         grad_clip=settings_cfg.grad_clip, warmup_steps=settings_cfg.warmup_steps)
            fingerprint = fingerprint_parts({"settings": asdict(settings), "unet": settings_cfg.unet, "code": code_fingerprint(),
                                             "data": hashlib.sha256(x.tobytes()).hexdigest()})
        seconds["training steps"] = 0.0  # (listed before the evaluations timed inside)
        with timed(seconds, "training steps"):  # less its evaluations
            unet, log = train_diffusion(unet, torch.from_numpy(x).to(device), held_out, settings,
                                        paths.diffusion_checkpoint(dataset), fingerprint, show_progress,
                                        f"Lower diffusion.lr (now {settings_cfg.lr:g}).", seconds)
        seconds["training steps"] -= seconds.get("held-out MSE and checkpoints", 0.0)
    with timed(seconds, "saving the pipeline"):
        save_pipeline(unet, paths.diffusion_dir(dataset))
    with timed(seconds, "denoising MSE vs t"):
        curve = denoising_mse(unet, held_out, list(range(0, NUM_TIMESTEPS, 50)) + [NUM_TIMESTEPS - 1], linear_alphas_cumprod(), cfg.seed)
    out = paths.diffusion_plots_dir(dataset)
    save_csv(out / "denoising_mse.csv", [{"t": t, "mse": mse} for t, mse in curve.items()])
    if log:
        save_csv(out / "train_log.csv", log)
    with timed(seconds, "DiffAug examples"):
        diffaug_examples(test_images[:4], DiffAug(unet), list(range(350, 701, 50)), cfg.seed, out / "diffaug_examples.png")
    metrics = {
        "source": settings_cfg.pretrained or f"trained: {settings_cfg.unet}, {settings_cfg.steps} steps",
        "parameters": sum(p.numel() for p in unet.parameters()),
        "held_out_images": len(held_out),
        "denoising_mse": {f"t{t}": curve[t] for t in (100, 300, 500)},
        "denoising_mse_mean": sum(curve.values()) / len(curve),
    }
    save_json(paths.diffusion_metrics_file(dataset), metrics)
    logger.info("diffusion %s parts: %s", dataset, parts_text(seconds))
    return metrics
