"""Bad params through DVC, and a diverging run: each gets its one message, a non-zero exit, and
removes or rewrites none of the outputs an earlier `dvc repro` produced.

One workspace (git + DVC, a one-method pipeline on a few images) is made and reproduced once. Every
bad `-S` override is composed as `dvc exp run` composes it (DVC's `compose_and_dump` with the
workspace's Hydra plugin, all cases in one interpreter) and every bad params.yaml is loaded as the
validate stage loads it; a few representatives of each go through the real `dvc exp run -S ...` or
`dvc repro` in the workspace, whose outputs they must leave as they were (the params file is
restored from git afterwards).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from mollify import grid
from mollify.config import load_params
from mollify.errors import MollifyError
from tests.conftest import ROOT, tiny_params

INVALID = "invalid parameters:\n  - "


def _params() -> dict:
    params = tiny_params(**{
        "methods": ["baseline"], "diffaug_methods": [], "data.demo": {"train_size": 128, "test_size": 16},
        "corrupt.corruptions": ["gaussian_noise", "speckle_noise"], "corrupt.severities": [1], "train.epochs": 1,
        "diffusion.steps": 2, "diffusion.eval_every": 2, "diffusion.eval_images": 8,
    })
    params["evaluate"]["diffaug_ensemble"].update({"corrupted_images": 4, "entropy_step": 500, "entropy_images": 8})
    return params


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=grid.subprocess_env())


def _dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return grid.dvc(*args, cwd=cwd, check=False)


def _git(*args: str, cwd: Path) -> None:
    result = _run("git", "-c", "user.name=t", "-c", "user.email=t@t", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The reproduced workspace. Under pytest-xdist the first worker that needs it builds it once for the
    session (under a file lock, in the workers' common temporary folder) and every worker tests a copy."""
    ws = tmp_path_factory.mktemp("ws")
    if worker_id == "master":  # no xdist: build it in place
        return _reproduce(ws)
    shared = tmp_path_factory.getbasetemp().parent / "bad_inputs_workspace"
    with FileLock(f"{shared}.lock"):
        if not shared.with_suffix(".built").exists():
            _reproduce(shared)
            shared.with_suffix(".built").touch()
    shutil.copytree(shared, ws, symlinks=True, dirs_exist_ok=True)
    return ws


def _reproduce(ws: Path) -> Path:
    """A git + DVC workspace of the tiny one-method pipeline in `ws`, reproduced and committed."""
    ws.mkdir(exist_ok=True)
    for name in ("stages", "src", "conf", "hydra_plugins"):
        shutil.copytree(ROOT / name, ws / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "uv.lock"):
        shutil.copy(ROOT / name, ws / name)
    params = _params()
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    # `dvc exp run` composes params.yaml from conf/: the same tiny params
    (ws / "conf/config.yaml").write_text(yaml.safe_dump({"defaults": ["_self_", {"profile": None}], **params}))
    _git("init", "-q", cwd=ws)
    for args in (("init", "-q"), ("config", "core.analytics", "false"), ("config", "hydra.enabled", "true"), ("repro",)):
        if args == ("repro",):  # DVCLive reads the HEAD revision: a repository with a commit, as a clone
            _git("add", "-A", cwd=ws)
            _git("commit", "-qm", "pipeline", cwd=ws)
        result = _dvc(*args, cwd=ws)
        assert result.returncode == 0, f"dvc {args}:\n{result.stdout}\n{result.stderr}"
    shutil.copytree(ROOT / ".dvc/plots", ws / ".dvc/plots", dirs_exist_ok=True)  # the templates of dvc.yaml's plots
    _git("add", "-A", cwd=ws)
    _git("commit", "-qm", "reproduced", cwd=ws)
    return ws


