"""What the data, corrupt and ood stages wrote, read back: a dataset's splits and meta.json, and its
out-of-distribution sets. The training and evaluation stages read their data through this module
alone, so they do not depend on the download and conversion code (mollify.dag).

On disk a prepared dataset is a folder with `train_x.npy`, `train_y.npy`, `test_x.npy`,
`test_y.npy` (uint8 (N, C, H, W) and int64 (N,)) and `meta.json` (classes and normalisation); its
OOD sets a folder of `<name>.npy` and `sets.json` ({name: "near" | "far"}).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mollify.errors import MollifyError
from mollify.io import load_images, load_json, load_npy

OOD_SETS_FILE = "sets.json"


@dataclass(frozen=True)
class DatasetMeta:
    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str


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


def load_ood(out_dir: Path) -> dict[str, tuple[str, np.ndarray]]:
    """{name: (near | far, images)} as written by mollify.data.ood.prepare_ood."""
    path = Path(out_dir) / OOD_SETS_FILE
    if not path.is_file():
        raise MollifyError(f"missing file {path}: run the ood stage (`uv run dvc repro`).")
    return {name: (kind, load_images(Path(out_dir) / f"{name}.npy")) for name, kind in load_json(path).items()}
