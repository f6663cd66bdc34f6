"""Soft Augmentation: the soft target curve, the crop and its visible fraction, the released loss
weight and fine-tune phase."""

import math

import pytest
import torch
import torch.nn.functional as F

from mollify.augment import SoftAugmentation
from mollify.augment.soft_augmentation import crop_offsets, soft_crop, soft_crop_off_from, soft_targets, target_confidence
from mollify.config import parse_params
from mollify.errors import MollifyError
from mollify.training.losses import soft_cross_entropy


def test_target_curve_matches_the_reference_formula():
    k = 100
    v = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.01, 0.0, -0.2])
    expected = [1 - (1 - 1 / k) * (1 - vi) ** 2 if vi > 0 else 1 / k for vi in v.tolist()]
    torch.testing.assert_close(target_confidence(v, k, 2.0), torch.tensor(expected))
    assert float(target_confidence(torch.tensor(1.0), k)) == 1.0  # the uncropped image: full confidence
    dense = target_confidence(torch.linspace(0, 1, 101), 10, 2.0)
    assert bool((dense.diff() >= 0).all())  # monotone in the visible fraction
    torch.testing.assert_close(target_confidence(torch.tensor([0.5]), 10, 1.0), torch.tensor([1 - 0.9 * 0.5]))


def test_soft_targets_sum_to_one():
    labels = torch.tensor([0, 3, 9])
    p = torch.tensor([1.0, 0.5, 0.1])
    y = soft_targets(labels, p, 10)
    torch.testing.assert_close(y.sum(1), torch.ones(3))
    torch.testing.assert_close(y[1, 3], torch.tensor(0.5))
    torch.testing.assert_close(y[1, 0], torch.tensor(0.5 / 9))


def test_crop_window_and_visible_fraction():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8) + 1
    offsets = torch.tensor([[0, 0], [3, -2]])
    out = soft_crop(x, offsets, torch.zeros(2, 3))
    assert torch.equal(out[0], x[0])  # offset 0: the image itself
    assert torch.equal(out[1, :, :5, 2:], x[1, :, 3:, :6])  # shifted down-right view
    assert bool((out[1, :, 5:, :] == 0).all()) and bool((out[1, :, :, :2] == 0).all())  # canvas
    visible = ((out[1] != 0).all(0)).float().mean()
    assert float(visible) == pytest.approx((8 - 3) * (8 - 2) / 64)


def test_offsets_are_truncated_normal_within_the_image():
    g = torch.Generator().manual_seed(0)
    o = crop_offsets(200_000, 32, 12.0, g, torch.device("cpu"))
    assert int(o.abs().max()) <= 32
    zero = (o == 0).double().mean()
    one = (o == 1).double().mean()
    assert float(zero) == pytest.approx(2 * float(one), rel=0.1)  # int() truncation doubles 0
    # the exact std of trunc(N(0, 12)) given |N(0, 12)| <= 32: P(o = +-k) = P(k <= |x| < k + 1) for k >= 1
    cdf = lambda z: 0.5 * (1 + math.erf(z / (12.0 * math.sqrt(2))))  # noqa: E731
    mass = {k: 2 * (cdf(k + 1) - cdf(k)) for k in range(1, 32)}
    std = math.sqrt(sum(k * k * m for k, m in mass.items()) / (2 * cdf(32) - 1))
    assert float(o.double().std()) == pytest.approx(std, rel=0.01)


def test_batch_step_weights_targets_by_confidence_and_turns_off_at_the_end():
    x = torch.randn(64, 3, 32, 32)
    labels = torch.randint(0, 10, (64,))
    sa = SoftAugmentation(10, final_epochs_without=2, confidence_weight="per_sample")
    out, y = sa(x, labels, torch.Generator().manual_seed(0))
    p = y.gather(1, labels[:, None]).squeeze(1) ** 0.5  # weighted target on the true class is p * p
    torch.testing.assert_close(y.sum(1), p, atol=1e-5, rtol=0)
    sa.start_epoch(8, 10)
    out, y = sa(x, labels, torch.Generator().manual_seed(0))
    assert torch.equal(out, x) and torch.allclose(y, torch.nn.functional.one_hot(labels, 10).float())


