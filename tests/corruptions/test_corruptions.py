"""The corruptions: exact where the reference is deterministic, and the properties of the rest."""

import colorsys
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from mollify.corruptions import CORRUPTIONS, EXTRA, GROUPS, SEVERITY_TABLES, STANDARD, corrupt, group_of
from mollify.corruptions.blur import _glass_shuffle
from mollify.corruptions.filters import _dilate3, distance_transform_l2_5, fold, motion_blur
from mollify.corruptions.ops import _bilinear, _jpeg_files, disk_kernel, gaussian_blur, poisson_alias_table, shot_noise
from mollify.corruptions.weather import frost_layers
from mollify.data.synthetic import generate, generate_at


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.from_numpy(generate(40, seed=0)[0])


@pytest.fixture(scope="module", params=[32, 64])
def small_batch(request) -> torch.Tensor:
    return torch.from_numpy(generate_at(12, seed=3, size=request.param))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.double() - b.double()) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return float((10 * torch.log10(255**2 / mse)).mean())


DETERMINISTIC = {"defocus_blur", "zoom_blur", "gaussian_blur", "brightness", "contrast", "pixelate", "jpeg_compression", "saturate"}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_shape_dtype_determinism_and_growing_damage(small_batch, name):
    outs = [corrupt(small_batch, name, s, seed=1) for s in range(1, 6)]
    for out in outs:
        assert out.dtype == torch.uint8 and out.shape == small_batch.shape
    assert torch.equal(outs[2], corrupt(small_batch, name, 3, seed=1))
    assert torch.equal(outs[2], corrupt(small_batch, name, 3, seed=2)) == (name in DETERMINISTIC)
    psnr = [_psnr(out, small_batch) for out in outs]
    # the reference's elastic severity 1 is its largest affine warp (tests/corruptions/test_fidelity.py)
    assert (psnr[0] > psnr[-1]) == (name != "elastic_transform"), psnr


def test_all_nineteen_registered():
    assert set(CORRUPTIONS) == set(STANDARD) | set(EXTRA) and len(CORRUPTIONS) == 19
    assert set(SEVERITY_TABLES) == set(CORRUPTIONS)
    assert all(len(t[size]) == 5 for t in SEVERITY_TABLES.values() for size in (32, 64))


def _sequential_glass_shuffle(x: np.ndarray, deltas: np.ndarray, d: int) -> np.ndarray:
    """The reference's per-pixel loop on an (H, W, C) numpy image, with the given (dx, dy) draws."""
    x = x.copy()
    h, w = x.shape[:2]
    k = 0
    for i in range(h - d, d, -1):
        for j in range(w - d, d, -1):
            dx, dy = deltas[k]
            k += 1
            x[i, j], x[i + dy, j + dx] = x[i + dy, j + dx], x[i, j]
    return x


@pytest.mark.parametrize("d", [1, 2])
def test_glass_shuffle_equals_the_sequential_loop(d):
    x = torch.from_numpy(generate_at(3, seed=5, size=64)).double()
    ours = _glass_shuffle(x, d, torch.Generator().manual_seed(7))
    visits = (64 - 2 * d) ** 2
    deltas = torch.randint(-d, d, (3, visits, 2), generator=torch.Generator().manual_seed(7)).numpy()
    for b in range(3):
        ref = _sequential_glass_shuffle(x[b].permute(1, 2, 0).numpy(), deltas[b], d)
        np.testing.assert_array_equal(ours[b].permute(1, 2, 0).numpy(), ref)


def test_motion_blur_kernel():
    """A single bright pixel spreads along the blur direction with ImageMagick's one-sided weights."""
    x = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    x[0, 0, 16, 10] = 1.0
    out = motion_blur(x, 6, 2.0, torch.tensor([0.0]))[0, 0]
    weights = torch.exp(-torch.arange(13.0, dtype=torch.float64) ** 2 / 8)
    torch.testing.assert_close(out[16, :11].flip(0), weights[:11] / weights.sum())  # trails to the left
    assert float(out.sum()) == pytest.approx(float(weights[:11].sum() / weights.sum()))  # the rest falls off the edge


def test_frost_uses_the_photographs():
    stack, sizes = frost_layers(32)
    assert stack.shape[0] == 5 and sizes.tolist()[0] == [120, 180]  # frost1.png 600x900 at x0.2
    flat = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    out = corrupt(flat, "frost", 1).double()  # 0.2 x frost crop
    assert 10 < float(out.mean()) < 60 and float(out.std()) > 1


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
    flat = torch.full((2, 3, 32, 32), 128 / 255, dtype=torch.float64)  # the k / 255 that `corrupt` passes
    for sigma in SEVERITY_TABLES["gaussian_blur"][32]:
        torch.testing.assert_close(gaussian_blur(flat, sigma, torch.Generator()), flat)
    x = torch.from_numpy(generate(4, 0)[0]).float() / 255
    assert torch.allclose(corrupt((x * 255).to(torch.uint8), "defocus_blur", 5).float().mean(), (x * 255).mean(), atol=1.5)


