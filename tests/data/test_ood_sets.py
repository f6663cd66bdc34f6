"""The out-of-distribution sets (mollify.data.ood): SVHN and CIFAR downloaded from a 127.0.0.1
server in their real formats, md5-checked; the demo's novel shapes generated from the seed."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mollify.data import DATASETS, synthetic
from mollify.data.archives import read_svhn
from mollify.data.datasets import SVHN_TEST
from mollify.data.download import md5sum
from mollify.data import load_ood
from mollify.data.ood import prepare_ood
from mollify.errors import MollifyError
from tests.data.archives import cifar_archive, svhn_mat


def _serve_svhn(served: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    path = served / "test_32x32.mat"
    expected = svhn_mat(path)
    monkeypatch.setattr("mollify.data.ood.SVHN_TEST", dataclasses.replace(SVHN_TEST, md5=md5sum(path)))
    return expected


def test_svhn_url_and_md5_are_the_canonical_ones():
    assert SVHN_TEST.url == "http://ufldl.stanford.edu/housenumbers/test_32x32.mat"
    assert SVHN_TEST.md5 == "eb5a983be6a315427106f1b164d9cef3"


def test_svhn_mat_is_read_channels_first_with_digit_labels(tmp_path):
    expected = svhn_mat(tmp_path / "test_32x32.mat")
    x, y = read_svhn(tmp_path / "test_32x32.mat")
    np.testing.assert_array_equal(x, expected["x"])
    np.testing.assert_array_equal(y, expected["y"] % 10)  # label 10 is the digit 0
    assert x.dtype == np.uint8 and y.dtype == np.int64


def test_cifar10_gets_cifar100_near_and_svhn_far(server, tmp_path, monkeypatch):
    served, url = server
    svhn = _serve_svhn(served, monkeypatch)
    archive = served / "cifar-100-python.tar.gz"
    cifar100 = cifar_archive(archive, 100)
    monkeypatch.setitem(DATASETS, "cifar100", dataclasses.replace(DATASETS["cifar100"], md5=md5sum(archive)))
    sets = prepare_ood("cifar10", tmp_path / "ood", enabled=True, download_dir=tmp_path / "downloads", mirror=url)
    assert sets == {"cifar100": "near", "svhn": "far"}
    loaded = load_ood(tmp_path / "ood")
    np.testing.assert_array_equal(loaded["cifar100"][1], cifar100["test_x"])
    np.testing.assert_array_equal(loaded["svhn"][1], svhn["x"])
    assert loaded["svhn"][0] == "far"


def test_tinyimagenet_gets_svhn_at_64_px(server, tmp_path, monkeypatch):
    served, url = server
    svhn = _serve_svhn(served, monkeypatch)
    prepare_ood("tinyimagenet", tmp_path / "ood", enabled=True, download_dir=tmp_path / "downloads", mirror=url)
    images = load_ood(tmp_path / "ood")["svhn"][1]
    assert images.shape == (len(svhn["x"]), 3, 64, 64)
    # bilinear 2x upsampling keeps each 2x2 block's mean close to the source pixel
    blocks = images.astype(np.float64).reshape(-1, 3, 32, 2, 32, 2).mean(axis=(3, 5))
    assert np.abs(blocks - svhn["x"]).mean() < 40


def test_svhn_with_a_wrong_md5_keeps_nothing(server, tmp_path):
    served, url = server
    svhn_mat(served / "test_32x32.mat")  # not the real file: its md5 is not SVHN_TEST's
    with pytest.raises(MollifyError, match="md5 mismatch"):
        prepare_ood("tinyimagenet", tmp_path / "ood", enabled=True, download_dir=tmp_path / "downloads", mirror=url)
    assert not (tmp_path / "downloads" / "test_32x32.mat").exists()


def test_disabled_writes_no_sets_and_downloads_nothing(tmp_path):
    assert prepare_ood("cifar10", tmp_path / "ood", enabled=False, download_dir=tmp_path / "d", mirror="http://127.0.0.1:9") == {}
    assert load_ood(tmp_path / "ood") == {}


def test_demo_novel_shapes_are_deterministic_and_apart_from_the_test_set(tmp_path):
    prepare_ood("demo", tmp_path / "a", enabled=True, download_dir=tmp_path, seed=3, demo_size=40)
    prepare_ood("demo", tmp_path / "b", enabled=True, download_dir=tmp_path, seed=3, demo_size=40)
    a, b = load_ood(tmp_path / "a")["novel_shapes"][1], load_ood(tmp_path / "b")["novel_shapes"][1]
    np.testing.assert_array_equal(a, b)
    assert a.shape == (40, 3, 32, 32) and not np.array_equal(a, synthetic.generate(40, seed=3)[0])


def test_novel_shapes_are_none_of_the_ten_classes_at_any_rotation():
    """Each novel shape's mask overlaps every class's mask, at every rotation, by IoU < 0.75."""
    grid = torch.linspace(-1, 1, 101)
    v, u = torch.meshgrid(grid, grid, indexing="ij")
    novel = synthetic._novel_shape_masks(u[None], v[None])[:, 0]
    for k in range(36):
        a = 2 * math.pi * k / 36
        classes = synthetic._shape_masks((math.cos(a) * u + math.sin(a) * v)[None], (-math.sin(a) * u + math.cos(a) * v)[None])[:, 0]
        iou = (novel[:, None] & classes[None]).sum((2, 3)) / (novel[:, None] | classes[None]).sum((2, 3))
        assert iou.max() < 0.75, (k, iou)
