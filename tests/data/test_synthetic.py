import pytest
import numpy as np

from mollify.data import load_meta, load_split, prepare_dataset
from mollify.data.synthetic import CLASS_NAMES, generate


def test_deterministic_balanced_and_well_formed():
    x1, y1 = generate(300, seed=3)
    x2, y2 = generate(300, seed=3)
    assert x1.dtype == np.uint8 and x1.shape == (300, 3, 32, 32) and y1.dtype == np.int64
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert np.bincount(y1, minlength=10).tolist() == [30] * 10
    assert not np.array_equal(generate(300, seed=4)[0], x1)


def test_class_is_not_a_colour_statistic():
    """Mean colour per class is the same up to sampling noise (one-way ANOVA of each image's mean
    colour over the classes finds nothing): the class lives in the shape and the fine texture."""
    from scipy.stats import f_oneway

    x, y = generate(8000, seed=0)
    colours = x.mean(axis=(2, 3))
    for channel in range(3):
        assert f_oneway(*[colours[y == c, channel] for c in range(len(CLASS_NAMES))]).pvalue > 0.01
    # and images vary a lot within a class
    assert x[y == 0].reshape(-1, 3 * 32 * 32).std(axis=0).mean() > 40


def test_prepare_demo_writes_arrays_and_stats(tmp_path):
    meta = prepare_dataset("demo", tmp_path, download_dir=tmp_path / "unused", seed=1, demo_train_size=50, demo_test_size=20)
    x, y = load_split(tmp_path, "train")
    assert x.shape == (50, 3, 32, 32) and load_split(tmp_path, "test")[0].shape == (20, 3, 32, 32)
    np.testing.assert_allclose(meta.mean, (x / 255).mean(axis=(0, 2, 3)), atol=1e-4)
    assert load_meta(tmp_path) == meta
    assert not np.array_equal(x[:20], load_split(tmp_path, "test")[0])


def test_the_named_designs_are_the_params_choices_and_render_the_same_labels_apart(tmp_path):
    from typing import get_args

    from mollify.config import DemoDataConfig
    from mollify.data.synthetic import DESIGNS

    assert get_args(DemoDataConfig.model_fields["design"].annotation) == tuple(DESIGNS)
    prepare_dataset("demo", tmp_path, download_dir=tmp_path / "unused", seed=1, demo_train_size=50, demo_test_size=20,
                    demo_design="quick")
    x, y = load_split(tmp_path, "train")
    np.testing.assert_array_equal(x, generate(50, seed=1, design=DESIGNS["quick"])[0])
    np.testing.assert_array_equal(y, generate(50, seed=1)[1])  # the same labels from the seed, another rendering
    assert not np.array_equal(x, generate(50, seed=1)[0])


def test_leaf_radii_have_density_r_to_the_minus_3():
    import torch

    from mollify.data.synthetic import leaf_radius

    r = leaf_radius(torch.tensor([0.0, 0.5, 1.0]), 1.0, 14.0)
    # F(r) = (1 - r^-2) / (1 - 14^-2): the median solves r^-2 = 1 - 0.5 (1 - 1/196)
    assert r.tolist() == pytest.approx([1.0, (1 - 0.5 * (1 - 1 / 196)) ** -0.5, 14.0])
    draws = leaf_radius(torch.rand(200_000, generator=torch.Generator().manual_seed(0)), 1.0, 14.0)
    assert float((draws < 2).double().mean()) == pytest.approx((1 - 0.25) / (1 - 1 / 196), abs=0.005)


def test_the_two_classes_of_a_shape_differ_in_fine_texture():
    """Class 2k is shape k striped, 2k + 1 the same shape checkered: the coherence of the local
    structure tensor (5 x 5 windows, weighted by gradient energy) is high where gradients share one
    direction (stripes, at any orientation) and lower where they take two (a checker)."""
    import torch

    x, y = generate(2000, seed=0)
    grey = torch.from_numpy(x).double().mean(1, keepdim=True)
    gx = grey[..., 1:-1, 2:] - grey[..., 1:-1, :-2]
    gy = grey[..., 2:, 1:-1] - grey[..., :-2, 1:-1]
    jxx, jyy, jxy = (torch.nn.functional.avg_pool2d(t, 5, stride=1) for t in (gx * gx, gy * gy, gx * gy))
    energy = jxx + jyy
    coherence = ((jxx - jyy) ** 2 + 4 * jxy**2).sqrt() / energy.clamp_min(1e-9)
    per_image = (coherence * energy).sum((1, 2, 3)) / energy.sum((1, 2, 3))
    labels = torch.from_numpy(y)
    for shape in range(len(CLASS_NAMES) // 2):
        assert per_image[labels == 2 * shape].mean() > per_image[labels == 2 * shape + 1].mean()
    assert per_image[labels % 2 == 0].mean() > per_image[labels % 2 == 1].mean() + 0.1
