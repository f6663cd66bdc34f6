"""Test-time perturbations of the occlusion, crop and noise sweeps (mollify.evaluation.perturbations)."""

import math

import pytest
import torch
import torch.nn.functional as F

from mollify.device import Normalize
from mollify.evaluation.perturbations import cutout, random_crop, salt_and_pepper, white_noise


def _images(n=4, size=8, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_level_zero_is_the_identity():
    x = _images()
    assert white_noise(x, 0, (0.2, 0.2, 0.2), _g()) is x
    assert salt_and_pepper(x, 0, _g()) is x
    for perturb in (cutout, random_crop):
        out, visible = perturb(x, 0, _g())
        assert out is x and visible.tolist() == [1.0] * 4


def test_white_noise_is_eps_on_the_standardised_image():
    """Standardised by std, the added noise has standard deviation eps in every channel."""
    std = (0.1, 0.2, 0.4)
    x = torch.full((2000, 3, 8, 8), 0.5)
    noise = (white_noise(x, 0.3, std, _g()) - x) / torch.tensor(std).view(1, 3, 1, 1)
    assert noise.std(dim=(0, 2, 3)).tolist() == pytest.approx([0.3] * 3, rel=0.01)
    assert noise.mean().abs() < 0.005


def test_salt_and_pepper_changes_the_first_channel_only():
    """ceil(amount * H * W / 2) distinct pixels of channel 0 go to its minimum, as many to its
    maximum (NFM's sp): on distinct values, exactly that many equal each extreme."""
    x = torch.randperm(3 * 64, generator=_g()).float().view(1, 3, 8, 8) / 192
    out = salt_and_pepper(x, 0.1, _g(1))  # k = ceil(0.1 * 64 / 2) = 4
    assert torch.equal(out[:, 1:], x[:, 1:])
    channel, original = out[0, 0], x[0, 0]
    changed = channel != original
    assert set(channel[changed].tolist()) <= {original.min().item(), original.max().item()}
    # the original extremes may be drawn too: 4 pixels at each extreme, or 3 + the original one
    assert (channel == original.min()).sum() in (4, 5) and (channel == original.max()).sum() in (4, 5)
    assert 6 <= changed.sum() <= 8


def test_cutout_zeroes_a_clipped_square_and_reports_what_is_left():
    x = _images(n=500, size=8) + 0.1  # no zero pixels before the hole
    out, visible = cutout(x, 4, _g())
    hole = (out == 0).all(dim=1)
    assert torch.equal(out[~hole[:, None].expand_as(out)], x[~hole[:, None].expand_as(x)])
    assert visible.tolist() == pytest.approx((1 - hole.flatten(1).double().mean(1)).tolist())
    # the expected visible fraction with the centre uniform over the 8 x 8 pixels and the hole clipped
    extent = [min(c + 2, 8) - max(c - 2, 0) for c in range(8)]
    expected = 1 - (sum(extent) / 8) ** 2 / 64
    assert visible.mean().item() == pytest.approx(expected, abs=0.01)


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
    x, padding = _images(n=50, size=8), 3
    out, visible = random_crop(x, padding, _g())
    padded = F.pad(x, [padding] * 4)
    for i in range(len(x)):
        matches = [(dy, dx) for dy in range(-padding, padding + 1) for dx in range(-padding, padding + 1)
                   if torch.equal(out[i], padded[i, :, padding + dy : padding + dy + 8, padding + dx : padding + dx + 8])]
        assert any(math.isclose(visible[i].item(), (8 - abs(dy)) * (8 - abs(dx)) / 64) for dy, dx in matches)


def test_the_releases_occlusion_hole_is_the_normalised_mean():
    # the release cuts after Normalize: its hole is 0 there; ours, filled with the mean in [0, 1], normalises to 0
    mean, std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)  # CIFAR-100
    x = _images(n=200, size=8) * 0.9 + 0.05
    out, _ = cutout(x, 4, _g(), fill=mean)
    hole = (out == torch.tensor(mean).view(1, 3, 1, 1)).all(dim=1)
    assert hole.any(dim=(1, 2)).all()
    normalised = Normalize(mean, std, torch.device("cpu"))(out * 255)
    release = Normalize(mean, std, torch.device("cpu"))(x * 255) * ~hole[:, None]  # Cutout(mask=0) after Normalize
    assert torch.allclose(normalised, release, atol=1e-5, rtol=0)
    assert normalised.permute(1, 0, 2, 3)[:, hole].abs().max() < 1e-5
    # same draws as the black hole: only the colour differs
    black, _ = cutout(x, 4, _g())
    assert torch.equal((black == 0).all(dim=1), hole)