def _outputs(ws: Path) -> dict[str, tuple[int, int]]:
    """Every file the pipeline made (and dvc.lock), with size and modification time."""
    files = [p for d in ("data", "metrics", "plots") for p in (ws / d).rglob("*") if p.is_file()] + [ws / "dvc.lock"]
    return {str(p.relative_to(ws)): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


def _set(params: dict, key: str, value: object) -> dict:
    *parents, leaf = key.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[leaf] = value
    return params


def _rename(params: dict, key: str, new_leaf: str) -> dict:
    *parents, leaf = key.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[new_leaf] = node.pop(leaf)
    return params


def _unknown(key: str, meant: str) -> str:
    return f"{key}: unknown key (did you mean '{meant}'?); remove it or fix its spelling\n"


NESTEROV = "train.nesterov: Input should be a valid boolean, unable to interpret input (got 'maybe')\n"
DEVICE = "device: Input should be 'auto', 'cpu' or 'cuda' (got 'cdua')\n"
NO_METHODS = "methods: List should have at least 1 item after validation, not 0 (got [])\n"
DATASET = ("datasets: unknown dataset 'cifar11'. Did you mean 'cifar10'? Choices: cifar10, cifar100, demo, "
           "tinyimagenet (got ['cifar11'])\n")
NOT_AN_INT = "Input should be a valid integer, unable to parse string as an integer"


def _not_finite(key: str, value: str) -> str:
    return f"{key}: must be a finite number, not {value} (inf, .inf, 1e400 and nan are refused for every float key)\n"


def _twice(key: str, what: str, name: str) -> str:
    return (f"{key}: {key} lists {what} {name} more than once: each {what} names one set of stage runs, list each once "
            f"(got [{name!r}, {name!r}])\n")

# `-S` overrides (dvc exp run): the composed params are validated by hydra_plugins/mollify_overrides.py
# before DVC writes params.yaml or touches any output
SET = "params.yaml as composed by dvc exp run: " + INVALID
SET_CASES = [
    ("train.epoch=3", _unknown("train.epoch", "train.epochs")),
    ("sed=1", _unknown("sed", "seed")),
    ("recipes.baseline.augmnt=[flip]", _unknown("recipes.baseline.augmnt", "recipes.baseline.augment")),
    ("evaluate.diffaug_ensemble.stp=50", _unknown("evaluate.diffaug_ensemble.stp", "evaluate.diffaug_ensemble.step")),
    ("train.nesterov=maybe", NESTEROV),
    ("device=cdua", DEVICE),
    ("methods=[]", NO_METHODS),
    ("methods=[basline]", "unknown method 'basline'. Did you mean 'baseline'? Methods are the keys of `recipes` in "
                          "params.yaml: baseline, diffaug, diffaug_trivaug, fcr, fcr_mollify, mollify, nfm, smooth, "
                          "smooth_mcdo, softaug, trivaug, trivaug_mollify\n"),
    ("train.lr=-0.1", "train.lr: Input should be greater than 0 (got -0.1)\n"),
    ("train.epochs=many", f"train.epochs: {NOT_AN_INT} (got 'many')\n"),
    ("train.model=resnet19", "train.model: unknown model 'resnet19'. Did you mean 'resnet18'? Choices: preact_resnet18, "
                             "preact_resnet18_nfm, preact_resnet50, preact_wide_resnet18_nfm, resnet18, small_resnet, "
                             "wrn28_10 (got 'resnet19')\n"),
    ("datasets=[cifar11]", DATASET),
    ("data.demo.design=cifar", "data.demo.design: Input should be 'cifar_like' or 'quick' (got 'cifar')\n"),
    ("corrupt.severities=[0]", "corrupt.severities.0: Input should be greater than or equal to 1 (got 0)\n"),
    ("diffaug_methods=[baseline]", "method 'baseline' in `diffaug_methods` does not use DiffAug: move it to `methods`\n"),
    ("recipes.baseline.augment=[mixup,cutmix]", "recipes.baseline.augment: mixup and cutmix exclude each other "
                                                "(one batch-level mix per recipe) (got ['mixup', 'cutmix'])\n"),
    ("train.lr=inf", _not_finite("train.lr", "inf")),
    ("train.lr=1e400", _not_finite("train.lr", "inf")),
    ("recipes.mollify.mollify.alpha=nan", _not_finite("recipes.mollify.mollify.alpha", "nan")),
    ("methods=[baseline,baseline]", _twice("methods", "method", "baseline")),
    ("datasets=[demo,demo]", _twice("datasets", "dataset", "demo")),
]

# params.yaml edited by hand, then `dvc repro`: the validate stage, first in the DAG
EDIT = "params.yaml: " + INVALID
EDIT_CASES = [
    ("unknown top-level key", lambda p: {**p, "sed": 1}, _unknown("sed", "seed")),
    ("device: cdua", lambda p: _set(p, "device", "cdua"), DEVICE),
    ("train.epochs misspelled", lambda p: _rename(p, "train.epochs", "epoch"), _unknown("train.epoch", "train.epochs")),
    ("recipe key misspelled", lambda p: _set(p, "recipes.mollify.mollify", {"alpah": 1}),
     _unknown("recipes.mollify.mollify.alpah", "recipes.mollify.mollify.alpha")),
    ("methods: []", lambda p: _set(p, "methods", []), NO_METHODS),
    ("datasets: [cifar11]", lambda p: _set(p, "datasets", ["cifar11"]), DATASET),
    ("official corrupted set of the demo", lambda p: _set(p, "corrupt.source", "official"),
     "corrupt.source=official: the demo dataset has no official corrupted set; use corrupt.source=generate\n"),
    ("evaluate.ece_bins: 0", lambda p: _set(p, "evaluate.ece_bins", 0), "evaluate.ece_bins: Input should be greater than 0 (got 0)\n"),
    ("train.batch_size: 128x", lambda p: _set(p, "train.batch_size", "128x"), f"train.batch_size: {NOT_AN_INT} (got '128x')\n"),
    ("train.lr: .inf", lambda p: _set(p, "train.lr", float("inf")), _not_finite("train.lr", "inf")),
    ("train.lr: 1e400", lambda p: _set(p, "train.lr", "1e400"), _not_finite("train.lr", "'1e400'")),
    ("evaluate.certify.sigmas: [.nan]", lambda p: _set(p, "evaluate.certify.sigmas", [float("nan")]),
     _not_finite("evaluate.certify.sigmas.0", "nan")),
    ("methods: [baseline, baseline]", lambda p: _set(p, "methods", ["baseline", "baseline"]), _twice("methods", "method", "baseline")),
]


# the cases that also run through DVC itself: an unknown key, a key dropped from dvc.yaml's foreach
# (`datasets`: `dvc exp run` would remove data@demo's outputs before any stage runs), a value check
SET_THROUGH_DVC = ["train.epoch=3", "datasets=[cifar11]", "train.lr=inf"]
EDIT_THROUGH_DVC = ["unknown top-level key", "official corrupted set of the demo", "train.lr: .inf"]

_COMPOSE = """
import json, sys
from dvc.exceptions import InvalidArgumentError
from dvc.utils.hydra import compose_and_dump

messages = {}
for override in json.loads(sys.argv[1]):
    try:
        compose_and_dump("composed.yaml", sys.argv[2] + "/conf", None, "config", sys.argv[2], [override])
        messages[override] = None
    except InvalidArgumentError as e:
        messages[override] = str(e)
print(json.dumps(messages))
"""


@pytest.fixture(scope="module")
def composed(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """Each SET case's override composed as `dvc exp run -S` composes it: DVC's error text, or None."""
    overrides = [override for override, _ in SET_CASES]
    result = _run(sys.executable, "-c", _COMPOSE, json.dumps(overrides), str(workspace),
                  cwd=tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _assert_refused(result: subprocess.CompletedProcess, message: str, before: dict, ws: Path) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output, output
    assert "Traceback" not in output and "unexpected error" not in output, output
    assert _outputs(ws) == before, "an earlier output was removed or rewritten"


@pytest.mark.parametrize(("override", "message"), SET_CASES, ids=[c[0] for c in SET_CASES])
def test_bad_set_param_is_refused_as_composed(composed, override, message):
    assert composed[override] is not None and SET + message in f"{composed[override]}\n", composed[override]


@pytest.mark.parametrize(("override", "message"), [c for c in SET_CASES if c[0] in SET_THROUGH_DVC],
                         ids=[c[0] for c in SET_CASES if c[0] in SET_THROUGH_DVC])
def test_bad_set_param_is_refused(workspace, override, message):
    before = _outputs(workspace)
    result = _dvc("exp", "run", "-S", override, cwd=workspace)
    _git("checkout", "--", "params.yaml", cwd=workspace)
    _assert_refused(result, SET + message, before, workspace)


@pytest.mark.parametrize(("override", "message"), [SET_CASES[0], SET_CASES[4]], ids=["train.epoch=3", "train.nesterov=maybe"])
def test_bad_set_param_is_refused_when_queued(workspace, override, message):
    before = _outputs(workspace)
    result = _dvc("exp", "run", "--queue", "-S", override, cwd=workspace)
    _assert_refused(result, SET + message, before, workspace)
    assert "Queued" not in _dvc("queue", "status", cwd=workspace).stdout


@pytest.mark.parametrize(("edit", "message"), [c[1:] for c in EDIT_CASES], ids=[c[0] for c in EDIT_CASES])
def test_bad_params_file_is_refused_as_validate_loads_it(tmp_path, monkeypatch, edit, message):
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump(edit(_params())))
    with pytest.raises(MollifyError) as refused:
        load_params("params.yaml")
    assert EDIT + message in f"{refused.value}\n", refused.value


@pytest.mark.parametrize(("edit", "message"), [c[1:] for c in EDIT_CASES if c[0] in EDIT_THROUGH_DVC],
                         ids=[c[0] for c in EDIT_CASES if c[0] in EDIT_THROUGH_DVC])
def test_bad_params_file_is_refused(workspace, edit, message):
    before = _outputs(workspace)
    params_file = workspace / "params.yaml"
    params_file.write_text(yaml.safe_dump(edit(yaml.safe_load(params_file.read_text()))))
    result = _dvc("repro", cwd=workspace)
    _git("checkout", "--", "params.yaml", cwd=workspace)
    _assert_refused(result, EDIT + message, before, workspace)


def test_diverging_experiment_saves_no_model_or_metrics(workspace):
    before = _outputs(workspace)
    result = _dvc("exp", "run", "--temp", "-S", "train.lr=1e8", cwd=workspace)
    pattern = (r"error: training diverged at step \d+: loss \S+ is (not finite|above the divergence "
               r"bound 230\.3) \(learning rate \S+\); nothing was saved\. Lower train\.lr \(now 1e\+08\) or raise "
               r"train\.warmup_epochs\.")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and re.search(pattern, output), output
    assert "DVC removed the previous outputs" not in output  # the temporary copy's: nothing to get back
    assert _outputs(workspace) == before
    assert _dvc("exp", "list", "--all-commits", "--name-only", cwd=workspace).stdout.strip() == ""  # no experiment saved


def test_valid_edit_reruns_only_validate(workspace):
    """An edit that changes no stage's resolved settings (here a comment) re-runs validate alone,
    which rewrites none of them."""
    before = _outputs(workspace)
    params_file = workspace / "params.yaml"
    params_file.write_text("# a comment\n" + params_file.read_text())
    result = _dvc("repro", cwd=workspace)
    after = _outputs(workspace)
    _git("checkout", "--", "params.yaml", "dvc.lock", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert re.findall(r"Running stage '([^']+)'", result.stdout) == ["validate"]
    assert (workspace / "data/settings/train/demo-baseline-0.json").is_file()
    changed = {path for path in before if after.get(path) != before[path]}
    assert changed == {"dvc.lock"}


def test_missing_profile_is_named_with_its_options(workspace):
    before = _outputs(workspace)
    result = _dvc("exp", "run", "-S", "profile=nosuch", cwd=workspace)
    _git("checkout", "--", "params.yaml", cwd=workspace)
    _assert_refused(result, "params.yaml as composed by dvc exp run: conf/profile/ has no nosuch.yaml, so `-S profile=nosuch` "
                            "names nothing. Options of profile: nfm, paper, smoothing, softaug, study (conf/profile/<option>.yaml); "
                            "fix the spelling or add conf/profile/nosuch.yaml.", before, workspace)


@pytest.mark.parametrize("damage", ["empty", "missing"])
def test_empty_or_missing_params_file_removes_nothing_and_validate_names_it(workspace, damage):
    """DVC parses dvc.yaml (its `foreach: ${datasets}`) before any stage runs, so `dvc repro`'s own
    message stays; it removes nothing, and the validate stage, the documented first command, names
    the file and the fix."""
    before = _outputs(workspace)
    params_file = workspace / "params.yaml"
    params_file.write_text("") if damage == "empty" else params_file.unlink()
    repro = _dvc("repro", cwd=workspace)
    validate = _run(sys.executable, "stages/validate.py", cwd=workspace)
    _git("checkout", "--", "params.yaml", cwd=workspace)
    assert repro.returncode != 0 and "Could not find 'datasets'" in repro.stderr, repro.stdout + repro.stderr
    assert validate.returncode == 2
    assert validate.stderr == {
        "empty": "error: params.yaml is empty: `git checkout -- params.yaml` restores the committed one (or write the "
                 "sections: datasets, methods, recipes, corrupt, ...).\n",
        "missing": "error: params file params.yaml not found: run from the repository root or pass --params "
                   "(`git checkout -- params.yaml` restores the committed one).\n"}[damage]
    assert _outputs(workspace) == before


def _contents(ws: Path) -> dict[str, str]:
    """Every file the pipeline made (and dvc.lock, params.yaml), by content."""
    files = [p for d in ("data", "metrics", "plots") for p in (ws / d).rglob("*") if p.is_file()]
    return {str(p.relative_to(ws)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files + [ws / "dvc.lock", ws / "params.yaml"]}


def test_failed_experiment_in_the_workspace_says_how_to_get_the_results_back(workspace):
    """`dvc exp run` in the workspace removes a stage's outputs before running it; the failed stage
    says how to get them back, and what it says brings back every earlier output byte for byte."""
    before = _contents(workspace)
    result = _dvc("exp", "run", "-S", "train.lr=1e8", cwd=workspace)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "error: training diverged at step" in output, output
    assert ("DVC removed the previous outputs of stage train@demo-baseline-0 before running it: `git checkout -- . && "
            "uv run dvc checkout` brings back the last committed results (`git stash` first keeps your uncommitted "
            "edits). To try a variant without touching the workspace, run it with `uv run dvc exp run --temp -S ...` "
            "(or `--queue`, then `uv run dvc queue start`).") in " ".join(output.split()), output
    assert not (workspace / "data/demo/models/baseline/seed0.pt").exists()  # what the hint is for
    _git("checkout", "--", ".", cwd=workspace)
    restored = _dvc("checkout", cwd=workspace)
    assert restored.returncode == 0, restored.stderr
    assert _contents(workspace) == before


def test_plots_diff_loads_an_experiment_with_evaluations_off(workspace):
    """The workspace ran every other evaluation; an experiment with some switched off writes their
    comparison CSVs with the header alone and draws none of their figures (declared as a folder):
    `dvc plots diff` loads both revisions."""
    before = _outputs(workspace)
    off = ["evaluate.occlusion.enabled=false", "evaluate.crop.enabled=false", "evaluate.certify.enabled=false"]
    ran = _dvc("exp", "run", "--temp", "-n", "evals-off", *(arg for o in off for arg in ("-S", o)), cwd=workspace)
    diff = _dvc("plots", "diff", "evals-off", cwd=workspace)
    refs = _run("git", "for-each-ref", "--format=%(refname)", "refs/exps", cwd=workspace).stdout.split()
    exp = next((ref for ref in refs if ref.endswith("/evals-off")), "no experiment")
    occlusion = _run("git", "show", f"{exp}:plots/compare/occlusion.csv", cwd=workspace)
    figures = _run("git", "ls-tree", "--name-only", f"{exp}:plots/figures", cwd=workspace)
    _dvc("exp", "remove", "evals-off", cwd=workspace)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert occlusion.stdout == "dataset,method,evaluation,level,visible,acc,nll,ece\n", occlusion.stdout + occlusion.stderr
    assert "occlusion_accuracy.png" not in figures.stdout and "training.png" in figures.stdout, figures.stdout + figures.stderr
    assert (workspace / "plots/figures/occlusion_accuracy.png").is_file()  # the workspace ran it
    assert diff.returncode == 0 and "failed to load" not in diff.stdout + diff.stderr, diff.stdout + diff.stderr
    assert _outputs(workspace) == before
