"""The train stage's run: build one (dataset, recipe, seed) run's data, network, per-image
augmentation and batch recipe from validated params, train it, and write its weights and log."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from mollify import paths
from mollify.artifacts import diffusion_fingerprint, load_diffaug
from mollify.augment import (Augmentation, BatchRecipe, Mollification, NoisyFeatureMixup, NormalizedDiffAug,
                             SoftAugmentation, compose, make_augmix_views)
from mollify.config import MethodConfig, Params, TrainConfig
from mollify.data import load_meta, load_split
from mollify.device import Normalize, machine_info, resolve_device
from mollify.errors import MollifyError
from mollify.io import code_fingerprint, fingerprint_parts, save_torch
from mollify.models import create_model
from mollify.training import distributed
from mollify.training.loop import TrainSettings, train
from mollify.training.losses import LOSSES


def train_method(cfg: Params, dataset: str, method: str, seed: int = 0, show_progress: bool = True) -> list[dict[str, Any]]:
    """Train the recipe `method` on `dataset` with training seed `seed` (initialisation, batches,
    augmentation draws); write final weights and the training log (under torchrun, rank 0 writes)."""
    recipe = cfg.recipe(method)
    device = resolve_device(cfg.device)
    meta = load_meta(paths.clean_dir(dataset))
    x, y = load_split(paths.clean_dir(dataset), "train", meta.num_classes)
    model_name = cfg.model_name(method, dataset)
    normalize = Normalize(meta.mean, meta.std, device, cfg.train.channels_last)
    diffaug = NormalizedDiffAug(load_diffaug(dataset, device, cfg.train.diffaug_precision), normalize) if recipe.diffaug else None
    batch_recipe = build_recipe(recipe, meta.num_classes, diffaug)
    model_options = {"smoothing": recipe.smoothing, "mc_dropout": recipe.mc_dropout}
    torch.manual_seed(seed)  # weight initialisation
    model = create_model(model_name, batch_recipe.output_classes, **model_options).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    settings = TrainSettings(
        epochs=cfg.train.epochs, batch_size=cfg.train.batch_size, lr=cfg.train.lr, momentum=cfg.train.momentum,
        nesterov=cfg.train.nesterov, weight_decay=cfg.train.weight_decay, warmup_epochs=cfg.train.warmup_epochs,
        seed=seed, precision=cfg.train.precision, schedule=cfg.train.schedule,
        milestones=tuple(cfg.train.milestones), lr_decay=cfg.train.lr_decay, schedule_unit=cfg.train.schedule_unit,
        drop_last=cfg.train.drop_last, compile=cfg.train.compile,
    )
    augment = build_augmentation(recipe, cfg.train)
    fingerprint = fingerprint_parts({"settings": asdict(settings), "recipe": recipe.model_dump(), "model": model_name,
                                "train": cfg.train.model_dump(), "data": hashlib.sha256(x.tobytes()).hexdigest(),
                                "code": code_fingerprint(), "diffusion": diffusion_fingerprint(dataset) if diffaug else None})
    main = distributed.is_main()
    with _live_log(paths.train_log_dir(dataset, method, seed)) if main else nullcontext() as on_epoch:
        history = train(
            model, torch.from_numpy(x).to(device), torch.from_numpy(y).to(device), augment,
            normalize, batch_recipe, LOSSES[recipe.loss], settings,
            checkpoint=paths.checkpoint_file(dataset, method, seed), fingerprint=fingerprint, show_progress=show_progress,
            on_epoch=on_epoch, divergence_hint=f"Lower train.lr (now {cfg.train.lr:g}) or raise train.warmup_epochs.",
        )
    if main:
        save_torch(paths.model_file(dataset, method, seed), {
            "model": model_name, "num_classes": batch_recipe.output_classes, "options": model_options,
            "state_dict": model.state_dict(), "method": method, "seed": seed, "machine": machine_info(device),
        })
    return history


@contextmanager
def _live_log(directory: Path) -> Iterator[Callable[[dict[str, Any]], None]]:
    """DVCLive metrics per epoch (`dvc exp show` follows a running experiment, `dvc plots` draws
    the curves): yields the callback that logs one entry of the training history. The directory
    starts empty; a run that raises (diverged) leaves it without a summary."""
    from dvclive import Live  # imports DVC: only the stage that logs pays for it
    from scmrepo.exceptions import SCMError

    try:
        live = Live(str(directory), save_dvc_exp=False, dvcyaml=False)
    except SCMError as e:  # DVCLive reads the git HEAD of the repository it runs in
        raise MollifyError(f"DVCLive cannot log to {directory}: the git repository has a problem ({e}); "
                           "in a new repository, commit once (`git commit`) before `dvc repro`.") from None

    def on_epoch(entry: dict[str, Any]) -> None:
        live.step = entry["epoch"]
        for key in ("train_loss", "train_acc", "lr", "images_per_s"):
            live.log_metric(key, entry[key])
        live.make_summary()

    yield on_epoch
    live.end()


def build_augmentation(recipe: MethodConfig, settings: TrainConfig) -> Augmentation:
    """The per-image part of a recipe: its augmentations in order, but AugMix under AugMix's JSD loss,
    where AugMix makes the extra views (BatchRecipe.augmix_views), not the clean rows."""
    return compose([a for a in recipe.augment if not (recipe.augmix_jsd and a == "augmix")],
                   settings.crop_padding, settings.rotation_degrees)


def build_recipe(recipe: MethodConfig, num_classes: int, diffaug: NormalizedDiffAug | None = None) -> BatchRecipe:
    """The batch-level part of a recipe: soft crop or mixup / cutmix, mollification, NFM, DiffAug,
    AugMix's JSD views."""
    if recipe.diffaug and diffaug is None:
        raise MollifyError("a DiffAug recipe needs the diffusion model (build_recipe(..., diffaug=...))")
    return BatchRecipe(
        num_classes, recipe.mix,
        mollification=Mollification(num_classes, **recipe.mollify.model_dump()) if recipe.mollify else None,
        softaug=SoftAugmentation(num_classes, **recipe.softaug.model_dump()) if recipe.softaug else None,
        nfm=NoisyFeatureMixup(**recipe.nfm.model_dump()) if recipe.nfm else None,
        diffaug=diffaug,
        augmix_views=make_augmix_views(recipe.augmix_jsd_ops) if recipe.augmix_jsd else None,
    )


