"""Atomic file output and checked input: a killed process never leaves a half-written file."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from mollify.errors import MollifyError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))


def save_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_torch(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_npy(path: str | Path, *, dtype: np.dtype | None = None, ndim: int | None = None, mmap: bool = False) -> np.ndarray:
    """Load an array, failing with a message that names the file and the stage that makes it."""
    path = Path(path)
    if not path.is_file():
        raise MollifyError(f"missing file {path}: run the stage that produces it (`uv run dvc repro`).")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise MollifyError(f"corrupt file {path} ({e}): delete it and re-run `uv run dvc repro`.") from e
    if dtype is not None and array.dtype != dtype:
        raise MollifyError(f"{path} has dtype {array.dtype}, expected {np.dtype(dtype)}: re-create it with `uv run dvc repro`.")
    if ndim is not None and array.ndim != ndim:
        raise MollifyError(f"{path} has shape {array.shape}, expected {ndim} dimensions: re-create it with `uv run dvc repro`.")
    return array


def load_torch(path: str | Path, **kwargs: Any) -> Any:
    path = Path(path)
    if not path.is_file():
        raise MollifyError(f"missing file {path}: run the stage that produces it (`uv run dvc repro`).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, **kwargs)
    except Exception as e:  # torch raises several unrelated types for a damaged file
        raise MollifyError(f"corrupt file {path} ({type(e).__name__}: {e}): delete it and re-run `uv run dvc repro`.") from e


def load_checkpoint(path: Path | None, fingerprint: str) -> dict[str, Any] | None:
    """The state saved at `path` if it was made by the same run (equal `fingerprint`), else None."""
    if path is None or not path.is_file():
        return None
    state = load_torch(path)
    return state if state.get("fingerprint") == fingerprint else None


def save_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rows of equal keys as CSV (the format `dvc plots` reads), written atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def load_csv(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise MollifyError(f"missing file {path}: run the stage that produces it (`uv run dvc repro`).")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise MollifyError(f"missing file {path}: run the stage that produces it (`uv run dvc repro`).")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise MollifyError(f"corrupt file {path} ({e}): delete it and re-run `uv run dvc repro`.") from None
