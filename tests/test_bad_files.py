"""Bad data files and output paths, through the stage CLIs: each gets one message (what, where, how
to fix), a non-zero exit, and leaves every previously produced output as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

from mollify import paths
from tests.conftest import ROOT, call_stage, tiny_params

CLEAN = Path("data/demo/clean")
CORRUPTED = Path("data/demo/corrupted")
TRAIN = ("train", "--dataset", "demo", "--method", "baseline")
EVALUATE = ("evaluate", "--dataset", "demo", "--method", "baseline")
SUMMARIZE = ("summarize", "--dataset", "demo", "--method", "baseline")
CORRUPT = ("corrupt", "--dataset", "demo")
DATA = ("data", "--dataset", "demo")
DIFFUSION = ("diffusion", "--dataset", "demo")
PLOT = ("plot",)


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace where the data, corrupt and train stages of a tiny demo (one method, two
    corruptions) have run, with the repository's metrics/ and plots/ as the later stages' outputs
    (the diffusion model and the evaluation would cost a minute; no case gets that far)."""
    root = tmp_path_factory.mktemp("produced")
    for name in ("stages", "src", "metrics", "plots"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = tiny_params(**{"methods": ["baseline"], "diffaug_methods": [], "train.epochs": 1,
                            "corrupt.corruptions": ["gaussian_noise", "fog"], "corrupt.severities": [1]})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for stage in (DATA, CORRUPT, TRAIN):
            assert call_stage(*stage, monkeypatch=mp) == 0, stage
    return root


@pytest.fixture
def workspace(produced: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the produced workspace, the working directory of the test."""
    shutil.copytree(produced, tmp_path / "ws", symlinks=True)
    monkeypatch.chdir(tmp_path / "ws")
    return tmp_path / "ws"


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every output file and folder under data/, metrics/, plots/: content hash and mode."""
    state = {}
    for top in ("data", "metrics", "plots"):
        for path in sorted((root / top).rglob("*")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            state[str(path.relative_to(root))] = (digest, path.stat().st_mode)
    return state


def _resave(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def _damage_array(path: Path, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[], None]:
    return lambda: _resave(path, change(np.load(path)))


def _truncate(path: Path) -> Callable[[], None]:
    return lambda: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _make_file(path: Path) -> Callable[[], None]:
    """Replace an output folder by a file of the same name."""
    def damage() -> None:
        shutil.rmtree(path)
        path.write_text("not a folder")
    return damage


def _make_folder(path: Path) -> Callable[[], None]:
    """Replace an output file by a folder of the same name."""
    def damage() -> None:
        path.unlink(missing_ok=True)
        path.mkdir(parents=True)
    return damage


NHWC = "expected images (N, C, H, W) with C = 1 or 3: it looks channels-last (N, H, W, C): convert it with " \
       "np.ascontiguousarray(x.transpose(0, 3, 1, 2))."

CASES = [
    ("missing train images", TRAIN, lambda: (CLEAN / "train_x.npy").unlink(),
     "missing file data/demo/clean/train_x.npy: run the stage that produces it (`uv run dvc repro`)."),
    ("truncated train images", TRAIN, _truncate(CLEAN / "train_x.npy"),
     "corrupt file data/demo/clean/train_x.npy ("),
    ("not an .npy file", TRAIN, lambda: (CLEAN / "train_y.npy").write_text("0,1,2\n"),
     "corrupt file data/demo/clean/train_y.npy ("),
    ("NHWC train images", TRAIN, _damage_array(CLEAN / "train_x.npy", lambda x: x.transpose(0, 2, 3, 1)),
     f"data/demo/clean/train_x.npy has shape (256, 32, 32, 3), {NHWC}"),
    ("flat train images", TRAIN, _damage_array(CLEAN / "train_x.npy", lambda x: x.reshape(len(x), -1)),
     "data/demo/clean/train_x.npy has shape (256, 3072), expected images (N, C, H, W) with C = 1 or 3: "
     "re-create it with `uv run dvc repro`."),
    ("float train images", TRAIN, _damage_array(CLEAN / "train_x.npy", lambda x: x / 255.0),
     "data/demo/clean/train_x.npy has dtype float64, expected uint8: re-create it with `uv run dvc repro`."),
    ("int32 labels", TRAIN, _damage_array(CLEAN / "train_y.npy", lambda y: y.astype(np.int32)),
     "data/demo/clean/train_y.npy has dtype int32, expected int64: re-create it with `uv run dvc repro`."),
    ("one-hot labels", EVALUATE, _damage_array(CLEAN / "test_y.npy", lambda y: np.eye(10, dtype=np.int64)[y]),
     "data/demo/clean/test_y.npy has shape (64, 10), expected 1 dimensions: re-create it with `uv run dvc repro`."),
    ("fewer labels than images", TRAIN, _damage_array(CLEAN / "train_y.npy", lambda y: y[:-1]),
     "data/demo/clean: train_x has 256 images but train_y has 255 labels; re-run the data stage."),
    ("label out of range", TRAIN, _damage_array(CLEAN / "train_y.npy", lambda y: np.where(np.arange(len(y)) == 0, 10, y)),
     "data/demo/clean/train_y.npy has labels in [0, 10], expected 0 to 9 (meta.json: 10 classes); re-run the data stage."),
    ("empty test split (evaluate)", EVALUATE, lambda: (_damage_array(CLEAN / "test_x.npy", lambda x: x[:0])(),
                                                       _damage_array(CLEAN / "test_y.npy", lambda y: y[:0])()),
     "data/demo/clean/test_x.npy holds no images (shape (0, 3, 32, 32)): re-create it with `uv run dvc repro` "
     "(check the size params of the stage that makes it)."),
    ("empty test split (corrupt)", CORRUPT, lambda: (_damage_array(CLEAN / "test_x.npy", lambda x: x[:0])(),
                                                     _damage_array(CLEAN / "test_y.npy", lambda y: y[:0])()),
     "data/demo/clean/test_x.npy holds no images (shape (0, 3, 32, 32)): re-create it with `uv run dvc repro` "
     "(check the size params of the stage that makes it)."),
    ("NHWC test images (corrupt)", CORRUPT, _damage_array(CLEAN / "test_x.npy", lambda x: x.transpose(0, 2, 3, 1)),
     f"data/demo/clean/test_x.npy has shape (64, 32, 32, 3), {NHWC}"),
    ("NHWC corrupted set", EVALUATE, _damage_array(CORRUPTED / "fog/s1.npy", lambda x: x.transpose(0, 2, 3, 1)),
     f"data/demo/corrupted/fog/s1.npy has shape (64, 32, 32, 3), {NHWC}"),
    ("corrupted set of another size", EVALUATE, _damage_array(CORRUPTED / "fog/s1.npy", lambda x: x[:, :, :28, :28]),
     "data/demo/corrupted/fog/s1.npy has 64 images of shape (3, 28, 28) for 64 labels and clean test images of "
     "shape (3, 32, 32); re-run the corrupt stage."),
    ("missing corrupted labels", EVALUATE, lambda: (CORRUPTED / "labels.npy").unlink(),
     "missing file data/demo/corrupted/labels.npy: run the stage that produces it (`uv run dvc repro`)."),
    ("damaged model", EVALUATE, lambda: paths.model_file("demo", "baseline").write_bytes(b"PK\x03\x04 not a model"),
     f"corrupt file {paths.model_file('demo', 'baseline')} ("),
    ("damaged meta.json", EVALUATE, lambda: (CLEAN / "meta.json").write_text('{"name": "demo"'),
     "corrupt file data/demo/clean/meta.json ("),
    ("grid image path is a folder", CORRUPT, _make_folder(paths.corruption_grid_file("demo")),
     f"cannot write {paths.corruption_grid_file('demo')}: it is a folder; move it away or delete it."),
    ("diffusion metrics file is a folder", DIFFUSION, _make_folder(paths.diffusion_metrics_file("demo")),
     f"cannot write {paths.diffusion_metrics_file('demo')}: it is a folder; move it away or delete it."),
    ("clean data folder is a file", DATA, _make_file(CLEAN),
     "cannot write in data/demo/clean: data/demo/clean is a file, not a folder; move it away or delete it."),
    ("run summary file is a folder", EVALUATE, _make_folder(paths.run_summary_file("demo", "baseline")),
     f"cannot write {paths.run_summary_file('demo', 'baseline')}: it is a folder; move it away or delete it."),
    ("metrics file is a folder", SUMMARIZE, _make_folder(paths.metrics_file("demo", "baseline")),
     f"cannot write {paths.metrics_file('demo', 'baseline')}: it is a folder; move it away or delete it."),
    ("plot folder is a file", PLOT, _make_file(Path("plots/figures")),
     "cannot write in plots/figures: plots/figures is a file, not a folder; move it away or delete it."),
    ("a parent of the model is a file", TRAIN, _make_file(Path("data/demo/models")),
     "cannot write in data/demo/models/baseline: data/demo/models is a file, not a folder; move it away or delete it."),
]



def _not_listed(option: str, value: str, key: str, listed: str) -> str:
    return (f"--{option} {value} is not in `{key}` of params.yaml (listed: {listed}): choose one of those, or add it to "
            f"`{key.split('`')[0]}` to run it.")


# a run that params.yaml does not list: refused before any work (its outputs would be ones no stage declares)
CASES += [
    ("dataset not in datasets", ("train", "--dataset", "nosuch", "--method", "baseline"), lambda: None,
     _not_listed("dataset", "nosuch", "datasets", "demo")),
    ("data stage for a dataset not in datasets", ("data", "--dataset", "cifar10"), lambda: None,
     _not_listed("dataset", "cifar10", "datasets", "demo")),
    ("method not in methods", ("train", "--dataset", "demo", "--method", "mollify", "--seed", "0"), lambda: None,
     _not_listed("method", "mollify", "methods` or `diffaug_methods", "baseline")),
    ("seed not in seeds", (*TRAIN, "--seed", "7"), lambda: None, _not_listed("seed", "7", "seeds", "0")),
    ("seed not in seeds (evaluate)", (*EVALUATE, "--seed", "7"), lambda: None, _not_listed("seed", "7", "seeds", "0")),
    ("method not in methods (summarize)", ("summarize", "--dataset", "demo", "--method", "nfm"), lambda: None,
     _not_listed("method", "nfm", "methods` or `diffaug_methods", "baseline")),
    ("empty params.yaml", TRAIN, lambda: Path("params.yaml").write_text(""),
     "params.yaml is empty: `git checkout -- params.yaml` restores the committed one (or write the sections: datasets, "
     "methods, recipes, corrupt, ...)."),
    ("missing params.yaml", TRAIN, lambda: Path("params.yaml").unlink(),
     "params file params.yaml not found: run from the repository root or pass --params (`git checkout -- params.yaml` "
     "restores the committed one)."),
    ("infinite lr typed into params.yaml", TRAIN,
     lambda: Path("params.yaml").write_text(Path("params.yaml").read_text().replace("lr: 0.1", "lr: .inf")),
     "params.yaml: invalid parameters:\n  - train.lr: must be a finite number, not inf (inf, .inf, 1e400 and nan are "
     "refused for every float key)"),
]


@pytest.mark.parametrize(("stage", "damage", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_file_gets_one_message_and_changes_nothing(workspace, monkeypatch, capsys, stage, damage, message):
    damage()
    before = _snapshot(workspace)
    assert call_stage(*stage, monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}"), err
    assert err.count("error:") == 1 and "Traceback" not in err and err.count("\n") == 1 + message.count("\n")
    assert _snapshot(workspace) == before


def test_unwritable_output_folder_is_refused_before_evaluating(workspace):
    """A folder without write permission, in a fresh process as DVC runs it (as root, in a user
    namespace where the files are ours but the permission bits count)."""
    out = paths.run_dir("demo", "baseline")
    out.chmod(0o555)
    before = _snapshot(workspace)
    command = [sys.executable, "stages/evaluate.py", "--dataset", "demo", "--method", "baseline"]
    if os.geteuid() == 0:
        namespace = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
        if shutil.which("unshare") is None or subprocess.run([*namespace, "true"]).returncode != 0:
            pytest.skip("running as root without user namespaces: permission bits do not apply")
        command = [*namespace, *command]
    result = subprocess.run(command, capture_output=True, text=True)
    out.chmod(0o755)
    assert result.returncode == 2
    assert result.stderr == (f"error: cannot write in {out}: no permission to create files in {out} (Permission denied); "
                             f"fix its permissions (`chmod u+w {out}`) or run where you may write.\n")
    assert _snapshot(workspace) == {**before, str(out): (before[str(out)][0], before[str(out)][1] | 0o200)}
