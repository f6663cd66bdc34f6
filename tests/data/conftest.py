"""Fixtures of the download tests."""

from pathlib import Path

import pytest

from tests.data.loopback import serve


@pytest.fixture
def server(tmp_path: Path):
    """A folder served on 127.0.0.1: (the folder, its base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    with serve(served) as url:
        yield served, url


@pytest.fixture
def recorded_server(tmp_path: Path):
    """As `server`, with the list of (path, Range header) of every request: (folder, URL, requests)."""
    served, requests = tmp_path / "served", []
    served.mkdir()
    with serve(served, requests) as url:
        yield served, url, requests
