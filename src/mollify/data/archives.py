"""Convert the official archives to our layout: uint8 (N, C, H, W) images and int64 (N,) labels."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from mollify.errors import MollifyError

Split = tuple[np.ndarray, np.ndarray]


def _unpickle(tar: tarfile.TarFile, member: str) -> dict:
    try:
        f = tar.extractfile(member)
    except KeyError:
        raise MollifyError(f"{tar.name}: member {member} is missing; the archive is not the official one.") from None
    assert f is not None
    return pickle.load(f, encoding="bytes")


def _cifar_split(tar: tarfile.TarFile, members: list[str], label_key: bytes) -> Split:
    batches = [_unpickle(tar, m) for m in members]
    images = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
    return images.astype(np.uint8), labels


def read_cifar(archive: Path, num_classes: int) -> tuple[Split, Split]:
    """CIFAR-10/100 python pickles (row-major R, G, B planes of 32x32) -> (train, test)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            if num_classes == 10:
                train_members = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
                return (
                    _cifar_split(tar, train_members, b"labels"),
                    _cifar_split(tar, ["cifar-10-batches-py/test_batch"], b"labels"),
                )
            return (
                _cifar_split(tar, ["cifar-100-python/train"], b"fine_labels"),
                _cifar_split(tar, ["cifar-100-python/test"], b"fine_labels"),
            )
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError) as e:
        raise MollifyError(f"{archive} is not a readable CIFAR archive ({e}); delete it and run again.") from None


def decode_rgb(data: bytes) -> np.ndarray:
    """A JPEG (grayscale ones included) -> uint8 (3, H, W)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).transpose(2, 0, 1)


def read_svhn(path: Path) -> Split:
    """SVHN's {train,test}_32x32.mat (scipy.io): X uint8 (32, 32, 3, N) -> (N, 3, 32, 32), labels
    1..10 -> 0..9 (10 is the digit 0, as torchvision.datasets.SVHN)."""
    from scipy.io import loadmat  # only the OOD stage reads .mat files

    try:
        mat = loadmat(path)
        images = np.ascontiguousarray(mat["X"].transpose(3, 2, 0, 1)).astype(np.uint8)
        labels = np.asarray(mat["y"], dtype=np.int64).reshape(-1) % 10
    except (ValueError, KeyError, OSError, TypeError) as e:
        raise MollifyError(f"{path} is not a readable SVHN .mat file ({e}); delete it and run again.") from None
    if images.shape[1:] != (3, 32, 32) or len(images) != len(labels):
        raise MollifyError(f"{path}: SVHN images of shape {images.shape} for {len(labels)} labels; delete it and run again.")
    return images, labels


_TINY_ROOT = "tiny-imagenet-200/"


def _sorted_wnids(z: zipfile.ZipFile) -> list[str]:
    return sorted(z.read(_TINY_ROOT + "wnids.txt").decode().split())


def read_tinyimagenet_wnids(archive: Path) -> list[str]:
    """The sorted wnids of tiny-imagenet-200.zip: class k is the k-th (the training labels' order)."""
    try:
        with zipfile.ZipFile(archive) as z:
            return _sorted_wnids(z)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise MollifyError(f"{archive} is not a readable TinyImageNet archive ({e}); delete it and run the data stage.") from None


def read_tinyimagenet(archive: Path) -> tuple[Split, Split]:
    """tiny-imagenet-200.zip -> (train, val); label = position of the wnid in sorted(wnids)."""
    root = _TINY_ROOT
    try:
        with zipfile.ZipFile(archive) as z:
            index = {w: i for i, w in enumerate(_sorted_wnids(z))}
            train_x, train_y = [], []
            for name in sorted(z.namelist()):
                parts = name[len(root):].split("/")
                if len(parts) == 4 and parts[0] == "train" and parts[2] == "images" and name.endswith(".JPEG"):
                    train_x.append(decode_rgb(z.read(name)))
                    train_y.append(index[parts[1]])
            val_x, val_y = [], []
            annotations = z.read(root + "val/val_annotations.txt").decode().splitlines()
            for line in annotations:
                if not line.strip():
                    continue
                file, wnid = line.split("\t")[:2]
                val_x.append(decode_rgb(z.read(f"{root}val/images/{file}")))
                val_y.append(index[wnid])
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise MollifyError(f"{archive} is not a readable TinyImageNet archive ({e}); delete it and run again.") from None
    as_split = lambda x, y: (np.stack(x).astype(np.uint8), np.asarray(y, dtype=np.int64))  # noqa: E731
    return as_split(train_x, train_y), as_split(val_x, val_y)
