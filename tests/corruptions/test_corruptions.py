"""The corruptions: exact where the reference is deterministic, and the properties of the rest."""

import colorsys
import io

import numpy as np
import pytest
import torch
from PIL import Image

from mollify.corruptions import CORRUPTIONS, SEVERITY_TABLES, corrupt
from mollify.corruptions.ops import disk_kernel, gaussian_blur
from mollify.data.synthetic import generate


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.from_numpy(generate(40, seed=0)[0])


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.double() - b.double()) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return float((10 * torch.log10(255**2 / mse)).mean())


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_shape_dtype_determinism_and_growing_damage(images, name):
    outs = [corrupt(images, name, s, seed=1) for s in range(1, 6)]
    for out in outs:
        assert out.dtype == torch.uint8 and out.shape == images.shape
    assert torch.equal(outs[2], corrupt(images, name, 3, seed=1))
    psnr = [_psnr(out, images) for out in outs]
    assert psnr[0] > psnr[-1], psnr
    assert all(a >= b - 0.5 for a, b in zip(psnr, psnr[1:])), psnr  # non-increasing up to sampling noise


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise"])
def test_random_corruptions_depend_on_the_seed(images, name):
    assert not torch.equal(corrupt(images, name, 3, seed=1), corrupt(images, name, 3, seed=2))


def test_64px_uses_the_tiny_imagenet_table():
    x = torch.full((4, 3, 64, 64), 128, dtype=torch.uint8)
    # contrast on a flat image is the identity; brightness adds the 64 px table's 0.5 to V
    assert torch.equal(corrupt(x, "contrast", 5), x)
    assert int(corrupt(x, "brightness", 5)[0, 0, 0, 0]) == int((128 / 255 + 0.5) * 255)


def test_pixelate_equals_pillow_box_resize(images):
    for severity, c in enumerate(SEVERITY_TABLES["pixelate"][32], start=1):
        size = int(32 * c)
        ref = [np.asarray(Image.fromarray(im.permute(1, 2, 0).numpy()).resize((size, size), Image.BOX).resize((32, 32), Image.BOX))
               for im in images]
        np.testing.assert_array_equal(corrupt(images, "pixelate", severity).permute(0, 2, 3, 1).numpy(), np.stack(ref))


def test_jpeg_equals_pillow(images):
    for severity, quality in enumerate(SEVERITY_TABLES["jpeg_compression"][32], start=1):
        ref = []
        for im in images:
            buffer = io.BytesIO()
            Image.fromarray(im.permute(1, 2, 0).numpy()).save(buffer, "JPEG", quality=quality)
            ref.append(np.asarray(Image.open(buffer)))
        np.testing.assert_array_equal(corrupt(images, "jpeg_compression", severity).permute(0, 2, 3, 1).numpy(), np.stack(ref))


def test_contrast_formula(images):
    x = images.double() / 255
    m = x.mean(dim=(2, 3), keepdim=True)
    ref = np.uint8(((x - m) * 0.4 + m).clamp(0, 1).numpy() * 255)
    diff = corrupt(images, "contrast", 3).numpy().astype(int) - ref
    assert np.abs(diff).max() <= 1 and (diff != 0).mean() < 0.01  # float32 vs float64 truncation


def test_brightness_is_hsv_value_shift(images):
    out = corrupt(images, "brightness", 4).numpy()  # V + 0.2 at 32 px
    for b, i, j in [(0, 0, 0), (3, 10, 20), (7, 31, 5), (20, 16, 16)]:
        r, g, bl = (images[b, :, i, j].double() / 255).tolist()
        h, s, v = colorsys.rgb_to_hsv(r, g, bl)
        expected = np.uint8(np.clip(np.array(colorsys.hsv_to_rgb(h, s, min(v + 0.2, 1.0))), 0, 1) * 255)
        assert np.abs(out[b, :, i, j].astype(int) - expected).max() <= 1


def test_impulse_noise_fraction_and_values(images):
    out = corrupt(images, "impulse_noise", 5).numpy()  # amount 0.07
    changed = out != images.numpy()
    assert 0.05 < changed.mean() < 0.075
    assert set(np.unique(out[changed])) <= {0, 255}


def test_gaussian_noise_scale():
    x = torch.full((50, 3, 32, 32), 128, dtype=torch.uint8)
    noise = corrupt(x, "gaussian_noise", 5).double() / 255 - 128 / 255  # sigma 0.10
    assert float(noise.std()) == pytest.approx(0.10, rel=0.03)


def test_blur_kernels_preserve_mean_and_flat_images():
    for radius, alias in SEVERITY_TABLES["defocus_blur"][32]:
        assert float(disk_kernel(radius, alias).sum()) == pytest.approx(1.0)
    flat = torch.full((2, 3, 32, 32), 0.5)
    for sigma in SEVERITY_TABLES["gaussian_blur"][32]:
        torch.testing.assert_close(gaussian_blur(flat, sigma, torch.Generator()), flat)
    x = torch.from_numpy(generate(4, 0)[0]).float() / 255
    assert torch.allclose(corrupt((x * 255).to(torch.uint8), "defocus_blur", 5).float().mean(), (x * 255).mean(), atol=1.5)
