"""Build the pieces of one (dataset, method) run from validated params: the layer between the
stage CLIs and the library, so that stages stay a few lines of orchestration."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn as nn

from mollify import distributed, paths
from mollify.augment import (Augmentation, BatchRecipe, DiffAug, Mollification, NoisyFeatureMixup, NormalizedDiffAug,
                             SoftAugmentation, compose, ensemble_timesteps, make_policy)
from mollify.config import MethodConfig, Params, TrainConfig
from mollify.data import DatasetMeta, load_meta, load_split
from mollify.certify import certified_accuracy, certify, sigma_to_timestep
from mollify.data.ood import load_ood
from mollify.device import Normalize, resolve_device, seeded_generator, stream_seed
from mollify.ensemble import ensemble_size_curve
from mollify.errors import MollifyError
from mollify.diffusion import (NUM_TIMESTEPS, DiffusionSettings, denoising_mse, linear_alphas_cumprod, load_unet,
                               make_unet, save_pipeline, train_diffusion)
from mollify.evaluate import (Transform, headline, mean_over_seeds, member_streams, perturbation_sweep, predict_probs,
                              predict_probs_ensemble, predictive_entropy, summarize, summary_keys)
from mollify.io import load_images, load_json, load_npy, load_torch, save_csv, save_json, save_torch
from mollify.losses import LOSSES
from mollify.metrics import classification_metrics, reliability_bins
from mollify.models import create_model, is_stochastic
from mollify.ood import SCORES, ood_metrics, roc_at, roc_curve
from mollify.robustness import cutout, random_crop, salt_and_pepper, white_noise
from mollify.train import TrainSettings, train

log = logging.getLogger(__name__)


def train_method(cfg: Params, dataset: str, method: str, seed: int = 0, show_progress: bool = True) -> list[dict[str, Any]]:
    """Train the recipe `method` on `dataset` with training seed `seed` (initialisation, batches,
    augmentation draws); write final weights and the training log (under torchrun, rank 0 writes)."""
    recipe = cfg.recipe(method)
    device = resolve_device(cfg.device)
    meta = load_meta(paths.clean_dir(dataset))
    x, y = load_split(paths.clean_dir(dataset), "train", meta.num_classes)
    model_name = cfg.model_name(method, dataset)
    normalize = Normalize(meta.mean, meta.std, device, cfg.train.channels_last)
    diffaug = NormalizedDiffAug(load_diffaug(dataset, device, cfg.train.precision), normalize) if recipe.diffaug else None
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
    fingerprint = _fingerprint({"settings": asdict(settings), "recipe": recipe.model_dump(), "model": model_name,
                                "train": cfg.train.model_dump(), "data": hashlib.sha256(x.tobytes()).hexdigest(),
                                "code": _code_fingerprint(), "diffusion": _diffusion_fingerprint(dataset) if diffaug else None})
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
            "state_dict": model.state_dict(), "method": method, "seed": seed,
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
        augmix_views=make_policy("augmix") if recipe.augmix_jsd else None,
    )


def load_diffaug(dataset: str, device: torch.device, precision: str = "auto") -> DiffAug:
    """DiffAug with the diffusion stage's model of `dataset`."""
    return DiffAug(load_unet(paths.diffusion_dir(dataset)).to(device), precision)


