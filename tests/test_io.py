import hashlib
import os
import stat

import numpy as np
import pytest
import torch

from mollify.data import load_split
from mollify.errors import MollifyError
from mollify.io import atomic_path, check_writable, load_json, load_npy, load_torch, save_json, save_npy, save_torch


def test_atomic_write_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "out.npy"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_the_old_file_whole(tmp_path):
    target = tmp_path / "x.npy"
    save_npy(target, np.zeros(3))
    save_npy(target, np.ones(5))
    np.testing.assert_array_equal(np.load(target), np.ones(5))
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_missing_and_corrupt_files_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(MollifyError, match=r"missing file .*train_x.npy: run the stage"):
        load_split(tmp_path, "train")
    (tmp_path / "train_x.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(MollifyError, match=r"corrupt file .*train_x.npy .*re-run"):
        load_split(tmp_path, "train")
    save_npy(tmp_path / "w.npy", np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(MollifyError, match="dtype float32, expected uint8"):
        load_npy(tmp_path / "w.npy", dtype=np.dtype(np.uint8))
    (tmp_path / "m.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MollifyError, match=r"corrupt file .*m.pt"):
        load_torch(tmp_path / "m.pt")
    (tmp_path / "m.json").write_text("{")
    with pytest.raises(MollifyError, match=r"corrupt file .*m.json"):
        load_json(tmp_path / "m.json")


def test_mismatched_split_lengths(tmp_path):
    save_npy(tmp_path / "test_x.npy", np.zeros((4, 3, 32, 32), dtype=np.uint8))
    save_npy(tmp_path / "test_y.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(MollifyError, match="4 images but test_y has 3 labels"):
        load_split(tmp_path, "test")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_get_the_permissions_the_umask_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_json(tmp_path / "m.json", {"a": 1})
        save_npy(tmp_path / "x.npy", np.zeros(2))
    finally:
        os.umask(old)
    for name in ("m.json", "x.npy"):  # as `open(path, "w")` creates: 0o666 without the umask's bits
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_unwritable_outputs_are_named_before_any_work(tmp_path):
    (tmp_path / "plots").write_text("a file where a folder should be")
    with pytest.raises(MollifyError, match=r"cannot write in .*plots/figures: .*plots is a file, not a folder"):
        check_writable(folders=[tmp_path / "plots" / "figures"])
    (tmp_path / "m.json").mkdir()
    with pytest.raises(MollifyError, match=r"cannot write .*m.json: it is a folder"):
        check_writable(tmp_path / "m.json")
    check_writable(tmp_path / "new" / "deeper" / "m.json", folders=[tmp_path / "other"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "plots"]  # the check creates nothing


def test_identical_weights_give_identical_bytes(tmp_path):
    """Two saves of the same state (different files, so different temporary names) have the same
    md5: DVC's run-cache and `dvc status` then see an identical model as unchanged."""
    state = {"w": torch.arange(12.0).reshape(3, 4), "epoch": 3}
    save_torch(tmp_path / "a.pt", state)
    save_torch(tmp_path / "sub" / "b.pt", state)
    digests = {hashlib.md5((tmp_path / p).read_bytes()).hexdigest() for p in ("a.pt", "sub/b.pt")}
    assert len(digests) == 1
    torch.save(state, tmp_path / "plain.pt")  # what the old save_torch did: the file name is inside
    assert hashlib.md5((tmp_path / "plain.pt").read_bytes()).hexdigest() not in digests
    assert torch.equal(torch.load(tmp_path / "a.pt", weights_only=True)["w"], state["w"])
