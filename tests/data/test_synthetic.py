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

    x, y = generate(2000, seed=0)
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
