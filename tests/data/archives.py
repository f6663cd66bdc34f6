"""Small archives in the exact formats of the official datasets, for the download tests."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def cifar_archive(path: Path, num_classes: int, per_batch: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """cifar-10-python.tar.gz / cifar-100-python.tar.gz in miniature; returns the arrays it holds."""
    rng = np.random.default_rng(seed)
    expected: dict[str, list] = {"train_x": [], "train_y": [], "test_x": [], "test_y": []}

    def batch(split: str, n: int, label_key: bytes) -> bytes:
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, num_classes, n).tolist()
        expected[f"{split}_x"].append(images)
        expected[f"{split}_y"].append(np.array(labels))
        record = {b"batch_label": b"x", label_key: labels, b"data": images.reshape(n, 3072), b"filenames": [b"f"] * n}
        if num_classes == 100:
            record[b"coarse_labels"] = [0] * n
        return pickle.dumps(record, protocol=2)

    with tarfile.open(path, "w:gz") as tar:
        if num_classes == 10:
            for i in range(1, 6):
                _add_bytes(tar, f"cifar-10-batches-py/data_batch_{i}", batch("train", per_batch, b"labels"))
            _add_bytes(tar, "cifar-10-batches-py/test_batch", batch("test", per_batch, b"labels"))
            _add_bytes(tar, "cifar-10-batches-py/batches.meta", pickle.dumps({b"label_names": [b"c"] * 10}, protocol=2))
        else:
            _add_bytes(tar, "cifar-100-python/train", batch("train", 5 * per_batch, b"fine_labels"))
            _add_bytes(tar, "cifar-100-python/test", batch("test", per_batch, b"fine_labels"))
            _add_bytes(tar, "cifar-100-python/meta", pickle.dumps({b"fine_label_names": [b"c"] * 100}, protocol=2))
    return {k: np.concatenate(v) for k, v in expected.items()}


def _jpeg(colour: tuple[int, ...], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (64, 64), colour if mode == "RGB" else colour[0]).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


TINY_WNIDS = ["n09999999", "n01443537", "n02124075"]  # deliberately not sorted


def tinyimagenet_archive(path: Path, per_class: int = 2, val_per_class: int | None = None) -> None:
    """tiny-imagenet-200.zip in miniature: wnids.txt, train/<wnid>/images (`per_class` each), val
    with annotations (`val_per_class` each, default `per_class`; one grayscale JPEG among them),
    test without labels. The colour of an image encodes its class."""
    root = "tiny-imagenet-200/"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(root + "wnids.txt", "\n".join(TINY_WNIDS) + "\n")
        z.writestr(root + "words.txt", "".join(f"{w}\tthing {i}\n" for i, w in enumerate(TINY_WNIDS)))
        for wnid in TINY_WNIDS:
            label = sorted(TINY_WNIDS).index(wnid)
            z.writestr(f"{root}train/{wnid}/{wnid}_boxes.txt", "")
            for k in range(per_class):
                z.writestr(f"{root}train/{wnid}/images/{wnid}_{k}.JPEG", _jpeg((40 + 80 * label, 0, 0)))
        lines = []
        for k, wnid in enumerate(TINY_WNIDS * (val_per_class or per_class)):
            label = sorted(TINY_WNIDS).index(wnid)
            grayscale = k == 1
            z.writestr(f"{root}val/images/val_{k}.JPEG", _jpeg((40 + 80 * label,) * 3, "L" if grayscale else "RGB"))
            lines.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63")
        z.writestr(root + "val/val_annotations.txt", "\n".join(lines) + "\n")
        z.writestr(root + "test/images/test_0.JPEG", _jpeg((0, 0, 0)))


def cifar_c_archive(path: Path, corruptions: list[str], n: int = 4, seed: int = 0, num_classes: int = 10) -> dict[str, np.ndarray]:
    """CIFAR-10-C.tar / CIFAR-100-C.tar in miniature: CIFAR-<num_classes>-C/<corruption>.npy
    (5 n, 32, 32, 3) uint8 and labels.npy (severity blocks of n rows); returns the arrays it holds."""
    rng = np.random.default_rng(seed)
    arrays = {name: rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8) for name in corruptions}
    arrays["labels"] = np.tile(rng.integers(0, num_classes, n), 5).astype(np.uint8)
    with tarfile.open(path, "w") as tar:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            _add_bytes(tar, f"CIFAR-{num_classes}-C/{name}.npy", buffer.getvalue())
    return arrays


def tiny_c_archive(path: Path, corruptions: list[str], files: int = 2, original_frost: bool = False) -> None:
    """Tiny-ImageNet-C.tar in miniature: Tiny-ImageNet-C/<corruption>/<severity>/<wnid>/<file>.JPEG;
    the red channel encodes the class (40 + 80 label), the green one the severity. `original_frost`:
    frost as in the original release, with other file names and a class folder beyond TinyImageNet's
    (blue 200 there, so that reading it shows)."""
    with tarfile.open(path, "w") as tar:
        for name in corruptions:
            original = original_frost and name == "frost"
            for severity in range(1, 6):
                for wnid in TINY_WNIDS + ["n15075141"] * original:
                    label = sorted(TINY_WNIDS).index(wnid) if wnid in TINY_WNIDS else 0
                    for k in range(files):
                        data = _jpeg((40 + 80 * label, 40 * severity, 200 * (wnid not in TINY_WNIDS)))
                        file = f"frost_{k}{label}" if original else f"ILSVRC2012_val_{k}{label}"
                        _add_bytes(tar, f"Tiny-ImageNet-C/{name}/{severity}/{wnid}/{file}.JPEG", data)


def svhn_mat(path: Path, n: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """test_32x32.mat in miniature (MATLAB 5 format, as the release): X uint8 (32, 32, 3, n), y (n, 1)
    in 1..10; returns the images (n, 3, 32, 32) and the labels 1..10 it holds."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = np.arange(n) % 10 + 1
    savemat(path, {"X": images.transpose(2, 3, 1, 0), "y": labels[:, None].astype(np.uint8)})
    return {"x": images, "y": labels}
