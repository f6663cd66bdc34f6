"""The evaluate stage's run: clean and corrupted metrics of one trained run (dataset, method, seed),
the DiffAug Ensemble beside them, and the comparison papers' other evaluations, with plot data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mollify import paths
from mollify.artifacts import load_diffaug, load_model, training_machine
from mollify.augment import DiffAug, ensemble_timesteps
from mollify.config import Params
from mollify.data import DatasetMeta, load_meta, load_ood, load_split
from mollify.device import Normalize, machine_info, resolve_device, seeded_generator, stream_seed
from mollify.errors import MollifyError
from mollify.evaluation.certify import certified_accuracy, certify, sigma_to_timestep
from mollify.evaluation.metrics import classification_metrics, reliability_bins
from mollify.evaluation.ood import SCORES, ood_metrics, roc_at, roc_curve
from mollify.evaluation.perturbations import cutout, random_crop, salt_and_pepper, white_noise
from mollify.evaluation.predict import (Transform, member_streams, perturbation_sweep, predict_probs, predict_probs_ensemble,
                                        predictive_entropy)
from mollify.evaluation.summary import summarize, summary_keys
from mollify.io import load_images, load_json, load_npy, save_csv, save_json
from mollify.models import is_stochastic
from mollify.timing import parts_text, timed

log = logging.getLogger(__name__)


def evaluate_method(cfg: Params, dataset: str, method: str, seed: int = 0) -> dict[str, Any]:
    """Clean + corrupted metrics of a trained run (dataset, method, seed): its detailed summary and
    plot data. Evaluation noise (MC dropout, DiffAug Ensemble) comes from `cfg.seed`: every run
    is evaluated on the same draws."""
    cfg.recipe(method)  # an unknown method is named as such, not as a missing model file
    device = resolve_device(cfg.device)
    meta: DatasetMeta = load_meta(paths.clean_dir(dataset))
    model = load_model(dataset, method, device, seed)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    normalize = Normalize(meta.mean, meta.std, device, cfg.train.channels_last)
    bins = cfg.evaluate.ece_bins
    stochastic = is_stochastic(model)  # MC dropout: average the softmax of several passes
    torch.manual_seed(cfg.seed)

    # passes per prediction: clean `mc_samples`, corrupted `mc_samples_corrupted` (the smoothing reference: 1)
    samples = cfg.evaluate.mc_samples if stochastic else 1
    samples_corrupted = cfg.evaluate.mc_samples_corrupted if stochastic else 1
    batch, precision, softmax = cfg.evaluate.batch_size, cfg.train.precision, cfg.evaluate.softmax

    def plain(images: np.ndarray | torch.Tensor, samples: int = samples, transform: Transform | None = None) -> torch.Tensor:
        return predict_probs(model, images, normalize, device, batch, precision, samples, transform, softmax)

    def plain_corrupted(images: np.ndarray) -> torch.Tensor:
        return plain(images, samples_corrupted)

    def metrics_of(probs: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
        # with the extra noise class of `la`/`lm`, the real classes' probabilities (our reading: the reference crashes there)
        return classification_metrics(probs[:, : meta.num_classes], torch.from_numpy(np.asarray(labels)), bins,
                                      cfg.evaluate.ece_batch_size, cfg.evaluate.paper_ece)

    x, y = load_split(paths.clean_dir(dataset), "test", meta.num_classes)
    labels = load_npy(paths.corrupted_dir(dataset) / "labels.npy", dtype=np.dtype(np.int64), ndim=1)
    corrupted = []
    for name in cfg.corrupt.corruptions:
        for severity in cfg.corrupt.severities:
            path = paths.corrupted_file(dataset, name, severity)
            images = load_images(path, mmap=True)
            if len(images) != len(labels) or images.shape[1:] != x.shape[1:]:
                raise MollifyError(f"{path} has {len(images)} images of shape {images.shape[1:]} for {len(labels)} labels "
                                   f"and clean test images of shape {x.shape[1:]}; re-run the corrupt stage.")
            corrupted.append((name, severity, images))

    def corruption_table(predict, n: int | None = None, chunk: int = 20_000) -> list[dict[str, Any]]:
        """Metrics per corruption and severity (first n images of each set); the sets are
        predicted in concatenated chunks of about `chunk` images (few, large batches)."""
        per_set = len(labels[:n])
        sets_per_chunk = max(1, chunk // per_set)
        rows: list[dict[str, Any]] = []
        for start in range(0, len(corrupted), sets_per_chunk):
            part = corrupted[start : start + sets_per_chunk]
            probs = predict(np.concatenate([images[:n] for _, _, images in part]))
            for (name, severity, _), p in zip(part, probs.split(per_set)):
                rows.append({"corruption": name, "severity": severity, **metrics_of(p, labels[:n])})
        return rows

    seconds: dict[str, float] = {}  # wall time of each part, logged at the end
    with timed(seconds, "clean"):
        clean_probs = plain(x)
        clean = metrics_of(clean_probs, y)
    with timed(seconds, "corrupted"):
        table = corruption_table(plain_corrupted)
    summary = summarize(clean, table)
    summary["corrupted_source"] = load_json(paths.corrupted_dir(dataset) / "source.json")
    summary["paper_ece"] = cfg.evaluate.paper_ece  # the ECE its paper reports: the results table's and the published comparison's
    summary["machine"] = {"train": training_machine(dataset, method, seed), "evaluate": machine_info(device)}
    if stochastic:
        summary["mc_samples"] = cfg.evaluate.mc_samples
        summary["mc_samples_corrupted"] = cfg.evaluate.mc_samples_corrupted
        with timed(seconds, "MC-dropout sweep"):
            summary["mc_sweep"] = {str(n): metrics_of(plain(x, n), y) for n in cfg.evaluate.mc_sweep}

    # DiffAug Ensemble beside the default evaluation, on the same images
    de = cfg.evaluate.diffaug_ensemble
    diffaug = load_diffaug(dataset, device, cfg.train.diffaug_precision)
    members = ensemble_timesteps(de.step, de.max_t)
    streams = member_streams(cfg.seed, members, device)  # continued over the clean set and every chunk

    def ensemble(images: np.ndarray, samples: int = samples) -> torch.Tensor:
        return predict_probs_ensemble(model, images, normalize, device, diffaug, streams, batch, precision, samples, softmax)

    n = de.corrupted_images
    with timed(seconds, "DiffAug Ensemble"):
        default = summary if n is None else summarize(clean, corruption_table(plain_corrupted, n))
        ensemble_clean = metrics_of(ensemble(x), y)
        summary["diffaug_ensemble"] = {
            "members": members, "corrupted_images": len(labels[:n]),
            "default": {k: v for k, v in default.items() if k in ("clean", "corrupted", "corrupted_extra")},
            "ensemble": summarize(ensemble_clean, corruption_table(lambda images: ensemble(images, samples_corrupted), n)),
        }
    summary.update(other_evaluations(cfg, dataset, x, y, plain, ensemble, diffaug, metrics_of, device,
                                     paths.evals_dir(dataset, method, seed), seconds))
    out = paths.run_dir(dataset, method, seed)
    save_json(paths.run_summary_file(dataset, method, seed), summary)
    save_csv(out / "corruptions.csv", table)
    save_csv(out / "severity.csv", _severity_rows(summary))
    save_csv(out / "severity_de.csv", _severity_rows(summary["diffaug_ensemble"]["ensemble"]))

    def member(images: np.ndarray, t: int) -> torch.Tensor:
        return predict_probs_ensemble(model, images, normalize, device, diffaug, member_streams(cfg.seed, [t], device),
                                      batch, precision, samples, softmax)

    with timed(seconds, "entropy"):
        entropy = diffaug_entropy(member, x[: de.entropy_images], y[: de.entropy_images], range(0, 1000, de.entropy_step))
    save_csv(out / "diffaug_entropy.csv", entropy)
    rel = reliability_bins(clean_probs, torch.from_numpy(y), bins)
    save_csv(out / "reliability.csv", [
        {"bin": b, "confidence": float(rel["confidence"][b]), "accuracy": float(rel["accuracy"][b]), "count": int(rel["count"][b])}
        for b in range(bins)
    ])
    log.info("evaluate %s/%s/seed%d parts: %s", dataset, method, seed, parts_text(seconds))
    return summary


# noise streams of the evaluations apart from each other (and from the DiffAug-Ensemble members, seeded by t < 1000)
_STREAMS = {"occlusion": 10_000, "crop": 20_000, "white_noise": 30_000, "salt_pepper": 40_000, "certify": 50_000}


def other_evaluations(cfg: Params, dataset: str, x: np.ndarray, y: np.ndarray,
                      predict: Callable[..., torch.Tensor], ensemble: Callable[[np.ndarray], torch.Tensor], diffaug: DiffAug,
                      metrics_of: Callable[[torch.Tensor, Any], dict[str, float]], device: torch.device,
                      out: Path, seconds: dict[str, float]) -> dict[str, Any]:
    """The comparison papers' other evaluations that `evaluate` switches on, on the clean test
    images x, y: Soft Augmentation's occlusion and crop sweeps, NFM's white and salt-and-pepper
    noise sweeps, DiffAug's OOD detection (default and DiffAug Ensemble) and certified accuracy by
    denoised smoothing. `predict(images, transform=...)` is the model's softmax, `ensemble` the
    DiffAug Ensemble's. Writes one CSV per evaluation under `out` (plot data) and returns their
    summaries keyed by level / set / sigma (so that `mean_over_seeds` averages them); the wall
    time of each goes to `seconds`."""
    ev, results = cfg.evaluate, {}
    out.mkdir(parents=True, exist_ok=True)
    meta = load_meta(paths.clean_dir(dataset))
    sweeps = {
        "occlusion": (ev.occlusion, lambda z, level, g: cutout(z, int(level), g, meta.mean if ev.occlusion.fill == "mean" else None),
                      True),
        "crop": (ev.crop, lambda z, level, g: random_crop(z, int(level), g), True),
        "white_noise": (ev.white_noise, lambda z, level, g: white_noise(z, level, meta.std, g), False),
        "salt_pepper": (ev.salt_pepper, salt_and_pepper, False),
    }
    for name, (sweep, perturb, visible) in sweeps.items():
        if sweep.enabled:
            images, labels = x[: sweep.images], y[: sweep.images]
            with timed(seconds, name):
                rows = perturbation_sweep(lambda transform: predict(images, transform=transform), labels, sweep.levels, perturb,
                                          metrics_of, stream_seed(cfg.seed, _STREAMS[name]), device, visible)
            save_csv(out / f"{name}.csv", rows)
            results[name] = {f"{row['level']:g}": {k: v for k, v in row.items() if k != "level"} for row in rows}
    if ev.ood.enabled:
        with timed(seconds, "ood"):
            results["ood"] = _ood_evaluation(cfg, dataset, x, predict, ensemble, out)
    if ev.certify.enabled:
        with timed(seconds, "certify"):
            results["certified"] = _certify_evaluation(cfg, x, y, meta.num_classes, predict, diffaug, device, out)
    return results


def _ood_evaluation(cfg: Params, dataset: str, x: np.ndarray, predict: Callable[..., torch.Tensor],
                    ensemble: Callable[[np.ndarray], torch.Tensor], out: Path) -> dict[str, Any]:
    """AUROC and FPR@95 of each score (mollify.evaluation.ood) for the test set against each OOD set, with the
    default prediction and the DiffAug Ensemble; ROC curves (MSP) at 101 FPR points (`ood_roc.csv`)."""
    n = cfg.evaluate.ood.images
    evaluations = {"default": predict, "diffaug_ensemble": ensemble}
    in_dist = {name: fn(x[:n]) for name, fn in evaluations.items()}
    results: dict[str, Any] = {}
    curves = []
    for name, (kind, images) in load_ood(paths.ood_dir(dataset)).items():
        results[name] = {"kind": kind, "images": len(images[:n])}
        for evaluation, fn in evaluations.items():
            probs = fn(images[:n])
            results[name][evaluation] = ood_metrics(in_dist[evaluation], probs)
            curve = roc_curve(SCORES["msp"](in_dist[evaluation]), SCORES["msp"](probs))
            curves += [{"ood_set": name, "evaluation": evaluation, "fpr": fpr, "tpr": tpr}
                       for fpr, tpr in roc_at(curve, [k / 100 for k in range(101)])]
    save_csv(out / "ood_roc.csv", curves)
    return results


def _certify_evaluation(cfg: Params, x: np.ndarray, y: np.ndarray, num_classes: int, predict: Callable[..., torch.Tensor],
                        diffaug: DiffAug, device: torch.device, out: Path) -> dict[str, Any]:
    """Certified accuracy at each radius of `evaluate.certify.radii` for each sigma, and the best
    sigma per radius (as the DiffAug paper's table): denoised smoothing with our diffusion model."""
    settings = cfg.evaluate.certify
    images = torch.from_numpy(x[:: settings.every]).to(device)
    labels = torch.from_numpy(y[:: settings.every])
    accuracy: dict[str, dict[str, float]] = {}
    timesteps: dict[str, int] = {}
    for k, sigma in enumerate(settings.sigmas):
        t = sigma_to_timestep(sigma, diffaug.alphas_cumprod.cpu())
        g = seeded_generator(stream_seed(cfg.seed, _STREAMS["certify"]), k, device)
        # the real classes' votes (with the extra noise class of `la`/`lm`, as metrics_of)
        classify = lambda copies, t=t, g=g: predict(copies, transform=lambda z: diffaug(z, g, t))[:, :num_classes].argmax(dim=1)  # noqa: E731
        predictions = certify(classify, images, num_classes, sigma, settings.n0, settings.n, settings.alpha, settings.batch_size)
        timesteps[f"{sigma:g}"] = t
        accuracy[f"sigma_{sigma:g}"] = dict(zip((f"{r:g}" for r in settings.radii), certified_accuracy(predictions, labels, settings.radii)))
    accuracy["best"] = {r: max(by_sigma[r] for by_sigma in accuracy.values()) for r in next(iter(accuracy.values()))}
    save_csv(out / "certified.csv", [{"sigma": key.removeprefix("sigma_"), "radius": float(r), "certified_acc": acc}
                                     for key, by_radius in accuracy.items() for r, acc in by_radius.items()])
    return {"images": len(labels), "n0": settings.n0, "n": settings.n, "alpha": settings.alpha, "timesteps": timesteps,
            "accuracy": accuracy}


def _severity_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """err, nll, ece (ece_batch_mean) by severity, 0 = clean (the 15 standard corruptions)."""
    rows = [{"severity": 0, **{k: summary["clean"][k] for k in summary_keys(summary["clean"])}}]
    return rows + [{"severity": int(s), **v} for s, v in summary.get("corrupted", {}).get("by_severity", {}).items()]


def diffaug_entropy(member_probs, images: np.ndarray, labels: np.ndarray, timesteps) -> list[dict[str, Any]]:
    """Mean predictive entropy (and error) of a classifier on the DiffAug images at each t (the
    DiffAug paper's Fig. 2); `member_probs(images, t)` is its softmax on them."""
    rows = []
    for t in timesteps:
        probs = member_probs(images, t)
        rows.append({"t": t, "entropy": float(predictive_entropy(probs).mean()),
                     "err": float((probs.argmax(1) != torch.from_numpy(np.asarray(labels))).double().mean())})
    return rows
