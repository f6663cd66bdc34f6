"""Download a file from its canonical URL with md5 verification, atomically and resumably skipped."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from mollify.errors import MollifyError
from mollify.io import atomic_path

_CHUNK = 1 << 20


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str, *, timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest` unless a file with the right md5 is already there.

    The file appears under `dest` only once it is complete and its md5 matches; a truncated or
    corrupted transfer leaves nothing behind and raises a MollifyError that says what to do.
    """
    dest = Path(dest)
    if dest.is_file():
        if md5sum(dest) == md5:
            return dest
        raise MollifyError(
            f"{dest} exists but its md5 is not {md5}: it is damaged or another file. Delete it and run again."
        )
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError) as e:
        raise MollifyError(
            f"cannot download {url} ({e}). Without network access, place the archive at {dest} by hand "
            f"(md5 {md5}) or choose the `demo` dataset."
        ) from None
    with response, atomic_path(dest) as tmp:
        expected = int(response.headers.get("Content-Length") or 0) or None
        digest, received = hashlib.md5(), 0
        columns = (TextColumn(f"download {dest.name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        with open(tmp, "wb") as f, Progress(*columns, transient=True) as progress:
            task = progress.add_task("download", total=expected)
            try:
                while block := response.read(_CHUNK):
                    f.write(block)
                    digest.update(block)
                    received += len(block)
                    progress.update(task, advance=len(block))
            except (OSError, http.client.HTTPException) as e:
                raise MollifyError(f"download of {url} broke off after {received} bytes ({e}); run again.") from None
        if expected is not None and received != expected:
            raise MollifyError(f"download of {url} is truncated: {received} of {expected} bytes; run again.")
        if digest.hexdigest() != md5:
            raise MollifyError(
                f"md5 mismatch for {url}: got {digest.hexdigest()}, expected {md5}. The download is corrupt or the "
                "server sent another file; nothing was kept. Run again, or place the right archive by hand."
            )
    return dest
