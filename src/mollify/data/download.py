"""Download a file from its canonical URL with md5 verification, resumably.

The bytes go to `<target>.partial` beside the target; an interrupted transfer leaves that file, and
the next run asks the server for the rest (HTTP Range). The md5 is checked over the whole file at
the end, and only a file that matches is renamed to the target. An archive without a published md5
(md5 None) is accepted once complete, and the log gives the md5 it has.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from mollify.errors import MollifyError

_CHUNK = 1 << 20

log = logging.getLogger(__name__)


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def partial_path(dest: Path) -> Path:
    """Where the bytes of an unfinished download of `dest` are kept."""
    return dest.with_name(dest.name + ".partial")


def download(url: str, dest: Path, md5: str | None, *, timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest` unless a file with the right md5 (any, for md5 None) is already there.

    The file appears under `dest` only once it is complete and its md5 matches. A transfer that
    breaks off keeps its bytes in `<dest>.partial` and the next call resumes there (a server that
    ignores the Range request sends the whole file again, and the log says so); a file whose md5 is
    wrong is deleted. Every failure raises a MollifyError that says what to do.
    """
    dest = Path(dest)
    if dest.is_file():
        if md5 is None or md5sum(dest) == md5:
            return dest
        raise MollifyError(
            f"{dest} exists but its md5 is not {md5}: it is damaged or another file. Delete it and run again."
        )
    partial = partial_path(dest)
    start = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # nothing left to send: the partial file holds the whole length
            e.close()
            return _verified(partial, dest, url, md5)
        raise _unreachable(url, dest, md5, e) from None
    except (urllib.error.URLError, OSError) as e:
        raise _unreachable(url, dest, md5, e) from None
    with response:
        resumed = start and response.status == 206
        if resumed:
            log.info("%s: resuming at %d bytes (%s)", dest.name, start, partial)
        elif start:
            log.info("%s: the server does not support resuming (no HTTP Range); starting over from byte 0", url)
            start = 0
        length = int(response.headers.get("Content-Length") or 0) or None
        expected = start + length if length is not None else None
        range_total = re.search(r"/(\d+)$", response.headers.get("Content-Range") or "")
        if resumed and range_total:
            expected = int(range_total.group(1))
        partial.parent.mkdir(parents=True, exist_ok=True)
        received = start
        columns = (TextColumn(f"download {dest.name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        with open(partial, "ab" if resumed else "wb") as f, Progress(*columns, transient=True) as progress:
            task = progress.add_task("download", total=expected, completed=start)
            try:
                while block := response.read(_CHUNK):
                    f.write(block)
                    received += len(block)
                    progress.update(task, advance=len(block))
            except (OSError, http.client.HTTPException) as e:
                raise MollifyError(f"download of {url} broke off at {received} bytes ({e}); run again: it resumes "
                                   f"from {partial}.") from None
            finally:
                f.flush()
                os.fsync(f.fileno())
    if expected is not None and received != expected:
        raise MollifyError(f"download of {url} is truncated: {received} of {expected} bytes; run again: it resumes "
                           f"from {partial}.")
    return _verified(partial, dest, url, md5)


def _verified(partial: Path, dest: Path, url: str, md5: str | None) -> Path:
    """Rename the finished `partial` to `dest` if its md5 (over the whole file) is `md5` (any, for None)."""
    got = md5sum(partial)
    if md5 is None:
        log.warning("%s has no published md5: accepted unverified, with md5 %s", url, got)
    elif got != md5:
        partial.unlink()
        raise MollifyError(
            f"md5 mismatch for {url}: got {got}, expected {md5}. The download is corrupt or the server sent "
            "another file; nothing was kept. Run again, or place the right archive by hand."
        )
    os.replace(partial, dest)
    return dest


def _unreachable(url: str, dest: Path, md5: str | None, error: Exception) -> MollifyError:
    return MollifyError(
        f"cannot download {url} ({error}). Without network access, place the archive at {dest} by hand "
        f"({f'md5 {md5}' if md5 else 'no md5 is published for it'}) or choose the `demo` dataset."
    )
