"""Make a dataset's arrays (the data stage) and the official corrupted test sets in our layout (the
corrupt stage with corrupt.source=official): from the embedded synthetic generator, or from the
archives at their canonical URLs (md5-checked downloads)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from mollify.data import archives, corrupted, synthetic
from mollify.data.datasets import DATASETS, archive_name, official_corrupted
from mollify.data.download import download, md5sum
from mollify.data.prepared import DatasetMeta
from mollify.errors import MollifyError
from mollify.io import save_json, save_npy


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
    demo_design: str = "cifar_like",
    mirror: str | None = None,
) -> DatasetMeta:
    """Make the arrays of dataset `name` under `out_dir` (downloading its archive when needed)."""
    if name not in DATASETS:
        raise MollifyError(f"unknown dataset {name!r}; choices: {', '.join(DATASETS)}")
    info = DATASETS[name]
    if name == "demo":
        design = synthetic.DESIGNS[demo_design]
        train = synthetic.generate(demo_train_size, seed=seed, design=design)
        test = synthetic.generate(demo_test_size, seed=seed + 1_000_003, design=design)  # disjoint stream from train
        source = f"synthetic (design {demo_design}, seed {seed})"
    else:
        assert info.url is not None and info.md5 is not None
        url, archive = fetch_archive(info.url, info.md5, download_dir, mirror)
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


def fetch_archive(url: str, md5: str | None, download_dir: Path, mirror: str | None, filename: str | None = None) -> tuple[str, Path]:
    """Download (or reuse) the archive at `url`, or at <mirror>/<file name>, kept as <download_dir>/<file
    name> (default: the URL's): (the URL used, the path)."""
    filename = archive_name(url, filename)
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
    tiny_c_release: str = "fixed",
) -> dict:
    """Write the official CIFAR-10-C / CIFAR-100-C / Tiny-ImageNet-C (its `tiny_c_release`) as
    `<out_dir>/<corruption>/s<severity>.npy` (uint8 (N, C, H, W)) and `labels.npy`; return the source
    record (url, md5: the archive's, also where no md5 is published)."""
    info = official_corrupted(name, tiny_c_release)
    url, archive = fetch_archive(info.url, info.md5, download_dir, mirror, info.filename)
    if name == "tinyimagenet":
        clean = DATASETS[name]
        assert clean.url is not None and clean.md5 is not None
        _, clean_archive = fetch_archive(clean.url, clean.md5, download_dir, mirror)
        wnids = archives.read_tinyimagenet_wnids(clean_archive)
        arrays, labels = corrupted.read_tiny_c(archive, wnids, corruptions, severities, max_images, tiny_c_order,
                                               release=tiny_c_release)
    else:
        arrays, labels = corrupted.read_cifar_c(archive, corruptions, severities, max_images)
    size = DATASETS[name].image_size
    for (corruption, severity), x in arrays.items():
        if x.shape[1:] != (3, size, size):
            raise MollifyError(f"{archive}: {corruption}/{severity} images are {x.shape[1:]}, expected (3, {size}, {size}).")
        save_npy(Path(out_dir) / corruption / f"s{severity}.npy", x)
    save_npy(Path(out_dir) / "labels.npy", labels)
    record = {"source": "official", "url": url, "md5": info.md5 or md5sum(archive), "images": int(len(labels))}
    return {**record, "release": tiny_c_release} if name == "tinyimagenet" else record
