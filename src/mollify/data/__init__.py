"""Datasets as arrays: the embedded synthetic set, or CIFAR-10/100 and TinyImageNet from their archives.

On disk a prepared dataset is a folder with `train_x.npy`, `train_y.npy`, `test_x.npy`,
`test_y.npy` (uint8 (N, C, H, W) and int64 (N,)) and `meta.json` (classes and normalisation).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mollify.data import archives, corrupted, synthetic
from mollify.data.datasets import CORRUPTED, DATASETS, DatasetInfo
from mollify.data.download import download
from mollify.errors import MollifyError
from mollify.io import load_images, load_npy, save_json, save_npy

__all__ = ["CORRUPTED", "DATASETS", "DatasetInfo", "DatasetMeta", "prepare_dataset", "prepare_official_corrupted", "load_split", "load_meta"]


@dataclass(frozen=True)
class DatasetMeta:
    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str


def _channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images.astype(np.float64) / 255.0
    return tuple(np.round(x.mean(axis=(0, 2, 3)), 4).tolist()), tuple(np.round(x.std(axis=(0, 2, 3)), 4).tolist())


def prepare_dataset(
    name: str,
    out_dir: Path,
    *,
    download_dir: Path,
    seed: int = 0,
    demo_train_size: int = 10_000,
    demo_test_size: int = 2_000,
    mirror: str | None = None,
) -> DatasetMeta:
    """Make the arrays of dataset `name` under `out_dir` (downloading its archive when needed)."""
    if name not in DATASETS:
        raise MollifyError(f"unknown dataset {name!r}; choices: {', '.join(DATASETS)}")
    info = DATASETS[name]
    if name == "demo":
        train = synthetic.generate(demo_train_size, seed=seed)
        test = synthetic.generate(demo_test_size, seed=seed + 1_000_003)  # disjoint stream from train
        source = f"synthetic (seed {seed})"
    else:
        assert info.url is not None and info.md5 is not None
        url, archive = _fetch(info.url, info.md5, download_dir, mirror)
        if name == "tinyimagenet":
            train, test = archives.read_tinyimagenet(archive)
        else:
            train, test = archives.read_cifar(archive, info.num_classes)
        source = url
    mean, std = (info.mean, info.std) if info.mean is not None else _channel_stats(train[0])
    meta = DatasetMeta(name, info.num_classes, info.image_size, tuple(mean), tuple(std), source)
    for split, (x, y) in (("train", train), ("test", test)):
        if x.shape[1:] != (3, info.image_size, info.image_size) or y.min() < 0 or y.max() >= info.num_classes:
            raise MollifyError(f"{name} {split}: unexpected array shape {x.shape} or labels out of range")
        save_npy(Path(out_dir) / f"{split}_x.npy", x)
        save_npy(Path(out_dir) / f"{split}_y.npy", y)
    save_json(Path(out_dir) / "meta.json", asdict(meta))
    return meta


def _fetch(url: str, md5: str, download_dir: Path, mirror: str | None) -> tuple[str, Path]:
    """Download (or reuse) the archive at `url`, or at <mirror>/<file name>: (the URL used, the path)."""
    filename = url.rsplit("/", 1)[1]
    url = f"{mirror.rstrip('/')}/{filename}" if mirror else url
    return url, download(url, Path(download_dir) / filename, md5)


def prepare_official_corrupted(
    name: str,
    out_dir: Path,
    *,
    download_dir: Path,
    corruptions: list[str],
    severities: list[int],
    max_images: int | None,
    mirror: str | None = None,
    tiny_c_order: str = "file",
) -> dict:
    """Write the official CIFAR-10-C / CIFAR-100-C / Tiny-ImageNet-C as `<out_dir>/<corruption>/s<severity>.npy`
    (uint8 (N, C, H, W)) and `labels.npy`; return the source record (url, md5)."""
    if name not in CORRUPTED:
        raise MollifyError(f"dataset {name!r} has no official corrupted test set (have: {', '.join(CORRUPTED)}); use corrupt.source=generate.")
    info = CORRUPTED[name]
    url, archive = _fetch(info.url, info.md5, download_dir, mirror)
    if name == "tinyimagenet":
        clean = DATASETS[name]
        assert clean.url is not None and clean.md5 is not None
        _, clean_archive = _fetch(clean.url, clean.md5, download_dir, mirror)
        wnids = archives.read_tinyimagenet_wnids(clean_archive)
        arrays, labels = corrupted.read_tiny_c(archive, wnids, corruptions, severities, max_images, tiny_c_order)
    else:
        arrays, labels = corrupted.read_cifar_c(archive, corruptions, severities, max_images)
    size = DATASETS[name].image_size
    for (corruption, severity), x in arrays.items():
        if x.shape[1:] != (3, size, size):
            raise MollifyError(f"{archive}: {corruption}/{severity} images are {x.shape[1:]}, expected (3, {size}, {size}).")
        save_npy(Path(out_dir) / corruption / f"s{severity}.npy", x)
    save_npy(Path(out_dir) / "labels.npy", labels)
    return {"source": "official", "url": url, "md5": info.md5, "images": int(len(labels))}


def load_split(data_dir: Path, split: str, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 images and int64 labels of a prepared split, checked for consistency (and labels
    in [0, num_classes) when given)."""
    x = load_images(Path(data_dir) / f"{split}_x.npy")
    y = load_npy(Path(data_dir) / f"{split}_y.npy", dtype=np.dtype(np.int64), ndim=1)
    if len(x) != len(y):
        raise MollifyError(f"{data_dir}: {split}_x has {len(x)} images but {split}_y has {len(y)} labels; re-run the data stage.")
    if num_classes is not None and (y.min() < 0 or y.max() >= num_classes):
        raise MollifyError(f"{Path(data_dir) / f'{split}_y.npy'} has labels in [{y.min()}, {y.max()}], expected 0 to "
                           f"{num_classes - 1} (meta.json: {num_classes} classes); re-run the data stage.")
    return x, y


def load_meta(data_dir: Path) -> DatasetMeta:
    path = Path(data_dir) / "meta.json"
    if not path.is_file():
        raise MollifyError(f"missing file {path}: run the data stage (`uv run dvc repro`).")
    try:
        raw = json.loads(path.read_text())
        return DatasetMeta(**{**raw, "mean": tuple(raw["mean"]), "std": tuple(raw["std"])})
    except (json.JSONDecodeError, TypeError, KeyError) as e:
        raise MollifyError(f"corrupt file {path} ({e}); re-run the data stage.") from None
