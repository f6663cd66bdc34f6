import pytest
import torch
import torch.nn.functional as F

from mollify.augment import compose, random_crop, random_flip, random_rotation


def _batch(n: int = 64) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_crop_is_a_per_sample_window_of_the_zero_padded_image():
    x = _batch()
    g = torch.Generator().manual_seed(1)
    out = random_crop(x, 4, g)
    g = torch.Generator().manual_seed(1)
    dy = torch.randint(0, 9, (64,), generator=g)
    dx = torch.randint(0, 9, (64,), generator=g)
    padded = F.pad(x, (4, 4, 4, 4))
    for b in range(64):
        assert torch.equal(out[b], padded[b, :, dy[b] : dy[b] + 32, dx[b] : dx[b] + 32])
    assert len({(int(a), int(b)) for a, b in zip(dy, dx)}) > 20  # offsets differ per sample


def test_flip_each_sample_independently():
    x = _batch(2000)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert bool((flipped | kept).all())
    assert 0.45 < float(flipped.double().mean()) < 0.55


def test_rotation_zero_is_identity_and_rotation_keeps_the_centre():
    x = _batch()
    assert torch.equal(random_rotation(x, 0, torch.Generator()), x)
    out = random_rotation(x, 15, torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :, 15:17, 15:17], x[:, :, 15:17, 15:17])  # within 0.2 px of the centre: kept
    assert float((out != x).flatten(1).any(1).double().mean()) > 0.8  # all but the smallest angles move pixels
    assert out.dtype == torch.uint8 and bool((out[:, :, 0, 0] == 0).any())  # zero fill at corners


@pytest.mark.parametrize("names", [["flip", "crop"], ["flip", "crop", "rotate"], ["flip", "crop", "trivaug"], ["augmix"], []])
def test_compose_is_deterministic_for_a_seed(names):
    augment = compose(names)
    outs = []
    for _ in range(2):
        outs.append(augment(_batch(), torch.Generator().manual_seed(0)))
    assert torch.equal(*outs) and outs[0].shape == (64, 3, 32, 32) and outs[0].dtype == torch.uint8


def test_rotation_angles_are_uniform_within_the_range(monkeypatch):
    """The angle of each sample, read back from the affine matrix, is U(-degrees, degrees)."""
    thetas = []
    real = torch.nn.functional.affine_grid
    monkeypatch.setattr(torch.nn.functional, "affine_grid", lambda theta, *a, **k: thetas.append(theta) or real(theta, *a, **k))
    random_rotation(torch.zeros(20_000, 1, 2, 2, dtype=torch.uint8), 15, torch.Generator().manual_seed(0))
    angle = torch.rad2deg(torch.atan2(thetas[0][:, 1, 0], thetas[0][:, 0, 0])).double()
    torch.testing.assert_close(thetas[0][:, 0, 1], -thetas[0][:, 1, 0])  # a rotation, no shear or shift
    assert float(thetas[0][:, :, 2].abs().max()) == 0
    assert -15 <= float(angle.min()) < -14.9 and 14.9 < float(angle.max()) <= 15
    assert float(angle.mean()) == pytest.approx(0, abs=0.2) and float(angle.var()) == pytest.approx(15**2 / 3, rel=0.03)
