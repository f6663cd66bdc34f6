"""The README's results table and the kept study report (mollify.report.readme)."""

from pathlib import Path

import pytest
import yaml

from mollify import paths
from mollify.errors import MollifyError
from mollify.report.readme import RESULTS_END, RESULTS_START, keep_study, refresh, results_block

STUDY = {"seeds": [0, 1, 2], "train": {"epochs": 30}, "data": {"demo": {"train_size": 8000}}}
REPORT = "# Results\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nMachines: AMD EPYC\n\n| verdicts |\n|---|\n"


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _workspace(params: dict) -> None:
    Path("conf/profile").mkdir(parents=True)
    Path("conf/profile/study.yaml").write_text("# @package _global_\n" + yaml.safe_dump(STUDY))
    Path("params.yaml").write_text(yaml.safe_dump(params))
    paths.figures_dir().mkdir(parents=True)
    (paths.figures_dir() / "training.png").write_bytes(b"png")
    paths.results_file().write_text(REPORT)


def test_results_block_is_the_first_table():
    assert results_block(REPORT) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert results_block("no table") == ""


def test_a_study_run_is_kept_with_its_command_and_the_readme_shows_its_first_table(here):
    _workspace({**STUDY, "train": {"epochs": 30, "lr": 0.1}, "methods": ["baseline"]})
    keep_study()
    kept = Path("results/study/results.md").read_text()
    assert kept.startswith("Made by `uv run dvc exp run -S profile=study` at commit ") and kept.endswith(REPORT)
    assert Path("results/study/figures/training.png").read_bytes() == b"png"
    Path("README.md").write_text(f"intro\n{RESULTS_START}\nold\n{RESULTS_END}\nrest\n")
    refresh()
    assert Path("README.md").read_text() == f"intro\n{RESULTS_START}\n| a | b |\n|---|---|\n| 1 | 2 |\n{RESULTS_END}\nrest\n"


def test_outputs_of_other_params_are_not_kept_as_the_study(here):
    _workspace({**STUDY, "train": {"epochs": 8}})
    with pytest.raises(MollifyError, match=r"params.yaml is not the study's \(train.epochs is 8, the study's 30\): "
                                           r"run `uv run dvc exp run -S profile=study` first"):
        keep_study()
    assert not Path("results/study").exists()


def test_refresh_without_a_kept_study_says_how_to_make_one(here):
    Path("README.md").write_text(f"{RESULTS_START}\n{RESULTS_END}\n")
    with pytest.raises(MollifyError, match=r"results/study/results.md not found: run `uv run dvc exp run -S "
                                           r"profile=study`, then `uv run python -m mollify.report.readme --keep-study`"):
        refresh()