def _diffusion_fingerprint(dataset: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths.diffusion_dir(dataset).rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _fingerprint(parts: dict[str, Any]) -> dict[str, str]:
    """A hash per part, so that an ignored checkpoint can say which part differs."""
    return {key: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
            for key, value in parts.items()}


def _code_fingerprint() -> str:
    """Hash of the library's source: a checkpoint made by other code is not resumed."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_model(dataset: str, method: str, device: torch.device, seed: int = 0) -> nn.Module:
    return load_model_file(paths.model_file(dataset, method, seed), device)


def load_model_file(path: Path, device: torch.device) -> nn.Module:
    state = load_torch(path)
    try:
        model = create_model(state["model"], state["num_classes"], **state.get("options", {}))
        model.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError) as e:
        raise MollifyError(f"{path} does not hold weights of a known model ({e}); re-run its train stage.") from None
    return model.to(device)


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
    batch, precision = cfg.evaluate.batch_size, cfg.train.precision

    def plain(images: np.ndarray | torch.Tensor, samples: int = samples, transform: Transform | None = None) -> torch.Tensor:
        return predict_probs(model, images, normalize, device, batch, precision, samples, transform)

    def plain_corrupted(images: np.ndarray) -> torch.Tensor:
        return plain(images, samples_corrupted)

    def metrics_of(probs: torch.Tensor, labels: np.ndarray) -> dict[str, float]:
        # with the extra noise class of `la`/`lm`, the real classes' probabilities (our reading: the reference crashes there)
        return classification_metrics(probs[:, : meta.num_classes], torch.from_numpy(np.asarray(labels)), bins,
                                      cfg.evaluate.ece_batch_size)

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
    with _timed(seconds, "clean"):
        clean_probs = plain(x)
        clean = metrics_of(clean_probs, y)
    with _timed(seconds, "corrupted"):
        table = corruption_table(plain_corrupted)
    summary = summarize(clean, table)
    summary["corrupted_source"] = load_json(paths.corrupted_dir(dataset) / "source.json")
    if stochastic:
        summary["mc_samples"] = cfg.evaluate.mc_samples
        summary["mc_samples_corrupted"] = cfg.evaluate.mc_samples_corrupted
        with _timed(seconds, "MC-dropout sweep"):
            summary["mc_sweep"] = {str(n): metrics_of(plain(x, n), y) for n in cfg.evaluate.mc_sweep}

    # DiffAug Ensemble beside the default evaluation, on the same images
    de = cfg.evaluate.diffaug_ensemble
    diffaug = load_diffaug(dataset, device, precision)
    members = ensemble_timesteps(de.step, de.max_t)
    streams = member_streams(cfg.seed, members, device)  # continued over the clean set and every chunk

    def ensemble(images: np.ndarray, samples: int = samples) -> torch.Tensor:
        return predict_probs_ensemble(model, images, normalize, device, diffaug, streams, batch, precision, samples)

    n = de.corrupted_images
    with _timed(seconds, "DiffAug Ensemble"):
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
                                      batch, precision, samples)

    with _timed(seconds, "entropy"):
        entropy = diffaug_entropy(member, x[: de.entropy_images], y[: de.entropy_images], range(0, 1000, de.entropy_step))
    save_csv(out / "diffaug_entropy.csv", entropy)
    rel = reliability_bins(clean_probs, torch.from_numpy(y), bins)
    save_csv(out / "reliability.csv", [
        {"bin": b, "confidence": float(rel["confidence"][b]), "accuracy": float(rel["accuracy"][b]), "count": int(rel["count"][b])}
        for b in range(bins)
    ])
    log.info("evaluate %s/%s/seed%d parts: %s", dataset, method, seed, ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    return summary


@contextmanager
def _timed(seconds: dict[str, float], part: str) -> Iterator[None]:
    """Add the wall time of the block to seconds[part]."""
    start = time.perf_counter()
    yield
    seconds[part] = seconds.get(part, 0.0) + time.perf_counter() - start


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
        members.append(predict_probs(model, x, normalize, device, cfg.evaluate.batch_size, cfg.train.precision, samples))
    return ensemble_size_curve([p[:, : meta.num_classes] for p in members], torch.from_numpy(y),
                               lambda probs, labels: classification_metrics(probs, labels, cfg.evaluate.ece_bins))


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
        "occlusion": (ev.occlusion, lambda z, level, g: cutout(z, int(level), g), True),
        "crop": (ev.crop, lambda z, level, g: random_crop(z, int(level), g), True),
        "white_noise": (ev.white_noise, lambda z, level, g: white_noise(z, level, meta.std, g), False),
        "salt_pepper": (ev.salt_pepper, salt_and_pepper, False),
    }
    for name, (sweep, perturb, visible) in sweeps.items():
        if sweep.enabled:
            images, labels = x[: sweep.images], y[: sweep.images]
            with _timed(seconds, name):
                rows = perturbation_sweep(lambda transform: predict(images, transform=transform), labels, sweep.levels, perturb,
                                          metrics_of, stream_seed(cfg.seed, _STREAMS[name]), device, visible)
            save_csv(out / f"{name}.csv", rows)
            results[name] = {f"{row['level']:g}": {k: v for k, v in row.items() if k != "level"} for row in rows}
    if ev.ood.enabled:
        with _timed(seconds, "ood"):
            results["ood"] = _ood_evaluation(cfg, dataset, x, predict, ensemble, out)
    if ev.certify.enabled:
        with _timed(seconds, "certify"):
            results["certified"] = _certify_evaluation(cfg, x, y, meta.num_classes, predict, diffaug, device, out)
    return results


def _ood_evaluation(cfg: Params, dataset: str, x: np.ndarray, predict: Callable[..., torch.Tensor],
                    ensemble: Callable[[np.ndarray], torch.Tensor], out: Path) -> dict[str, Any]:
    """AUROC and FPR@95 of each score (mollify.ood) for the test set against each OOD set, with the
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


def prepare_diffusion(cfg: Params, dataset: str, show_progress: bool = True) -> dict[str, Any]:
    """The diffusion stage: train the DDPM on the train split (resumably) or load the configured
    pretrained one; write it as a diffusers pipeline, its held-out denoising MSE vs t (metrics and
    plot data) and its training log."""
    settings_cfg = cfg.diffusion
    device = resolve_device(cfg.device)
    x, _ = load_split(paths.clean_dir(dataset), "train")
    held_out = torch.from_numpy(load_split(paths.clean_dir(dataset), "test")[0][: settings_cfg.eval_images]).to(device)
    log: list[dict[str, Any]] = []
    if settings_cfg.pretrained is not None:
        unet = load_unet(settings_cfg.pretrained, settings_cfg.download).to(device)
        if unet.config.sample_size != x.shape[-1] or unet.config.in_channels != x.shape[1]:
            raise MollifyError(f"diffusion.pretrained {settings_cfg.pretrained!r} is a {unet.config.sample_size} px, "
                               f"{unet.config.in_channels}-channel model; {dataset} has {x.shape[-1]} px images.")
    else:
        torch.manual_seed(cfg.seed)
        unet = make_unet(settings_cfg.unet, x.shape[-1], x.shape[1]).to(device)
        settings = DiffusionSettings(steps=settings_cfg.steps, batch_size=settings_cfg.batch_size, lr=settings_cfg.lr,
                                     ema_decay=settings_cfg.ema_decay, seed=cfg.seed, eval_every=settings_cfg.eval_every)
        fingerprint = _fingerprint({"settings": asdict(settings), "unet": settings_cfg.unet, "code": _code_fingerprint(),
                                    "data": hashlib.sha256(x.tobytes()).hexdigest()})
        unet, log = train_diffusion(unet, torch.from_numpy(x).to(device), held_out, settings,
                                    paths.diffusion_checkpoint(dataset), fingerprint, show_progress,
                                    f"Lower diffusion.lr (now {settings_cfg.lr:g}).")
    save_pipeline(unet, paths.diffusion_dir(dataset))
    curve = denoising_mse(unet, held_out, list(range(0, NUM_TIMESTEPS, 50)) + [NUM_TIMESTEPS - 1], linear_alphas_cumprod(), cfg.seed)
    out = paths.diffusion_plots_dir(dataset)
    save_csv(out / "denoising_mse.csv", [{"t": t, "mse": mse} for t, mse in curve.items()])
    if log:
        save_csv(out / "train_log.csv", log)
    from mollify.plots import diffaug_examples  # matplotlib: imported by the one stage that draws

    test_images = load_split(paths.clean_dir(dataset), "test")[0][:4]
    diffaug_examples(test_images, DiffAug(unet), list(range(350, 701, 50)), cfg.seed, out / "diffaug_examples.png")
    metrics = {
        "source": settings_cfg.pretrained or f"trained: {settings_cfg.unet}, {settings_cfg.steps} steps",
        "parameters": sum(p.numel() for p in unet.parameters()),
        "held_out_images": len(held_out),
        "denoising_mse": {f"t{t}": curve[t] for t in (100, 300, 500)},
        "denoising_mse_mean": sum(curve.values()) / len(curve),
    }
    save_json(paths.diffusion_metrics_file(dataset), metrics)
    return metrics
