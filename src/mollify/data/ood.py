"""The out-of-distribution test sets of each dataset (DiffAug's OOD evaluation, at CIFAR scale):

- CIFAR-10: CIFAR-100's test set (near: other natural-image classes of the same size and source)
  and SVHN's test set (far: house-number digits), as OpenOOD v1.5's CIFAR-10 benchmark;
- CIFAR-100: CIFAR-10's test set (near) and SVHN (far), as OpenOOD's CIFAR-100 benchmark;
- TinyImageNet: SVHN upsampled to 64 px (far). No near set: CIFAR-10 / CIFAR-100 share classes
  with TinyImageNet's 200 (cats, cars, trucks, ...), so they are not out of distribution; no
  TinyImageNet class is a house-number digit;
- demo: four shapes that none of the ten classes contain (synthetic.NOVEL_CLASS_NAMES), rendered
  like the demo's images from the seed (near: same backgrounds, colours and clutter).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mollify.data import archives, synthetic
from mollify.data.datasets import DATASETS, SVHN_TEST
from mollify.data.prepare import fetch_archive
from mollify.data.prepared import OOD_SETS_FILE
from mollify.io import save_json, save_npy

OOD_SETS: dict[str, dict[str, str]] = {
    "demo": {"novel_shapes": "near"},
    "cifar10": {"cifar100": "near", "svhn": "far"},
    "cifar100": {"cifar10": "near", "svhn": "far"},
    "tinyimagenet": {"svhn": "far"},
}


def _ood_images(name: str, *, download_dir: Path, mirror: str | None, seed: int, demo_size: int, demo_design: str) -> np.ndarray:
    if name == "novel_shapes":  # a stream apart from train and test
        return synthetic.generate(demo_size, seed=seed + 2_000_003, novel=True, design=synthetic.DESIGNS[demo_design])[0]
    if name == "svhn":
        return archives.read_svhn(fetch_archive(SVHN_TEST.url, SVHN_TEST.md5, download_dir, mirror)[1])[0]
    info = DATASETS[name]
    assert info.url is not None and info.md5 is not None
    return archives.read_cifar(fetch_archive(info.url, info.md5, download_dir, mirror)[1], info.num_classes)[1][0]


def prepare_ood(dataset: str, out_dir: Path, *, enabled: bool, download_dir: Path, mirror: str | None = None,
                seed: int = 0, demo_size: int = 1000, demo_design: str = "cifar_like") -> dict[str, str]:
    """Write `<out_dir>/<name>.npy` (uint8 (N, C, H, W) at the dataset's image size) for each OOD set
    of `dataset`, and `sets.json` ({name: "near" | "far"}; empty, and nothing downloaded, when not `enabled`)."""
    sets = OOD_SETS[dataset] if enabled else {}
    size = DATASETS[dataset].image_size
    for name in sets:
        images = _ood_images(name, download_dir=download_dir, mirror=mirror, seed=seed, demo_size=demo_size,
                             demo_design=demo_design)
        save_npy(Path(out_dir) / f"{name}.npy", synthetic.resize(images, size))
    save_json(Path(out_dir) / OOD_SETS_FILE, sets)
    return sets

