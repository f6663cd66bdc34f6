"""Certification by (denoised) randomized smoothing (mollify.evaluation.certify): Cohen et al.'s bound and radius."""

import numpy as np
import pytest
import torch

from mollify.evaluation.certify import (ABSTAIN, certified_accuracy, certified_radius, certify, certify_counts,
                                        class_counts, lower_confidence_bound, sigma_to_timestep)
from mollify.diffusion.model import linear_alphas_cumprod


@pytest.mark.parametrize("z, sigma", [(1.0, 0.5), (2.0, 0.25), (0.5, 1.0)])
def test_radius_is_sigma_times_the_normal_quantile(z, sigma):
    p_a = 0.5 * (1 + torch.erf(torch.tensor(z, dtype=torch.float64) / 2**0.5)).item()  # Phi(z)
    assert certified_radius(p_a, sigma) == pytest.approx(sigma * z, rel=1e-9)


def test_clopper_pearson_bound_when_every_draw_agrees():
    """With n of n successes the one-sided lower bound solves p^n = alpha."""
    assert lower_confidence_bound(100, 100, 0.001) == pytest.approx(0.001 ** (1 / 100), rel=1e-9)
    assert lower_confidence_bound(0, 100, 0.001) == 0.0


def test_clopper_pearson_bound_against_the_binomial_tail():
    """The bound p solves P(Binomial(n, p) >= n_a) = alpha (summed here term by term)."""
    from math import comb

    n, n_a, alpha = 50, 40, 0.01
    p = lower_confidence_bound(n_a, n, alpha)
    tail = sum(comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n_a, n + 1))
    assert tail == pytest.approx(alpha, rel=1e-6)


def test_abstains_when_the_bound_is_below_one_half():
    selection = torch.tensor([1, 0, 9])
    assert certify_counts(selection, torch.tensor([40, 10, 50]), 0.5, 0.001) == (ABSTAIN, 0.0)
    top, radius = certify_counts(selection, torch.tensor([0, 0, 100]), 0.5, 0.001)
    assert top == 2 and radius == pytest.approx(0.5 * certified_radius(0.001 ** (1 / 100), 1.0))


def test_certify_a_constant_classifier():
    """A base classifier that always says class 1: every image gets class 1 and the radius of
    pA = alpha^(1/n); certified accuracy is the fraction labelled 1 up to that radius, 0 beyond."""
    images = torch.zeros(3, 3, 4, 4)
    predictions = certify(lambda batch: torch.ones(len(batch), dtype=torch.long), images, 4, 0.25, 5, 30, 0.01, 7)
    radius = 0.25 * certified_radius(0.01 ** (1 / 30), 1.0)
    assert [p for p, _ in predictions] == [1, 1, 1]
    assert all(r == pytest.approx(radius) for _, r in predictions)
    acc = certified_accuracy(predictions, torch.tensor([1, 1, 0]), [0.0, radius - 1e-9, radius + 1e-6])
    assert acc == pytest.approx([2 / 3, 2 / 3, 0.0])


def test_class_counts_cover_every_draw_of_every_image_in_batches():
    calls = []

    def classify(batch):  # class = the image's first pixel (its index here)
        calls.append(len(batch))
        return batch[:, 0, 0, 0].long()

    images = torch.arange(3).float().view(3, 1, 1, 1).expand(3, 2, 2, 2)
    counts = class_counts(classify, images, 10, 4, 7)
    assert calls == [7, 7, 7, 7, 2]  # 30 copies
    assert counts.tolist() == [[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0]]


@pytest.mark.parametrize("sigma", [0.25, 0.5, 1.0])
def test_sigma_maps_to_the_first_timestep_with_that_noise(sigma):
    """Carlini et al.'s loop, written out: t = 1, 2, ... until sqrt(1 - abar_t) / sqrt(abar_t) >= 2 sigma."""
    abar = linear_alphas_cumprod().double().numpy()
    t = 1
    while np.sqrt(1 - abar[t]) / np.sqrt(abar[t]) < 2 * sigma:
        t += 1
    assert sigma_to_timestep(sigma, linear_alphas_cumprod()) == t


def test_sigma_beyond_the_schedule_is_refused():
    with pytest.raises(ValueError, match="beyond"):
        sigma_to_timestep(1e4, linear_alphas_cumprod())
