"""Commands of the catalogue that are not a bad params value or a damaged file: `--help`, a fresh
clone's plots page, the grid plan's files, a results table with nothing to compare, and a download
cut mid-file. Each works, or says what is wrong; none loses what an earlier run made."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys

import pytest
import typer
import yaml

from mollify import paths
from mollify.cli import RECOVERY, run
from mollify.data import DATASETS
from mollify.data.download import md5sum
from mollify.errors import MollifyError
from mollify.evaluation.summary import mean_over_seeds
from mollify.report.page import offline_page
from mollify.report.verdicts import findings_table
from tests.conftest import ROOT, call_stage, tiny_params
from tests.data.archives import cifar_archive
from tests.data.loopback import serve


def _help(stage: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"stages/{stage}.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                          env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"})


def _text(result: subprocess.CompletedProcess) -> str:
    """The help text with the box drawing and the line wrapping taken out."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stdout).split())


def test_help_prints_no_stage_time_and_says_what_dataset_means():
    data, train = _help("data"), _help("train")
    assert data.returncode == 0 and train.returncode == 0, data.stderr + train.stderr
    assert "stage time" not in data.stderr + train.stderr
    assert ("--dataset <str> the dataset to make, an item of `datasets` in params.yaml: demo (generated), cifar10, "
            "cifar100 or tinyimagenet (downloaded) [required]") in _text(data)
    assert "made by the data stage" not in _text(data)
    assert "--seed <int range> [x>=0] training seed of the run (an item of `seeds` in params.yaml) [default: 0]" in _text(train)
    assert ("--method <str> a recipe name listed in `methods` or `diffaug_methods` of params.yaml [required]"
            in _text(train))


def test_plots_page_is_in_git_so_a_fresh_clone_has_it():
    """`dvc plots show` on a fresh clone reads plots.html_template of .dvc/config before any `dvc repro`."""
    assert "html_template = ../plots/offline_page.html" in (ROOT / ".dvc/config").read_text()
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "plots/offline_page.html"], cwd=ROOT, capture_output=True)
    assert tracked.returncode == 0, tracked.stderr
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["plots_page"]
    assert stage["outs"] == [{"plots/offline_page.html": {"cache": False}}]
    page = (ROOT / "plots/offline_page.html").read_text()
    assert page == offline_page() and "{plot_divs}" in page


def test_grid_plan_step_times_are_git_ignored():
    """`stages/grid.py plan` writes its measured step times; git does not list them as untracked."""
    assert 'Path("benchmarks/step_times.json")' in (ROOT / "stages/grid.py").read_text()  # plan's default
    ignored = subprocess.run(["git", "check-ignore", "benchmarks/step_times.json"], cwd=ROOT, capture_output=True, text=True)
    assert ignored.returncode == 0 and ignored.stdout == "benchmarks/step_times.json\n"


def test_no_verdict_to_give_is_a_sentence():
    run = {"clean": {"err": 0.1, "nll": 0.3, "ece": 0.02}, "corrupted": {"mce": 0.5, "nll": 1.0, "ece": 0.1}}
    summaries = {("demo", "baseline"): mean_over_seeds([run], [0])}
    assert findings_table(summaries, [], {}) == (
        "No method with a paper claim (mollify, diffaug, smoothing, nfm, softaug) is listed beside its `control` in "
        "`methods` or `diffaug_methods`: there is no verdict to give.\n")


