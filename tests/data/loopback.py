"""An HTTP server on 127.0.0.1 serving a folder: the download tests' stand-in for the canonical hosts."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from the folder, honouring a `Range: bytes=<start>-` request (206) as the
    canonical hosts do. Prefixes change that:
    - `/truncated/<name>` announces the full length but sends only half of the file, then closes
      the connection (every time);
    - `/cut/<name>` does so for a request from byte 0 (a connection cut at 50 %), and serves the
      rest to a request with a Range;
    - `/norange/<name>` ignores Range and sends the whole file (200), as a server without it.
    Each request's path and Range header are appended to `requests`."""

    requests: list[tuple[str, str | None]]

    def log_message(self, *args: object) -> None:
        return None

    def do_GET(self) -> None:  # noqa: N802
        self.requests.append((self.path, self.headers.get("Range")))
        mode, _, name = self.path.lstrip("/").partition("/")
        if mode not in ("truncated", "cut", "norange"):
            mode, name = "", self.path.lstrip("/")
        file = Path(self.directory) / name
        if not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        asked = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(asked.group(1)) if asked and mode in ("", "cut") else 0
        if start >= len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if mode == "truncated" or (mode == "cut" and not start):
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.wfile.write(data[start:])


@contextmanager
def serve(folder: Path, requests: list[tuple[str, str | None]] | None = None) -> Iterator[str]:
    """Serve `folder` in a background thread; yields the server's base URL. Each request's (path,
    Range header) is appended to `requests` when given."""
    seen = [] if requests is None else requests
    recording = type("_Recording", (_Handler,), {"requests": seen})
    handler = lambda *a, **k: recording(*a, directory=str(folder), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
