"""Official -C sets: download -> md5 -> conversion to our layout, against the loopback server."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mollify.config import parse_params
from mollify.data import CORRUPTED, DATASETS, TINY_C_RELEASES, prepare_official_corrupted
from mollify.data.download import md5sum
from mollify.errors import MollifyError
from tests.data.archives import TINY_WNIDS, cifar_c_archive, tiny_c_archive, tinyimagenet_archive
from tests.conftest import default_params


def _serve(monkeypatch, registry, name, archive):
    monkeypatch.setitem(registry, name, dataclasses.replace(registry[name], md5=md5sum(archive)))


def test_cifar_c(server, tmp_path, monkeypatch):  # server: tests/data/conftest.py
    served, url = server
    archive = served / "CIFAR-10-C.tar"
    arrays = cifar_c_archive(archive, ["fog", "snow"], n=4)
    _serve(monkeypatch, CORRUPTED, "cifar10", archive)
    monkeypatch.setattr("mollify.data.corrupted.CIFAR_TEST_SIZE", 4)
    out = tmp_path / "corrupted"
    record = prepare_official_corrupted("cifar10", out, download_dir=tmp_path / "dl", corruptions=["snow"],
                                        severities=[2, 5], max_images=3, mirror=url)
    assert record == {"source": "official", "url": f"{url}/CIFAR-10-C.tar", "md5": md5sum(archive), "images": 3}
    for s in (2, 5):
        np.testing.assert_array_equal(np.load(out / "snow" / f"s{s}.npy"), arrays["snow"][(s - 1) * 4 : (s - 1) * 4 + 3].transpose(0, 3, 1, 2))
    labels = np.load(out / "labels.npy")
    assert labels.dtype == np.int64 and labels.tolist() == arrays["labels"][:3].tolist()
    with pytest.raises(MollifyError, match="has no 'frost'.*fog, snow"):
        prepare_official_corrupted("cifar10", out, download_dir=tmp_path / "dl", corruptions=["frost"],
                                   severities=[1], max_images=None, mirror=url)


def _tiny_c(server, tmp_path, monkeypatch, severities: list[int], **kwargs) -> Path:
    """The official Tiny-ImageNet-C of a miniature fog-only archive, prepared into tmp_path / corrupted."""
    served, url = server
    tinyimagenet_archive(served / "tiny-imagenet-200.zip")
    tiny_c_archive(served / "Tiny-ImageNet-C.tar", ["fog"])
    _serve(monkeypatch, DATASETS, "tinyimagenet", served / "tiny-imagenet-200.zip")
    _serve(monkeypatch, TINY_C_RELEASES, "fixed", served / "Tiny-ImageNet-C.tar")
    out = tmp_path / "corrupted"
    prepare_official_corrupted("tinyimagenet", out, download_dir=tmp_path / "dl", corruptions=["fog"],
                               severities=severities, max_images=None, mirror=url, **kwargs)
    return out


def test_tiny_c_labels_follow_the_training_wnid_order(server, tmp_path, monkeypatch):
    out = _tiny_c(server, tmp_path, monkeypatch, [1, 3])
    labels = np.load(out / "labels.npy")
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]
    for s in (1, 3):
        x = np.load(out / "fog" / f"s{s}.npy")
        assert x.shape == (6, 3, 64, 64) and x.dtype == np.uint8
        np.testing.assert_allclose(x[:, 0].mean(axis=(1, 2)), 40 + 80 * labels, atol=3)
        np.testing.assert_allclose(x[:, 1].mean(axis=(1, 2)), 40 * s, atol=3)
    assert sorted(TINY_WNIDS) != TINY_WNIDS  # the archive lists them unsorted: the order was reconciled


def test_md5_mismatch(server, tmp_path):  # noqa: F811
    served, url = server
    cifar_c_archive(served / "CIFAR-10-C.tar", ["fog"])
    with pytest.raises(MollifyError, match="md5 mismatch"):
        prepare_official_corrupted("cifar10", tmp_path / "c", download_dir=tmp_path / "dl", corruptions=["fog"],
                                   severities=[1], max_images=None, mirror=url)


def test_demo_has_no_official_set():
    raw = default_params()
    raw["corrupt"]["source"] = "official"
    with pytest.raises(MollifyError, match="demo dataset has no official corrupted set"):
        parse_params(raw)


@pytest.mark.parametrize(("order", "labels"), [("file", [0, 1, 2, 0, 1, 2]), ("class", [0, 0, 1, 1, 2, 2])])
def test_tiny_c_in_file_order_or_class_by_class_as_the_mollification_reference(server, tmp_path, monkeypatch, order, labels):
    # files ILSVRC2012_val_<k><label>: by name 00, 01, 02, 10, 11, 12; the reference walks the sorted wnids
    out = _tiny_c(server, tmp_path, monkeypatch, [2], tiny_c_order=order)
    assert np.load(out / "labels.npy").tolist() == labels
    np.testing.assert_allclose(np.load(out / "fog" / "s2.npy")[:, 0].mean(axis=(1, 2)), 40 + 80 * np.array(labels), atol=3)


def test_tiny_c_original_release_reads_frost_as_the_mollification_reference(server, tmp_path, monkeypatch, caplog):
    # the original release (zenodo 2536630): frost holds other files and classes beyond TinyImageNet's 200
    # (hendrycks/robustness issue 60); process-datasets.py:230-231 visits only the 200 classes' folders
    served, url = server
    tinyimagenet_archive(served / "tiny-imagenet-200.zip")
    _serve(monkeypatch, DATASETS, "tinyimagenet", served / "tiny-imagenet-200.zip")
    tiny_c_archive(served / "Tiny-ImageNet-C-original.tar", ["fog", "frost"], original_frost=True)
    tiny_c_archive(served / "Tiny-ImageNet-C.tar", ["fog", "frost"], original_frost=True)
    _serve(monkeypatch, TINY_C_RELEASES, "fixed", served / "Tiny-ImageNet-C.tar")
    assert TINY_C_RELEASES["original"].md5 is None  # none published: accepted unverified, its md5 recorded
    read = dict(download_dir=tmp_path / "dl", corruptions=["fog", "frost"], severities=[1, 2], max_images=None, mirror=url,
                tiny_c_order="class")
    with pytest.raises(MollifyError, match=r"frost/1 has classes \['n15075141'\].*tiny_c_release: original"):
        prepare_official_corrupted("tinyimagenet", tmp_path / "fixed", **read)
    out = tmp_path / "original"
    with caplog.at_level("WARNING"):
        record = prepare_official_corrupted("tinyimagenet", out, tiny_c_release="original", **read)
    archive = tmp_path / "dl" / "Tiny-ImageNet-C-original.tar"
    assert record == {"source": "official", "url": f"{url}/Tiny-ImageNet-C-original.tar", "md5": md5sum(archive), "images": 6,
                      "release": "original"}
    assert f"has no published md5: accepted unverified, with md5 {md5sum(archive)}" in caplog.text
    assert np.load(out / "labels.npy").tolist() == [0, 0, 1, 1, 2, 2]
    frost = np.load(out / "frost" / "s2.npy")
    np.testing.assert_allclose(frost[:, 0].mean(axis=(1, 2)), [40, 40, 120, 120, 200, 200], atol=3)
    assert frost[:, 2].max() < 100  # the extra class's folder (blue 200) was not read
    with pytest.raises(MollifyError, match="read class by class"):
        prepare_official_corrupted("tinyimagenet", out, tiny_c_release="original", **{**read, "tiny_c_order": "file"})
