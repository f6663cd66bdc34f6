"""The real download -> md5 -> conversion path, against an HTTP server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from mollify.data import DATASETS, load_meta, load_split, prepare_dataset
from mollify.data.download import download, md5sum
from mollify.errors import MollifyError
from tests.data.archives import TINY_WNIDS, cifar_archive, tinyimagenet_archive


def _use_md5_of(monkeypatch: pytest.MonkeyPatch, name: str, archive: Path) -> None:
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], md5=md5sum(archive)))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("name,num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_download_and_conversion(server, tmp_path, monkeypatch, name, num_classes):
    served, url = server
    archive = served / DATASETS[name].url.rsplit("/", 1)[1]
    expected = cifar_archive(archive, num_classes)
    _use_md5_of(monkeypatch, name, archive)
    out = tmp_path / "clean"
    meta = prepare_dataset(name, out, download_dir=tmp_path / "downloads", mirror=url)
    assert meta.num_classes == num_classes and meta.mean == DATASETS[name].mean
    for split in ("train", "test"):
        x, y = load_split(out, split)
        assert x.dtype == np.uint8 and x.shape[1:] == (3, 32, 32) and y.dtype == np.int64
        np.testing.assert_array_equal(x, expected[f"{split}_x"])
        np.testing.assert_array_equal(y, expected[f"{split}_y"])
    assert load_meta(out).source == f"{url}/{archive.name}"
    # a second run reuses the verified archive without the server
    prepare_dataset(name, out, download_dir=tmp_path / "downloads", mirror="http://127.0.0.1:9")


def test_tinyimagenet_download_and_conversion(server, tmp_path, monkeypatch):
    served, url = server
    archive = served / "tiny-imagenet-200.zip"
    tinyimagenet_archive(archive)
    _use_md5_of(monkeypatch, "tinyimagenet", archive)
    out = tmp_path / "clean"
    prepare_dataset("tinyimagenet", out, download_dir=tmp_path / "downloads", mirror=url)
    train_x, train_y = load_split(out, "train")
    test_x, test_y = load_split(out, "test")
    assert train_x.shape == (6, 3, 64, 64) and test_x.shape == (6, 3, 64, 64)
    # label = index of the wnid in sorted(wnids); the red channel encodes that label
    assert sorted(train_y.tolist()) == [0, 0, 1, 1, 2, 2]
    np.testing.assert_allclose(train_x[:, 0].mean(axis=(1, 2)), 40 + 80 * train_y, atol=2)
    np.testing.assert_array_equal(test_y, [sorted(TINY_WNIDS).index(w) for w in TINY_WNIDS * 2])
    gray = test_x[1]  # the grayscale JPEG, converted to three equal channels
    assert (gray[0] == gray[1]).all() and (gray[1] == gray[2]).all()


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    served, url = server
    cifar_archive(served / "cifar-10-python.tar.gz", 10)
    out, downloads = tmp_path / "clean", tmp_path / "downloads"
    with pytest.raises(MollifyError, match="md5 mismatch.*expected c58f30108f718f92721af3b95e74349a"):
        prepare_dataset("cifar10", out, download_dir=downloads, mirror=url)
    assert _leftovers(downloads) == [] and _leftovers(out) == []


def test_truncated_download_keeps_only_the_partial_file(server, tmp_path):
    served, url = server
    archive = served / "cifar-10-python.tar.gz"
    cifar_archive(archive, 10)
    dest = tmp_path / "downloads" / archive.name
    size = archive.stat().st_size
    with pytest.raises(MollifyError) as refused:
        download(f"{url}/truncated/{archive.name}", dest, md5sum(archive))
    assert str(refused.value) == (f"download of {url}/truncated/{archive.name} is truncated: {size // 2} of {size} bytes; "
                                  f"run again: it resumes from {dest}.partial.")
    assert _leftovers(dest.parent) == [f"{archive.name}.partial"]
    assert (dest.parent / f"{archive.name}.partial").read_bytes() == archive.read_bytes()[: size // 2]


def test_download_cut_at_half_resumes_with_range(recorded_server, tmp_path, monkeypatch, caplog):
    """The connection drops at 50 %; the next run asks for the rest, appends it and checks the md5
    over the whole file (through the data stage's own path: the mirror, the md5, the conversion)."""
    served, url, requests = recorded_server
    archive = served / "cifar-10-python.tar.gz"
    expected = cifar_archive(archive, 10)
    _use_md5_of(monkeypatch, "cifar10", archive)
    size, half = archive.stat().st_size, archive.stat().st_size // 2
    out, downloads = tmp_path / "clean", tmp_path / "downloads"
    with pytest.raises(MollifyError, match=f"truncated: {half} of {size} bytes; run again: it resumes"):
        prepare_dataset("cifar10", out, download_dir=downloads, mirror=f"{url}/cut")
    assert _leftovers(downloads) == [f"{archive.name}.partial"] and _leftovers(out) == []
    with caplog.at_level("INFO", logger="mollify"):
        prepare_dataset("cifar10", out, download_dir=downloads, mirror=f"{url}/cut")
    assert f"{archive.name}: resuming at {half} bytes" in caplog.text
    assert requests == [(f"/cut/{archive.name}", None), (f"/cut/{archive.name}", f"bytes={half}-")]
    assert _leftovers(downloads) == [archive.name] and md5sum(downloads / archive.name) == md5sum(archive)
    np.testing.assert_array_equal(load_split(out, "test")[0], expected["test_x"])


def _half_done(served: Path, tmp_path: Path, partial: Callable[[bytes], bytes]) -> tuple[Path, Path]:
    """A served archive and an unfinished download of it holding `partial(the archive's bytes)`:
    (the archive, the download's target)."""
    archive = served / "cifar-10-python.tar.gz"
    cifar_archive(archive, 10)
    dest = tmp_path / "downloads" / archive.name
    dest.parent.mkdir()
    (dest.parent / f"{archive.name}.partial").write_bytes(partial(archive.read_bytes()))
    return archive, dest


def test_server_without_range_starts_over_and_says_so(recorded_server, tmp_path, caplog):
    served, url, requests = recorded_server
    archive, dest = _half_done(served, tmp_path, lambda data: data[:1000])
    with caplog.at_level("INFO", logger="mollify"):
        download(f"{url}/norange/{archive.name}", dest, md5sum(archive))
    assert requests == [(f"/norange/{archive.name}", "bytes=1000-")]
    assert caplog.messages == [f"{url}/norange/{archive.name}: the server does not support resuming (no HTTP Range); "
                               "starting over from byte 0"]
    assert dest.read_bytes() == archive.read_bytes() and _leftovers(dest.parent) == [archive.name]


def test_resumed_download_with_wrong_bytes_fails_the_md5_and_keeps_nothing(server, tmp_path):
    """The md5 covers the whole file, the bytes from before the cut too."""
    served, url = server
    archive, dest = _half_done(served, tmp_path, lambda data: b"x" * 1000)
    with pytest.raises(MollifyError, match=f"md5 mismatch for {url}/{archive.name}: got .*; nothing was kept"):
        download(f"{url}/{archive.name}", dest, md5sum(archive))
    assert _leftovers(dest.parent) == []


def test_complete_partial_file_is_verified_and_kept(server, tmp_path):
    """A partial file that already holds every byte (the server answers 416 to its Range)."""
    served, url = server
    archive, dest = _half_done(served, tmp_path, lambda data: data)
    assert download(f"{url}/{archive.name}", dest, md5sum(archive)) == dest
    assert _leftovers(dest.parent) == [archive.name] and dest.read_bytes() == archive.read_bytes()


def test_no_network_says_what_to_do(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MollifyError, match="cannot download .* place the archive at .* by hand"):
        download(f"http://127.0.0.1:{port}/cifar-10-python.tar.gz", tmp_path / "a.tar.gz", "0" * 32, timeout=5)
    assert _leftovers(tmp_path) == []


def test_damaged_archive_already_present(tmp_path):
    dest = tmp_path / "cifar-10-python.tar.gz"
    dest.write_bytes(b"not an archive")
    with pytest.raises(MollifyError, match="exists but its md5 is not"):
        download("http://127.0.0.1:9/x", dest, "0" * 32)


def test_corrupt_archive_with_right_md5(tmp_path, monkeypatch):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    archive = downloads / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b garbage")
    _use_md5_of(monkeypatch, "cifar10", archive)
    with pytest.raises(MollifyError, match="not a readable CIFAR archive"):
        prepare_dataset("cifar10", tmp_path / "clean", download_dir=downloads)
