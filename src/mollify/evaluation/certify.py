"""Certified l2 robustness by denoised randomized smoothing (DiffAug, Sastry et al. 2024, which
certifies with Carlini et al.'s code, ethz-spylab/diffusion_denoised_smoothing `cifar10/certify.py`
and `core.py`, itself Cohen et al.'s locuslab/smoothing `code/core.py`).

The smoothed classifier g(x) = argmax_c P(f(denoise(x + sigma eps)) = c): Gaussian noise of scale
sigma (images in [0, 1]) is the forward diffusion to the timestep t* whose noise-to-signal ratio
sqrt(1 - abar_t) / sqrt(abar_t) first reaches 2 sigma (2 sigma in the model's [-1, 1] range), then
one denoising step (the Tweedie estimate) and the classifier f. CERTIFY (Cohen et al., Alg. 1):
guess the top class from N0 noise draws, count it in N more, take the one-sided Clopper-Pearson
lower bound pA of its probability at level alpha; abstain when pA < 1/2, else certify the radius
sigma * Phi^-1(pA).
"""

from __future__ import annotations

from typing import Callable

import torch
from scipy.stats import beta, norm

ABSTAIN = -1


def sigma_to_timestep(sigma: float, alphas_cumprod: torch.Tensor) -> int:
    """The first t >= 1 with sqrt(1 - abar_t) / sqrt(abar_t) >= 2 sigma (Carlini et al.'s loop)."""
    ratio = ((1 - alphas_cumprod) / alphas_cumprod).sqrt()
    reached = torch.nonzero(ratio[1:] >= 2 * sigma)
    if len(reached) == 0:
        raise ValueError(f"sigma {sigma} is beyond the diffusion model's largest noise level {float(ratio[-1]) / 2:.3g}")
    return int(reached[0, 0]) + 1


def lower_confidence_bound(n_a: int, n: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on a binomial proportion (Cohen et al.:
    statsmodels' proportion_confint(n_a, n, alpha=2 alpha, method="beta")[0])."""
    return 0.0 if n_a == 0 else float(beta.ppf(alpha, n_a, n - n_a + 1))


def certified_radius(p_a: float, sigma: float) -> float:
    """Cohen et al.'s l2 radius sigma * Phi^-1(pA) of the lower bound pA (> 1/2)."""
    return float(sigma * norm.ppf(p_a))


def certify_counts(selection: torch.Tensor, estimation: torch.Tensor, sigma: float, alpha: float) -> tuple[int, float]:
    """(class, radius) from the class counts of the N0 selection and the N estimation draws;
    (ABSTAIN, 0.0) when the lower bound on the top class's probability is below 1/2."""
    top = int(selection.argmax())
    p_a = lower_confidence_bound(int(estimation[top]), int(estimation.sum()), alpha)
    return (ABSTAIN, 0.0) if p_a < 0.5 else (top, certified_radius(p_a, sigma))


def class_counts(classify: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, num: int, num_classes: int,
                 batch_size: int) -> torch.Tensor:
    """(B, K) counts of the classes that `classify` (a batch of images -> predicted classes, drawing
    its own noise) gives on `num` copies of each image (B, C, H, W); the copies of all images are
    classified together in batches of `batch_size` (few, large passes of the diffusion model)."""
    owner = torch.arange(len(images)).repeat_interleave(num)
    counts = torch.zeros(len(images) * num_classes, dtype=torch.long)
    for start in range(0, len(owner), batch_size):
        part = owner[start : start + batch_size]
        counts += torch.bincount(part * num_classes + classify(images[part.to(images.device)]).cpu(),
                                 minlength=len(counts))
    return counts.view(len(images), num_classes)


def certify(classify: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, num_classes: int, sigma: float,
            n0: int, n: int, alpha: float, batch_size: int) -> list[tuple[int, float]]:
    """CERTIFY on each image: (class or ABSTAIN, radius); the N0 selection draws of all images
    first, then their N estimation draws (Cohen et al. draw image by image: the same distribution)."""
    selection = class_counts(classify, images, n0, num_classes, batch_size)
    estimation = class_counts(classify, images, n, num_classes, batch_size)
    return [certify_counts(s, e, sigma, alpha) for s, e in zip(selection, estimation)]


def certified_accuracy(predictions: list[tuple[int, float]], labels: torch.Tensor, radii: list[float]) -> list[float]:
    """Fraction of images certified correct at radius >= r, for each r (Cohen et al.'s analyze.py)."""
    correct = torch.tensor([p == int(y) for (p, _), y in zip(predictions, labels)])
    radius = torch.tensor([r for _, r in predictions])
    return [float((correct & (radius >= r)).double().mean()) for r in radii]
