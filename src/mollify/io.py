"""Atomic file output and checked input: a killed process never leaves a half-written file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from mollify.errors import MollifyError

log = logging.getLogger(__name__)


def _new_file_beside(path: Path) -> Path:
    """Create an empty, uniquely named hidden file in `path`'s folder, with the permissions the
    umask gives (mode 0o666 & ~umask, as `open(path, "w")` would; `tempfile.mkstemp` makes 0o600)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _new_file_beside(path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def check_writable(*files: str | Path, folders: Iterable[str | Path] = ()) -> None:
    """Fail before any work if a stage could not write its outputs (`files`, and `folders` it fills):
    an output file is a folder, a part of a path is a file, or a folder takes no new files."""
    for file in map(Path, files):
        if file.is_dir():
            raise MollifyError(f"cannot write {file}: it is a folder; move it away or delete it.")
    for output in [*(Path(f).parent for f in files), *map(Path, folders)]:
        folder = output
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise MollifyError(f"cannot write in {output}: {folder} is a file, not a folder; move it away or delete it.")
        try:
            _new_file_beside(folder / "write-test").unlink()
        except OSError as e:
            raise MollifyError(f"cannot write in {output}: no permission to create files in {folder} ({e.strerror}); "
                               f"fix its permissions (`chmod u+w {folder}`) or run where you may write.") from None


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array))


def save_json(path: str | Path, obj: Any) -> None:
    """Strict JSON: a NaN or infinite number is written as null, and a dict at the top gets
    `"undefined": [dotted keys of those values]` (bare NaN is not JSON; DVC and jq reject it)."""
    undefined: list[str] = []
    obj = _finite(obj, "", undefined)
    if undefined:
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: undefined values {undefined} need a dict at the top to be flagged")
        obj = {**obj, "undefined": undefined}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def _finite(obj: Any, key: str, undefined: list[str]) -> Any:
    """`obj` with non-finite floats replaced by None; their dotted keys appended to `undefined`."""
    if isinstance(obj, dict):
        return {k: _finite(v, f"{key}.{k}" if key else str(k), undefined) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v, f"{key}.{i}" if key else str(i), undefined) for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        undefined.append(key)
        return None
    return obj


def save_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_torch(path: str | Path, obj: Any) -> None:
    """torch.save through memory, then an atomic write: the zip's record names come from the
    file's name (`<name>/data.pkl`), so saving into the temporary file would give identical
    weights different bytes; a buffer's records are always `archive/...`."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


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


def load_images(path: str | Path, *, mmap: bool = False) -> np.ndarray:
    """Load a non-empty uint8 image array (N, C, H, W) with C = 1 or 3, failing with one message
    for anything else (channels-last (N, H, W, C) arrays are named as such)."""
    images = load_npy(path, dtype=np.dtype(np.uint8), mmap=mmap)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        channels_last = images.ndim == 4 and images.shape[-1] in (1, 3)
        fix = ("it looks channels-last (N, H, W, C): convert it with np.ascontiguousarray(x.transpose(0, 3, 1, 2))"
               if channels_last else "re-create it with `uv run dvc repro`")
        raise MollifyError(f"{path} has shape {images.shape}, expected images (N, C, H, W) with C = 1 or 3: {fix}.")
    if len(images) == 0:
        raise MollifyError(f"{path} holds no images (shape {images.shape}): re-create it with `uv run dvc repro` "
                           "(check the size params of the stage that makes it).")
    return images


def load_torch(path: str | Path, **kwargs: Any) -> Any:
    path = Path(path)
    if not path.is_file():
        raise MollifyError(f"missing file {path}: run the stage that produces it (`uv run dvc repro`).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, **kwargs)
    except Exception as e:  # torch raises several unrelated types for a damaged file
        raise MollifyError(f"corrupt file {path} ({type(e).__name__}: {e}): delete it and re-run `uv run dvc repro`.") from e


def load_checkpoint(path: Path | None, fingerprint: dict[str, str]) -> dict[str, Any] | None:
    """The state saved at `path` if it was made by the same run (every part of `fingerprint`
    equal), else None; an ignored checkpoint is logged with the reason (unreadable, or which parts
    differ)."""
    if path is None or not path.is_file():
        return None
    try:
        state = load_torch(path)
    except MollifyError as e:
        log.warning("ignoring checkpoint %s: unreadable (%s); starting from scratch", path, e)
        return None
    saved = state.get("fingerprint") if isinstance(state, dict) else None
    if not isinstance(saved, dict):
        log.warning("ignoring checkpoint %s: made by an older version of mollify; starting from scratch", path)
        return None
    if differ := sorted(k for k in fingerprint.keys() | saved.keys() if saved.get(k) != fingerprint.get(k)):
        log.warning("ignoring checkpoint %s: made with other %s; starting from scratch", path, ", ".join(differ))
        return None
    return state


def save_csv(path: str | Path, rows: list[dict[str, Any]], header: Sequence[str] = ()) -> None:
    """Rows of equal keys as CSV (the format `dvc plots` reads), written atomically; no rows: the
    `header` line alone."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else list(header))
        writer.writeheader()
        writer.writerows(rows)


def load_csv(path: str | Path, delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV (or, with delimiter "\\t", a TSV such as DVCLive's) as dicts of strings."""
    path = Path(path)
    if not path.is_file():
        raise MollifyError(f"missing file {path}: run the stage that produces it (`uv run dvc repro`).")
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise MollifyError(f"missing file {path}: run the stage that produces it (`uv run dvc repro`).")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise MollifyError(f"corrupt file {path} ({e}): delete it and re-run `uv run dvc repro`.") from None


def fingerprint_parts(parts: dict[str, Any]) -> dict[str, str]:
    """A hash per part of a run's settings, so that an ignored checkpoint can say which part differs."""
    return {key: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
            for key, value in parts.items()}


def code_fingerprint() -> str:
    """Hash of the library's source: a checkpoint made by other code is not resumed."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()
