"""Build the pieces of one (dataset, method) run from validated params: the layer between the
stage CLIs and the library, so that stages stay a few lines of orchestration."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from mollify import paths
from mollify.augment import BatchRecipe, Mollification, NoisyFeatureMixup, SoftAugmentation, compose
from mollify.config import MethodConfig, Params
from mollify.data import DatasetMeta, load_meta, load_split
from mollify.device import Normalize, resolve_device
from mollify.errors import MollifyError
from mollify.evaluate import predict_probs, summarize
from mollify.io import load_npy, load_torch, save_csv, save_json, save_torch
from mollify.losses import LOSSES
from mollify.metrics import classification_metrics, reliability_bins
from mollify.models import create_model, is_stochastic
from mollify.train import TrainSettings, train


def train_method(cfg: Params, dataset: str, method: str, show_progress: bool = True) -> list[dict[str, Any]]:
    """Train the recipe `method` on `dataset`; write final weights and the training log."""
    recipe = cfg.recipe(method)
    device = resolve_device(cfg.device)
    meta = load_meta(paths.clean_dir(dataset))
    x, y = load_split(paths.clean_dir(dataset), "train")
    model_name = cfg.model_name(method)
    batch_recipe = build_recipe(recipe, meta.num_classes)
    model_options = {"smoothing": recipe.smoothing, "mc_dropout": recipe.mc_dropout}
    torch.manual_seed(cfg.seed)  # weight initialisation
    model = create_model(model_name, batch_recipe.output_classes, **model_options).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    settings = TrainSettings(
        epochs=cfg.train.epochs, batch_size=cfg.train.batch_size, lr=cfg.train.lr, momentum=cfg.train.momentum,
        nesterov=cfg.train.nesterov, weight_decay=cfg.train.weight_decay, warmup_epochs=cfg.train.warmup_epochs,
        seed=cfg.seed, precision=cfg.train.precision, schedule=cfg.train.schedule,
        milestones=tuple(cfg.train.milestones), lr_decay=cfg.train.lr_decay,
    )
    augment = compose(recipe.augment, cfg.train.crop_padding, cfg.train.rotation_degrees)
    fingerprint = _fingerprint({"settings": asdict(settings), "recipe": recipe.model_dump(), "model": model_name,
                                "train": cfg.train.model_dump(), "data": hashlib.sha256(x.tobytes()).hexdigest(),
                                "code": _code_fingerprint()})
    history = train(
        model, torch.from_numpy(x).to(device), torch.from_numpy(y).to(device), augment,
        Normalize(meta.mean, meta.std, device, cfg.train.channels_last), batch_recipe, LOSSES[recipe.loss], settings,
        checkpoint=paths.checkpoint_file(dataset, method), fingerprint=fingerprint, show_progress=show_progress,
    )
    save_torch(paths.model_file(dataset, method), {
        "model": model_name, "num_classes": batch_recipe.output_classes, "options": model_options,
        "state_dict": model.state_dict(), "method": method,
    })
    save_csv(paths.method_plots_dir(dataset, method) / "train_log.csv", history)
    return history


def build_recipe(recipe: MethodConfig, num_classes: int) -> BatchRecipe:
    """The batch-level part of a recipe: soft crop or mixup / cutmix, mollification, NFM."""
    return BatchRecipe(
        num_classes, recipe.mix,
        mollification=Mollification(num_classes, **recipe.mollify.model_dump()) if recipe.mollify else None,
        softaug=SoftAugmentation(num_classes, **recipe.softaug.model_dump()) if recipe.softaug else None,
        nfm=NoisyFeatureMixup(**recipe.nfm.model_dump()) if recipe.nfm else None,
    )


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _code_fingerprint() -> str:
    """Hash of the library's source: a checkpoint made by other code is not resumed."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_model(dataset: str, method: str, device: torch.device) -> nn.Module:
    path = paths.model_file(dataset, method)
    state = load_torch(path)
    try:
        model = create_model(state["model"], state["num_classes"], **state.get("options", {}))
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as e:
        raise MollifyError(f"{path} does not hold weights of a known model ({e}); re-run its train stage.") from None
    return model.to(device)


def evaluate_method(cfg: Params, dataset: str, method: str) -> dict[str, Any]:
    """Clean + corrupted metrics of a trained (dataset, method): metrics JSON and plot data."""
    cfg.recipe(method)  # an unknown method is named as such, not as a missing model file
    device = resolve_device(cfg.device)
    meta: DatasetMeta = load_meta(paths.clean_dir(dataset))
    model = load_model(dataset, method, device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    normalize = Normalize(meta.mean, meta.std, device, cfg.train.channels_last)
    bins = cfg.evaluate.ece_bins
    stochastic = is_stochastic(model)  # MC dropout: average the softmax of several passes
    torch.manual_seed(cfg.seed)

    def metrics_of(images: np.ndarray, labels: np.ndarray, samples: int = cfg.evaluate.mc_samples if stochastic else 1,
                   ) -> tuple[dict[str, float], torch.Tensor]:
        probs = predict_probs(model, images, normalize, device, cfg.evaluate.batch_size, cfg.train.precision, samples)
        # with the extra noise class of `la`/`lm`, the real classes' probabilities (as the reference)
        probs = probs[:, : meta.num_classes]
        return classification_metrics(probs, torch.from_numpy(np.asarray(labels)), bins), probs

    x, y = load_split(paths.clean_dir(dataset), "test")
    clean, clean_probs = metrics_of(x, y)
    labels = load_npy(paths.corrupted_dir(dataset) / "labels.npy", dtype=np.dtype(np.int64), ndim=1)
    table = []
    for name in cfg.corrupt.corruptions:
        for severity in cfg.corrupt.severities:
            images = load_npy(paths.corrupted_file(dataset, name, severity), dtype=np.dtype(np.uint8), ndim=4)
            if len(images) != len(labels):
                raise MollifyError(f"{paths.corrupted_file(dataset, name, severity)} has {len(images)} images for "
                                   f"{len(labels)} labels; re-run the corrupt stage.")
            table.append({"corruption": name, "severity": severity, **metrics_of(images, labels)[0]})
    summary = summarize(clean, table)
    if stochastic:
        summary["mc_samples"] = cfg.evaluate.mc_samples
        summary["mc_sweep"] = {str(n): metrics_of(x, y, n)[0] for n in cfg.evaluate.mc_sweep}
    save_json(paths.metrics_file(dataset, method), summary)

    out = paths.method_plots_dir(dataset, method)
    save_csv(out / "corruptions.csv", table)
    severity_rows = [{"severity": 0, **{k: clean[k] for k in ("err", "nll", "ece")}}]
    severity_rows += [{"severity": int(s), **v} for s, v in summary.get("corrupted", {}).get("by_severity", {}).items()]
    save_csv(out / "severity.csv", severity_rows)
    rel = reliability_bins(clean_probs, torch.from_numpy(y), bins)
    save_csv(out / "reliability.csv", [
        {"bin": b, "confidence": float(rel["confidence"][b]), "accuracy": float(rel["accuracy"][b]), "count": int(rel["count"][b])}
        for b in range(bins)
    ])
    return summary
