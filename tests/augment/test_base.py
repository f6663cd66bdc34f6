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


def test_rotation_is_nearest_neighbour_about_the_centre_with_zero_fill(monkeypatch):
    """Each output pixel centre, rotated by the sample's angle about the image centre (pixel centres
    at (2i + 1) / n - 1: align_corners=False), takes the nearest input pixel, or 0 outside:
    recomputed here in numpy from the angle read back from the affine matrix."""
    import numpy as np

    thetas = []
    real = torch.nn.functional.affine_grid
    monkeypatch.setattr(torch.nn.functional, "affine_grid", lambda theta, *a, **k: thetas.append(theta) or real(theta, *a, **k))
    x = torch.randint(1, 256, (8, 1, 24, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    out = random_rotation(x, 40, torch.Generator().manual_seed(3)).numpy()
    h, w = x.shape[-2:]
    yn, xn = np.meshgrid((2 * np.arange(h) + 1) / h - 1, (2 * np.arange(w) + 1) / w - 1, indexing="ij")
    mismatched = 0
    for k, theta in enumerate(thetas[0].double().numpy()):
        sx = theta[0, 0] * xn + theta[0, 1] * yn
        sy = theta[1, 0] * xn + theta[1, 1] * yn
        ix, iy = np.rint(((sx + 1) * w - 1) / 2).astype(int), np.rint(((sy + 1) * h - 1) / 2).astype(int)
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        expected = np.where(inside, x[k, 0].numpy()[iy.clip(0, h - 1), ix.clip(0, w - 1)], 0)
        mismatched += int((expected != out[k, 0]).sum())
    assert mismatched <= 2  # only a pixel centre that falls within rounding of a half-pixel boundary may differ


def test_small_crops_and_rotations_are_applied_and_compose_defaults_are_4_px_and_15_degrees():
    x = torch.randint(1, 256, (16, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(random_crop(x, 1, torch.Generator().manual_seed(0)), x)  # 1 px of padding still shifts
    assert not torch.equal(random_rotation(x, 1, torch.Generator().manual_seed(0)), x)  # so does 1 degree
    for names, explicit in ((["crop"], {"crop_padding": 4}), (["rotate"], {"rotation_degrees": 15.0})):
        by_default = compose(names)(x, torch.Generator().manual_seed(1))
        assert torch.equal(by_default, compose(names, **explicit)(x, torch.Generator().manual_seed(1)))
        other = {k: v + 1 for k, v in explicit.items()}
        assert not torch.equal(by_default, compose(names, **other)(x, torch.Generator().manual_seed(1)))


def test_compose_applies_exactly_the_named_steps_in_its_fixed_order():
    from mollify.augment.base import make_policy

    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    chain = {"flip": random_flip, "crop": lambda z, g: random_crop(z, 4, g), "rotate": lambda z, g: random_rotation(z, 15, g),
             "trivaug": make_policy("trivaug")}
    for names in (["flip"], ["crop"], ["rotate"], ["trivaug", "rotate", "crop", "flip"], ["mixup", "flip"], []):
        expected, g = x, torch.Generator().manual_seed(6)
        for name in ("flip", "crop", "rotate", "trivaug"):  # compose's order, whatever the order of names
            if name in names:
                expected = chain[name](expected, g)
        assert torch.equal(compose(names)(x, torch.Generator().manual_seed(6)), expected), names