def test_data_stage_resumes_a_download_cut_at_half(tmp_path, monkeypatch, caplog, capsys):
    """The data stage's download breaks off at 50 %: one message, the bytes kept; the next run
    resumes at them (its log says so) and the md5 of the whole file matches."""
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "cifar-10-python.tar.gz"
    cifar_archive(archive, 10)
    monkeypatch.setitem(DATASETS, "cifar10", dataclasses.replace(DATASETS["cifar10"], md5=md5sum(archive)))
    size, half = archive.stat().st_size, archive.stat().st_size // 2
    workspace = tmp_path / "ws"
    shutil.copytree(ROOT / "stages", workspace / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(workspace)
    requests: list[tuple[str, str | None]] = []
    with serve(served, requests) as url:
        params = tiny_params(**{"datasets": ["cifar10"], "corrupt.source": "generate", "data.download_dir": "downloads",
                                "data.mirror": f"{url}/cut"})
        (workspace / "params.yaml").write_text(yaml.safe_dump(params))
        assert call_stage("data", "--dataset", "cifar10", monkeypatch=monkeypatch) == 2
        err = capsys.readouterr().err
        assert err == (f"error: download of {url}/cut/{archive.name} is truncated: {half} of {size} bytes; run again: it "
                       f"resumes from downloads/{archive.name}.partial.\n")
        assert sorted(p.name for p in (workspace / "downloads").iterdir()) == [f"{archive.name}.partial"]
        assert (workspace / "downloads" / f"{archive.name}.partial").stat().st_size == half
        with caplog.at_level("INFO", logger="mollify"):
            assert call_stage("data", "--dataset", "cifar10", monkeypatch=monkeypatch) == 0
    assert f"{archive.name}: resuming at {half} bytes (downloads/{archive.name}.partial)" in caplog.messages
    assert requests[-1] == (f"/cut/{archive.name}", f"bytes={half}-")
    assert md5sum(workspace / "downloads" / archive.name) == md5sum(archive)
    assert (paths.clean_dir("cifar10") / "train_x.npy").is_file()


def _failing_app(error: Exception) -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.command()
    def main() -> None:
        raise error

    return app


@pytest.mark.parametrize(("stage", "cwd", "shown"), [
    ("train@demo-baseline-0", "repo", True),
    ("validate", "repo", False),  # its outputs persist: nothing was removed
    ("train@demo-baseline-0", "repo/.dvc/tmp/exps/standalone/tmpab12", False),  # `dvc exp run --temp` / a queued run's copy
    (None, "repo", False),  # not under DVC
])
def test_a_failed_stage_under_dvc_says_how_to_get_the_results_back(tmp_path, monkeypatch, capsys, stage, cwd, shown):
    (tmp_path / cwd).mkdir(parents=True)
    monkeypatch.chdir(tmp_path / cwd)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path / "repo"))
    monkeypatch.setenv("DVC_STAGE", stage) if stage else monkeypatch.delenv("DVC_STAGE", raising=False)
    monkeypatch.setattr(sys, "argv", ["stages/train.py"])
    hint = RECOVERY.format(stage=stage).lstrip("\n")
    with pytest.raises(SystemExit) as done:
        run(_failing_app(MollifyError("training diverged")))
    assert done.value.code == 2
    assert capsys.readouterr().err == "error: training diverged\n" + (hint + "\n" if shown else "")
    if shown:  # any other failure: the traceback, then the same lines
        with pytest.raises(SystemExit) as done:
            run(_failing_app(RuntimeError("CUDA out of memory")))
        err = capsys.readouterr().err
        assert done.value.code == 1 and "RuntimeError: CUDA out of memory\n" in err and err.endswith(hint + "\n")


def test_diffusion_stage_logs_where_its_time_goes(tmp_path, monkeypatch, caplog):
    shutil.copytree(ROOT / "stages", tmp_path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    params = tiny_params(**{"methods": ["baseline"], "data.demo": {"train_size": 64, "test_size": 16}, "diffusion.steps": 2,
                            "diffusion.eval_every": 2, "diffusion.eval_images": 8})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert call_stage("data", "--dataset", "demo", monkeypatch=monkeypatch) == 0
    with caplog.at_level("INFO", logger="mollify"):
        assert call_stage("diffusion", "--dataset", "demo", monkeypatch=monkeypatch) == 0
    parts = [m for m in caplog.messages if m.startswith("diffusion demo parts: ")]
    assert len(parts) == 1, caplog.messages
    assert re.fullmatch(r"diffusion demo parts: data \S+ s, model set-up \S+ s, training steps \S+ s, held-out MSE and "
                        r"checkpoints \S+ s, saving the pipeline \S+ s, denoising MSE vs t \S+ s, DiffAug examples \S+ s",
                        parts[0]), parts[0]