def _release_p_and_q(labels: torch.Tensor, seed: int, k: int = 10, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """p and the soft target q of the release's equations, from the offsets that `seed` draws."""
    o = crop_offsets(len(labels), size, 12.0, torch.Generator().manual_seed(seed), torch.device("cpu")).double()
    v = (size - o[:, 0].abs()) * (size - o[:, 1].abs()) / size**2
    p = 1 - (1 - 1 / k) * (1 - v) ** 2
    q = ((1 - p) / (k - 1))[:, None].repeat(1, k)
    q[torch.arange(len(labels)), labels] = p
    return p.float(), q.float()


def test_released_loss_is_the_batch_mean_of_p_times_the_soft_target_loss():
    labels = torch.arange(32) % 10
    _, y = SoftAugmentation(10)(torch.randn(32, 3, 32, 32), labels, torch.Generator().manual_seed(3))
    p, q = _release_p_and_q(labels, 3)
    assert float(p.std()) > 0.05  # the crops differ: batch mean and per-sample weights differ
    logits = torch.randn(32, 10, requires_grad=True)
    ours = soft_cross_entropy(logits, y)
    ce = -(q * F.log_softmax(logits, 1)).sum(1)
    torch.testing.assert_close(ours, p.mean() * ce.mean())
    # the release: a (B, 1) weight times the (B,) per-sample KL broadcasts to (B, B), then the mean
    kl = F.kl_div(F.log_softmax(logits, 1), q, reduction="none").sum(-1)
    released = (p[:, None] * kl).mean()
    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_release,) = torch.autograd.grad(released, logits)
    torch.testing.assert_close(g_ours, g_release)
    torch.testing.assert_close(g_ours, p.mean() * (torch.softmax(logits, 1) - q) / 32)


@pytest.mark.parametrize(("mode", "weight"), [("per_sample", lambda p: p), ("none", lambda p: torch.ones_like(p))])
def test_per_sample_and_unweighted_options(mode, weight):
    labels = torch.arange(16) % 10
    _, y = SoftAugmentation(10, confidence_weight=mode)(torch.randn(16, 3, 32, 32), labels, torch.Generator().manual_seed(4))
    p, q = _release_p_and_q(labels, 4)
    torch.testing.assert_close(y, weight(p)[:, None] * q)


