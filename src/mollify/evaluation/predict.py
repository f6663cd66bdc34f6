"""Prediction of a trained classifier: softmax over uint8 images (MC-dropout passes averaged), the DiffAug
Ensemble, predictive entropy, and the perturbation sweeps of the other evaluations."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from mollify.augment.diffaug import DiffAug
from mollify.device import Normalize, autocast, seeded_generator


Transform = Callable[[torch.Tensor], torch.Tensor]
_SOFTMAX_DTYPES = {"fp64": torch.float64, "fp32": torch.float32}


@torch.no_grad()
def predict_probs(model: nn.Module, images: np.ndarray | torch.Tensor, normalize: Normalize, device: torch.device,
                  batch_size: int = 1000, precision: str = "auto", samples: int = 1,
                  transform: Transform | None = None, softmax: str = "fp64") -> torch.Tensor:
    """Softmax of the model on uint8 images, batch by batch: float64 (N, K) on the CPU; the mean
    over `samples` stochastic passes for models with test-time dropout. `transform` maps each
    batch, as floats in [0, 1], before the classifier (e.g. a DiffAug step). `softmax` "fp32"
    computes each pass's softmax in fp32, as the releases' F.softmax of fp32 logits (a confidence
    rounds to exactly 1.0 there once the other classes' mass is below ~6e-8; their ECE and
    OpenOOD's MSP see those ties); "fp64" is ours."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        part = images[start : start + batch_size]
        # numpy parts are copied: a memory-mapped corrupted set is read-only
        x = (part if isinstance(part, torch.Tensor) else torch.from_numpy(np.array(part))).to(device, non_blocking=True)
        if transform is not None:
            x = transform(x.float() / 255) * 255
        x = normalize(x)
        probs = 0
        for _ in range(samples):
            with autocast(device, precision):
                logits = model(x)
            probs = probs + torch.softmax(logits.to(_SOFTMAX_DTYPES[softmax]), dim=1).double()
        out.append((probs / samples).cpu())
    return torch.cat(out)


def member_streams(seed: int, timesteps: list[int], device: torch.device) -> dict[int, torch.Generator]:
    """One noise stream per DiffAug-Ensemble member, seeded by `seed` and t (every classifier sees
    the same members). Pass the same streams to every chunk of one evaluation: each chunk then
    continues its member's stream instead of restarting it."""
    return {t: seeded_generator(seed, t, device) for t in timesteps}


def predict_probs_ensemble(model: nn.Module, images: np.ndarray | torch.Tensor, normalize: Normalize, device: torch.device,
                           diffaug: DiffAug, streams: dict[int, torch.Generator], batch_size: int = 1000,
                           precision: str = "auto", samples: int = 1, softmax: str = "fp64") -> torch.Tensor:
    """DiffAug Ensemble (Sastry et al., 2024): the softmax averaged over the members t of `streams`
    (member_streams), each the one-step diffuse-and-denoise of the images with one noise draw from
    its stream; t = 0 is the raw image."""
    total = 0
    for t, g in streams.items():
        transform = None if t == 0 else (lambda x, t=t, g=g: diffaug(x, g, t))
        total = total + predict_probs(model, images, normalize, device, batch_size, precision, samples, transform, softmax)
    return total / len(streams)


def predictive_entropy(probs: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum_k p_k log p_k per row (nats)."""
    return -(probs * probs.clamp_min(1e-300).log()).sum(dim=1)


def perturbation_sweep(probs_of: Callable[[Transform | None], torch.Tensor], labels: np.ndarray, levels: list[float],
                       perturb: Callable[..., Any], metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]],
                       seed: int, device: torch.device, visible: bool = False) -> list[dict[str, Any]]:
    """Metrics of the predictions `probs_of(transform)` under `perturb(x01, level, generator)` at each
    level (mollify.evaluation.perturbations; one noise stream per level, seeded by the level, so that its draws do
    not depend on the other levels of the list, continued over the batches). Level 0 is
    the clean evaluation itself (no transform). With `visible`, `perturb` returns the images and
    each one's visible fraction (occlusion, crop), and each row holds their mean as `visible`."""
    target = torch.from_numpy(np.asarray(labels))
    rows = []
    for level in levels:
        g = seeded_generator(seed, round(level * 1000), device)
        fractions: list[torch.Tensor] = []

        def transform(x: torch.Tensor, level: float = level, g: torch.Generator = g) -> torch.Tensor:
            if not visible:
                return perturb(x, level, g)
            out, fraction = perturb(x, level, g)
            fractions.append(fraction.double().cpu())
            return out

        row = {"level": level, **metrics(probs_of(transform if level > 0 else None), target)}
        if visible:
            row["visible"] = float(torch.cat(fractions).mean()) if fractions else 1.0
        rows.append(row)
    return rows