@pytest.mark.parametrize("c", [500.0, 50.0, 15.0])
def test_poisson_alias_table_holds_the_poisson_pmf(c):
    """Reading the alias table back (column j with its acceptance p_j, plus 1 - p_i from every
    column i aliasing to j, over K) gives Poisson(k c / 255) for every level k."""
    table = poisson_alias_table(c).numpy()
    size = len(table) // 256
    alias = np.floor(table).reshape(256, size).astype(int)
    accept = (table - np.floor(table)).reshape(256, size)
    own = alias == np.arange(size)  # always accepts
    accept[own] = 1.0
    for level in (0, 1, 77, 128, 255):
        probs = accept[level].copy()
        np.add.at(probs, alias[level][~own[level]], 1 - accept[level][~own[level]])
        rate = level * c / 255
        counts = np.arange(size)
        pmf = np.exp(counts * np.log(rate) - rate - np.array([math.lgamma(n + 1) for n in counts])) if rate else counts == 0
        np.testing.assert_allclose(probs / size, pmf, atol=1e-13)


def test_shot_noise_moments():
    """Poisson(x c) / c: mean x, variance x / c (before clipping; x = 64/255 keeps it in range)."""
    x = torch.full((4, 3, 100, 100), 64 / 255, dtype=torch.float64)
    for c in (50.0, 500.0):
        y = shot_noise(x, c, torch.Generator().manual_seed(1))
        n = y.numel()
        assert float(y.mean()) == pytest.approx(64 / 255, abs=4 * math.sqrt(64 / 255 / c / n))
        assert float(y.var()) == pytest.approx(64 / 255 / c, rel=0.03)
        torch.testing.assert_close(y * c, torch.round(y * c))  # integer counts


def _chamfer_by_relaxation(zero: torch.Tensor, cap: float) -> torch.Tensor:
    """The definition: the least sum of 5x5 chamfer steps to a zero pixel (Bellman-Ford)."""
    one = 1 << 16
    steps = {(0, 1): one, (1, 0): one, (1, 1): round(1.4 * one), (1, 2): round(2.1969 * one), (2, 1): round(2.1969 * one)}
    far = 1 << 40
    d = torch.where(zero, 0, far)
    h, w = zero.shape[1:]
    while True:
        padded = torch.nn.functional.pad(d, (2, 2, 2, 2), value=far)
        best = d.clone()
        for (dy, dx), step in steps.items():
            for sy in (-1, 1):
                for sx in (-1, 1):
                    best = torch.minimum(best, padded[:, 2 + sy * dy : 2 + sy * dy + h, 2 + sx * dx : 2 + sx * dx + w] + step)
        if torch.equal(best, d):
            return (d.double() / one).clamp(max=cap)
        d = best


@pytest.mark.parametrize("density", [0.002, 0.03, 0.3])
def test_distance_transform_raster_passes_equal_the_shortest_chamfer_path(density):
    g = torch.Generator().manual_seed(11)
    for size in (32, 64):
        zero = torch.rand((20, size, size), generator=g) < density
        torch.testing.assert_close(distance_transform_l2_5(zero, 20.0), _chamfer_by_relaxation(zero, 20.0), rtol=0, atol=0)


def test_dilate3_is_a_3x3_max_filter():
    mask = torch.rand((5, 17, 23), generator=torch.Generator().manual_seed(2)) < 0.05
    expected = torch.nn.functional.max_pool2d(mask[:, None].float(), 3, 1, 1)[:, 0] > 0
    assert torch.equal(_dilate3(mask), expected)


