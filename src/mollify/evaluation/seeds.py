"""The summarize stage's run: a recipe over its training seeds (mean and std of every run's
metrics, the flat headline metrics for DVC) and the deep ensembles of its seeds' models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mollify import paths
from mollify.artifacts import load_model_file
from mollify.config import Params
from mollify.data import load_meta, load_split
from mollify.device import Normalize, resolve_device
from mollify.evaluation.ensemble import ensemble_size_curve
from mollify.evaluation.metrics import classification_metrics
from mollify.evaluation.predict import predict_probs
from mollify.evaluation.summary import headline, mean_over_seeds
from mollify.io import load_json, save_json
from mollify.models import is_stochastic


def summarize_method(cfg: Params, dataset: str, method: str) -> dict[str, Any]:
    """The recipe's result over its training seeds: every run's summary averaged (mean and std,
    `mean_over_seeds`) and its flat headline metrics for DVC; with `evaluate.deep_ensemble`, the
    deep ensembles of the seeds' models."""
    runs = [load_json(paths.run_summary_file(dataset, method, seed)) for seed in cfg.seeds]
    summary = mean_over_seeds(runs, cfg.seeds)
    if cfg.evaluate.deep_ensemble:
        curve = deep_ensemble(cfg, dataset, [paths.model_file(dataset, method, seed) for seed in cfg.seeds])
        summary["deep_ensemble"] = {str(row.pop("size")): row for row in curve}
    save_json(paths.summary_file(dataset, method), summary)
    save_json(paths.metrics_file(dataset, method), headline(summary, len(runs)))
    save_json(paths.evals_metrics_file(dataset, method), evals_headline(summary))
    return summary


def deep_ensemble(cfg: Params, dataset: str, model_files: list[Path]) -> list[dict[str, Any]]:
    """Deep ensembles of the models of one recipe that differ only by seed (the spatial-smoothing
    paper's comparison): clean-test metrics of the ensemble of the first k models, k = 1 .. M, each
    member's softmax averaged over `evaluate.mc_samples` passes where it has MC dropout."""
    device = resolve_device(cfg.device)
    meta = load_meta(paths.clean_dir(dataset))
    normalize = Normalize(meta.mean, meta.std, device, cfg.train.channels_last)
    x, y = load_split(paths.clean_dir(dataset), "test", meta.num_classes)
    torch.manual_seed(cfg.seed)
    members = []
    for path in model_files:
        model = load_model_file(path, device)
        if cfg.train.channels_last:
            model = model.to(memory_format=torch.channels_last)
        samples = cfg.evaluate.mc_samples if is_stochastic(model) else 1
        members.append(predict_probs(model, x, normalize, device, cfg.evaluate.batch_size, cfg.train.precision, samples,
                                     softmax=cfg.evaluate.softmax))
    return ensemble_size_curve([p[:, : meta.num_classes] for p in members], torch.from_numpy(y),
                               lambda probs, labels: classification_metrics(probs, labels, cfg.evaluate.ece_bins, cfg.evaluate.ece_batch_size,
                                                                           cfg.evaluate.paper_ece))


def evals_headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The DVC metrics of the other evaluations (`paths.evals_metrics_file`, means over seeds):
    accuracy at each sweep level, OOD AUROC / FPR@95 per set, evaluation and score, certified
    accuracy per sigma and radius, and the deep ensembles' NLL / accuracy / ECE per size."""
    flat: dict[str, Any] = {}
    for name in ("occlusion", "crop", "white_noise", "salt_pepper"):
        if name in summary:
            flat[name] = {f"acc_{level}": row["acc"] for level, row in summary[name].items()}
    if "ood" in summary:
        flat["ood"] = {name: {k: v for k, v in result.items() if k not in ("kind", "images")} for name, result in summary["ood"].items()}
    if "certified" in summary:
        flat["certified"] = summary["certified"]["accuracy"]
    if "deep_ensemble" in summary:
        flat["deep_ensemble"] = {size: {k: row[k] for k in ("acc", "nll", "ece")} for size, row in summary["deep_ensemble"].items()}
    return flat
