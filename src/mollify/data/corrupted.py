"""The official corrupted test sets (CIFAR-10-C, CIFAR-100-C, Tiny-ImageNet-C) in our layout.

`read_official` turns a verified archive into {(corruption, severity): uint8 (N, C, H, W)} and the
int64 labels, for the corruptions, severities and first `max_images` images asked for:
- CIFAR-x-C: `<corruption>.npy` (50000, 32, 32, 3) uint8, severity s = rows [(s-1) 10000, s 10000),
  and `labels.npy`;
- Tiny-ImageNet-C: `<corruption>/<severity>/<wnid>/<file>.JPEG`, labelled by the wnid's position in
  the training set's sorted wnids, as the clean TinyImageNet labels are (archives.read_tinyimagenet).
  Ordered by file name (`order="file"`, ours: the first N mix the classes) or class by class, the
  wnids sorted, then by file name (`order="class"`, the mollification reference's order:
  data/process-datasets.py:229-242 walks the sorted wnids and each one's folder, 50 images a class,
  so that each test batch of 100 holds two classes, which its batch-mean ECE depends on).
  Two releases (`release`): the fixed re-upload, whose every folder holds the same images, and the
  original, whose frost folder holds 1000 ImageNet classes and other images (hendrycks/robustness
  issue 60); from it the reference reads only the 200 TinyImageNet classes' folders
  (process-datasets.py:230-231), which with `order="class"` gives frost the same labels.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import numpy as np

from mollify.data.archives import decode_rgb
from mollify.errors import MollifyError

Arrays = dict[tuple[str, int], np.ndarray]
CIFAR_TEST_SIZE = 10_000


def _open(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:")
    except (tarfile.TarError, OSError) as e:
        raise MollifyError(f"{archive} is not a readable tar archive ({e}); delete it and run again.") from None


def _missing(archive: Path, corruption: str, have: Iterable[str]) -> MollifyError:
    return MollifyError(
        f"{archive} has no {corruption!r} (it has: {', '.join(sorted(have)) or 'nothing'}); "
        "remove it from corrupt.corruptions or use corrupt.source=generate."
    )


def _load_npy(tar: tarfile.TarFile, member: tarfile.TarInfo) -> np.ndarray:
    f = tar.extractfile(member)
    assert f is not None
    return np.load(io.BytesIO(f.read()), allow_pickle=False)


def read_cifar_c(archive: Path, corruptions: list[str], severities: list[int], max_images: int | None) -> tuple[Arrays, np.ndarray]:
    n = min(max_images or CIFAR_TEST_SIZE, CIFAR_TEST_SIZE)
    with _open(archive) as tar:
        members = {PurePosixPath(m.name).stem: m for m in tar.getmembers() if m.name.endswith(".npy")}
        if "labels" not in members:
            raise MollifyError(f"{archive} has no labels.npy; it is not CIFAR-10-C / CIFAR-100-C.")
        for name in corruptions:
            if name not in members:
                raise _missing(archive, name, set(members) - {"labels"})
        labels = _load_npy(tar, members["labels"])[:n].astype(np.int64)
        out: Arrays = {}
        for name in corruptions:
            data = _load_npy(tar, members[name])
            if data.shape != (5 * CIFAR_TEST_SIZE, 32, 32, 3) or data.dtype != np.uint8:
                raise MollifyError(f"{archive}: {name}.npy has shape {data.shape} {data.dtype}, expected (50000, 32, 32, 3) uint8.")
            for s in severities:
                start = (s - 1) * CIFAR_TEST_SIZE
                out[name, s] = np.ascontiguousarray(data[start : start + n].transpose(0, 3, 1, 2))
    return out, labels


def read_tiny_c(
    archive: Path, wnids: list[str], corruptions: list[str], severities: list[int], max_images: int | None,
    order: str = "file", release: str = "fixed",
) -> tuple[Arrays, np.ndarray]:
    if release == "original" and order != "class":
        raise MollifyError("the original Tiny-ImageNet-C is read class by class (order='class'): its frost images differ.")
    index = {w: i for i, w in enumerate(sorted(wnids))}
    with _open(archive) as tar:
        folders: dict[tuple[str, int], dict[tuple[str, str], tarfile.TarInfo]] = {}
        for m in tar.getmembers():
            parts = PurePosixPath(m.name).parts
            if m.isfile() and len(parts) >= 4 and parts[-3].isdigit() and parts[-1].upper().endswith(".JPEG"):
                corruption, severity, wnid, file = parts[-4:]
                folders.setdefault((corruption, int(severity)), {})[file, wnid] = m
        have = {c for c, _ in folders}
        expected = None
        out: Arrays = {}
        for name in corruptions:
            if name not in have:
                raise _missing(archive, name, have)
            for s in severities:
                images = folders.get((name, s))
                if not images:
                    raise MollifyError(f"{archive} has no {name}/{s} folder; the archive is not the official one.")
                if release == "original":  # the reference's loop visits only the 200 classes' folders
                    images = {k: m for k, m in images.items() if k[1] in index}
                # keys are (file, wnid): by file name, or by class (the sorted wnids) then file name
                keys = sorted(images, key=(lambda k: (k[1], k[0])) if order == "class" else None)[:max_images]
                unknown = {w for _, w in keys} - set(index)
                if unknown:
                    raise MollifyError(
                        f"{archive}: {name}/{s} has classes {sorted(unknown)[:3]} that are not TinyImageNet wnids; "
                        "the training labels cannot be matched (the original release's frost folder has this "
                        "problem: set corrupt.tiny_c_release: original to read it as the mollification reference did, "
                        "or use the fixed re-upload)."
                    )
                same = (lambda k: [w for _, w in k]) if release == "original" else (lambda k: k)
                if expected is None:
                    expected = keys
                elif same(keys) != same(expected):
                    raise MollifyError(
                        f"{archive}: {name}/{s} does not hold the same "
                        f"{'classes and counts' if release == 'original' else 'images'} as "
                        f"{corruptions[0]}/{severities[0]}; the archive is damaged or not the {release} release."
                    )
                out[name, s] = np.stack([decode_rgb(tar.extractfile(images[k]).read()) for k in keys])  # type: ignore[union-attr]
    assert expected is not None
    return out, np.array([index[w] for _, w in expected], dtype=np.int64)