@pytest.mark.parametrize("mode", ["mirror", "reflect"])
def test_bilinear_sampling_folds_the_four_taps(mode):
    """grid_sample's reflection of the coordinate equals folding each of the four taps back into
    the image by the boundary mode (scipy / OpenCV), including coordinates far outside."""
    g = torch.Generator().manual_seed(4)
    x = torch.rand((2, 3, 9, 13), generator=g, dtype=torch.float64)
    ys = torch.rand((2, 9, 13), generator=g, dtype=torch.float64) * 40 - 15
    xs = torch.rand((2, 9, 13), generator=g, dtype=torch.float64) * 50 - 18
    y0, x0 = ys.floor(), xs.floor()
    wy, wx = ys - y0, xs - x0
    expected = torch.zeros_like(x)
    for dy, fy in ((0, 1 - wy), (1, wy)):
        for dx, fx in ((0, 1 - wx), (1, wx)):
            rows, cols = fold(y0.long() + dy, 9, mode), fold(x0.long() + dx, 13, mode)
            taps = torch.stack([x[b][:, rows[b], cols[b]] for b in range(2)])
            expected += (fy * fx)[:, None] * taps
    torch.testing.assert_close(_bilinear(x, ys, xs, mode), expected)


def test_jpeg_files_are_pillows_byte_for_byte(small_batch):
    """One encoder call with a restart marker per image gives, per image, the very file Pillow
    writes for that image alone."""
    images = small_batch.permute(0, 2, 3, 1).contiguous().numpy()
    for quality in (80, 25):
        expected = []
        for im in images:
            buffer = io.BytesIO()
            Image.fromarray(im).save(buffer, "JPEG", quality=quality)
            expected.append(buffer.getvalue())
        assert _jpeg_files(images, quality) == expected


def test_jpeg_over_more_images_than_one_file_holds():
    """Past 65500 // 32 = 2046 images (libjpeg's largest side) a second tall file starts; every
    image still equals Pillow's."""
    images = torch.from_numpy(generate_at(2050, seed=9, size=32))
    out = corrupt(images, "jpeg_compression", 4, batch_size=4096)
    for k in (0, 2045, 2046, 2049):
        buffer = io.BytesIO()
        Image.fromarray(images[k].permute(1, 2, 0).numpy()).save(buffer, "JPEG", quality=50)
        np.testing.assert_array_equal(out[k].permute(1, 2, 0).numpy(), np.asarray(Image.open(buffer)))


@pytest.mark.parametrize("severity", [0, 6])
def test_severities_outside_1_to_5_are_refused(severity):
    with pytest.raises(ValueError, match=f"severity must be in 1..5, got {severity}"):
        corrupt(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "contrast", severity)


def test_groups_partition_the_nineteen_and_the_standard_fifteen():
    assert sorted(STANDARD + EXTRA) == sorted(CORRUPTIONS) and len(STANDARD) == 15 and len(EXTRA) == 4
    assert [group_of(n) for n in ("shot_noise", "zoom_blur", "frost", "pixelate", "spatter", "saturate")] == [
        "noise", "blur", "weather", "digital", "weather", "digital"]
    assert sum(len(v) for v in GROUPS.values()) == 19


def test_each_batch_has_its_own_stream_and_batches_are_cut_in_order():
    """gaussian_noise at severity 1 adds N(0, 0.08) noise: the batches of 2 images draw differently,
    and a batch size of 2 changes the draws of images 2.. but each batch is the same corruption."""
    x = torch.full((4, 3, 32, 32), 128, dtype=torch.uint8)
    whole = corrupt(x, "gaussian_noise", 1, seed=0, batch_size=4)
    pairs = corrupt(x, "gaussian_noise", 1, seed=0, batch_size=2)
    assert torch.equal(pairs[:2], corrupt(x[:2], "gaussian_noise", 1, seed=0, batch_size=2))
    assert not torch.equal(pairs[2:], pairs[:2]) and not torch.equal(whole[2:], pairs[2:])
    assert not torch.equal(corrupt(x, "gaussian_noise", 1, seed=1, batch_size=4), whole)
    # truncation to uint8: values are floor(255 clip(x + noise)), their mean close to 128 + (0.5 - 0.5)
    assert float(whole.double().mean()) == pytest.approx(127.5, abs=0.6)


def test_each_batch_draws_from_the_stream_of_its_seed_corruption_severity_and_index():
    """Batch k of `corrupt(x, name, s, seed)` is the corruption function's output with a generator seeded
    crc32("seed/name/s/k"), truncated to uint8; by default seed 0 and batches of 1000."""
    import zlib

    from mollify.corruptions import ops
    from mollify.corruptions.tables import severity_param

    x = torch.randint(0, 256, (1001, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = corrupt(x, "gaussian_noise", 3)
    for k, rows in enumerate((slice(0, 1000), slice(1000, 1001))):
        g = torch.Generator().manual_seed(zlib.crc32(f"0/gaussian_noise/3/{k}".encode()))
        expected = (ops.gaussian_noise(x[rows].double() / 255, severity_param("gaussian_noise", 32, 3), g) * 255).to(torch.uint8)
        assert torch.equal(out[rows], expected), k