def test_offsets_are_checked_before_truncation():
    # at sigma 32 the old truncate-then-check gave |offset| = 32 (an empty crop) in ~2% of draws
    o = crop_offsets(100_000, 32, 32.0, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert int(o.abs().max()) == 31 and int((o.abs() == 31).sum()) > 100


def test_soft_crop_is_off_for_the_releases_final_epochs_and_never_the_first_5_percent():
    assert soft_crop_off_from(501, 21) == 480  # EPOCH = 500, ft = 20: epochs 480..500 off, 21 of 501
    sa = SoftAugmentation(100, final_epochs_without=21)
    on = []
    for epoch in range(501):
        sa.start_epoch(epoch, 501)
        on.append(sa.active)
    assert on == [True] * 480 + [False] * 21
    assert soft_crop_off_from(41, 40) == 2  # max(0.05 x 40, 41 - 40): on for the first 2 epochs
    assert soft_crop_off_from(1, 1) == 0  # off for the only epoch: rejected by the config


def test_a_setting_that_turns_the_soft_crop_off_for_every_epoch_is_rejected():
    raw = {"datasets": ["demo"], "methods": ["sa"], "corrupt": {"corruptions": ["fog"]}, "train": {"epochs": 1},
           "recipes": {"sa": {"augment": ["flip"], "softaug": {"final_epochs_without": 1}}}}
    with pytest.raises(MollifyError, match="recipes.sa.softaug.final_epochs_without=1 turns the soft crop off for all 1 epochs"):
        parse_params(raw)
    raw["train"]["epochs"] = 2
    assert parse_params(raw).recipe("sa").softaug.final_epochs_without == 1


@pytest.mark.parametrize(("power", "confidence"), [
    # offsets (4, -8) on 32 px: v = 28 x 24 / 1024 = 0.65625; p = 1 - 0.9 (1 - v)^k
    (2.0, [1 - 0.9 * 0.34375**2, 1 - 0.9 * 0.5**2, 0.1]),
    (3.0, [1 - 0.9 * 0.34375**3, 1 - 0.9 * 0.5**3, 0.1]),
])
def test_visible_fraction_from_both_offsets_to_confidence(monkeypatch, power, confidence):
    # the second sample loses half a row-range (16 rows), the third a whole column-range (v = 0 -> 1/K);
    # in float64 throughout for float64 images
    offsets = torch.tensor([[4, -8], [16, 0], [0, 32]])
    monkeypatch.setattr("mollify.augment.soft_augmentation.crop_offsets", lambda *args: offsets)
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    labels = torch.tensor([1, 2, 3])
    _, y = SoftAugmentation(10, power=power, confidence_weight="none")(x, labels, torch.Generator().manual_seed(0))
    p = torch.tensor(confidence, dtype=torch.float64)
    torch.testing.assert_close(y[torch.arange(3), labels], p, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y[:, 0], (1 - p) / 9, rtol=1e-12, atol=1e-12)


def test_confidence_defaults_and_edges():
    assert float(target_confidence(torch.tensor(0.5), 10)) == pytest.approx(1 - 0.9 * 0.25)  # power 2 by default
    assert float(target_confidence(torch.tensor(1.5), 10)) == 1.0  # more than the image visible: still 1
    assert target_confidence(torch.tensor(0.0), 10) == torch.tensor(0.1)  # exactly 1/K, not 1 - (1 - 1/K)
    y = soft_targets(torch.tensor([0, 3]), torch.tensor([0.5, 0.8]), 10)  # labels below K - 1: still K columns
    assert y.shape == (2, 10) and float(y[1, 9]) == pytest.approx(0.2 / 9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_soft_crop_sigma_and_background(monkeypatch, dtype):
    """The active crop draws offsets at sigma_crop, the switched-off one at sigma_crop / 1000; the
    canvas is `background` x N(0, 1) per channel, drawn after the offsets from the same generator."""
    sigmas = []

    def spy(batch, size, sigma, g, device):
        sigmas.append(sigma)
        return torch.tensor([[0, 31]] * batch)  # only the first column of the image stays in view

    monkeypatch.setattr("mollify.augment.soft_augmentation.crop_offsets", spy)
    x = torch.randn(2, 3, 32, 32, dtype=dtype)
    sa = SoftAugmentation(10, sigma_crop=6.0, background=0.5)
    out, _ = sa(x, torch.tensor([0, 1]), torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    background = 0.5 * torch.randn(2, 3, generator=g, dtype=dtype)  # drawn in the images' precision
    torch.testing.assert_close(out[:, :, :, 0], x[:, :, :, 31])
    assert torch.equal(out[:, :, :, 1:], background[:, :, None, None].expand(2, 3, 32, 31))  # float32 draws differ by 1e-8
    sa.start_epoch(9, 10)  # final_epochs_without = 21 > 10: off from epoch max(0.45, -11) on
    sa(x, torch.tensor([0, 1]), torch.Generator().manual_seed(7))
    assert sigmas == [6.0, 0.006]


@pytest.mark.parametrize(("epochs", "final", "first_off"), [(10, 3, 7), (10, 1, 9), (100, 99, 4.95), (200, 1, 199)])
def test_switch_off_epoch_known_values(epochs, final, first_off):
    """max(0.05 (E - 1), E - ft - 1 + 1): the release's max(0.05 EPOCH, EPOCH - ft) with EPOCH = E - 1, ft = final - 1."""
    assert soft_crop_off_from(epochs, final) == pytest.approx(first_off)
    sa = SoftAugmentation(10, final_epochs_without=final)
    active = []
    for epoch in range(epochs):
        sa.start_epoch(epoch, epochs)
        active.append(sa.active)
    assert active.index(False) == math.ceil(first_off) and not any(active[math.ceil(first_off):])


def test_the_schema_and_the_class_share_the_releases_fine_tune_length():
    # train.py: --ft 20, off from epoch EPOCH - ft of epochs 0..EPOCH, so 21 epochs; one value everywhere
    raw = {"datasets": ["demo"], "methods": ["sa"], "corrupt": {"corruptions": ["fog"]}, "train": {"epochs": 501},
           "recipes": {"sa": {"augment": ["flip"], "softaug": {}}}}
    assert parse_params(raw).recipe("sa").softaug.final_epochs_without == 21
    assert SoftAugmentation(100).final_epochs_without == 21
