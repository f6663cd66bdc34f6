"""Soft Augmentation: the soft target curve, the crop and its visible fraction."""

import pytest
import torch

from mollify.augment import SoftAugmentation
from mollify.augment.soft_augmentation import crop_offsets, soft_crop, soft_targets, target_confidence


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
    assert float(o.double().std()) == pytest.approx(12.0, rel=0.06)


def test_batch_step_weights_targets_by_confidence_and_turns_off_at_the_end():
    x = torch.randn(64, 3, 32, 32)
    labels = torch.randint(0, 10, (64,))
    sa = SoftAugmentation(10, final_epochs_without=2)
    out, y = sa(x, labels, torch.Generator().manual_seed(0))
    p = y.gather(1, labels[:, None]).squeeze(1) ** 0.5  # weighted target on the true class is p * p
    torch.testing.assert_close(y.sum(1), p, atol=1e-5, rtol=0)
    sa.start_epoch(8, 10)
    out, y = sa(x, labels, torch.Generator().manual_seed(0))
    assert torch.equal(out, x) and torch.allclose(y, torch.nn.functional.one_hot(labels, 10).float())
