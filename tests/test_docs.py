"""README.md and docs/ say only what holds: every relative link and named file exists, every Python
example runs, every shell command is run by a test (named here) or says what it needs that CI lacks,
the README's results table is the committed study report's, and its comparison commands work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mollify import grid
from mollify.report.readme import RESULTS_END, RESULTS_START, STUDY_DIR, results_block
from tests.conftest import ROOT
from tests.test_bad_inputs import workspace  # noqa: F401 (the reproduced workspace fixture)

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# a path of the repository named in backticks (placeholders such as <dataset>, {a,b} or * are not checked)
PATH = re.compile(r"`((?:src|stages|tests|benchmarks|conf|docs|hydra_plugins|plots|metrics|results)/[\w./-]+|"
                  r"[\w-]+\.(?:yaml|toml|lock|md))`")
# files that a command writes, named where the docs say so: what writes them
WRITTEN = {"benchmarks/step_times.json": "stages/grid.py plan on a device", "plots/offline_page.html": "the plots_page stage"}
# commands of the ```bash blocks that CI cannot run say why, in their comment
NEEDS = re.compile(r"#.*\b(GPU|network|SLURM|hours|not in CI)\b")
# every other command is run by a test: (pattern, the test that runs it)
RUN_BY = [
    (r"uv run dvc repro", "tests/test_pipeline.py::test_dvc_repro_end_to_end"),
    (r"uv run pytest", ".ci/run"),
    (r"uv run python -m mollify\.report\.readme( --keep-study)?",
     "tests/report/test_readme.py::test_a_study_run_is_kept_with_its_command_and_the_readme_shows_its_first_table"),
    (r"uv run dvc exp run -S profile=(paper|nfm|softaug|smoothing)\b.*", "tests/test_profile_runs.py::test_profile_runs_end_to_end"),
    (r"uv run dvc exp run( -S \S+)+", "tests/test_bad_inputs.py::test_bad_set_param_is_refused"),
    (r"uv run dvc (metrics show|metrics diff|plots diff)\b.*", "tests/test_docs.py::test_the_readme_comparison_commands_run"),
    (r"uv run python stages/grid.py plan .*", "tests/test_grid.py::test_plan_counts_done_runs_and_hours_of_the_rest"),
    (r"uv run python stages/grid.py (local|collect)\b.*", "tests/test_grid_runs.py::test_two_local_workers_give_the_metrics_of_a_sequential_repro"),
    (r"uv run torchrun .*stages/train.py.*", "tests/training/test_distributed.py::test_ddp_takes_the_steps_of_one_process_with_the_same_global_batch"),
    (r"uv run python benchmarks/gpu_check.py --device cpu --tiny .*", "tests/test_gpu_check.py::test_every_method_trains_with_a_finite_falling_loss"),
]


def _blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_and_named_file_exists(page):
    text = page.read_text()
    missing = [link for link in LINK.findall(text) if "://" not in link and not (page.parent / link).exists()]
    missing += [path for path in PATH.findall(text) if not re.search(r"[<>{}*]", path) and path not in WRITTEN and not (ROOT / path).exists()]
    assert not missing, f"{page.relative_to(ROOT)} names what does not exist: {missing}"


def test_every_shell_command_is_run_by_a_test_or_says_what_it_needs():
    unchecked = []
    for page in PAGES:
        for block in _blocks(page, "bash"):
            for line in filter(None, (raw.strip() for raw in block.splitlines())):
                command = line.split("  #")[0].strip()
                covered = [test for pattern, test in RUN_BY if re.fullmatch(pattern, command)]
                if not covered and not NEEDS.search(line):
                    unchecked.append(f"{page.name}: {line}")
                for test in covered[:1]:
                    path, _, function = test.partition("::")
                    assert (ROOT / path).is_file() and (not function or f"def {function}(" in (ROOT / path).read_text()), test
    assert not unchecked, "commands no test runs (add the test to RUN_BY, or say what they need):\n" + "\n".join(unchecked)


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "python")], ids=lambda p: p.name)
def test_every_python_example_runs(page, tmp_path):
    code = "\n".join(_blocks(page, "python"))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_readme_results_table_is_the_committed_study_report():
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(RESULTS_START) + len(RESULTS_START), readme.index(RESULTS_END)
    assert readme[start:end].strip() == results_block((ROOT / STUDY_DIR / "results.md").read_text()).strip(), \
        "refresh it with `uv run python -m mollify.report.readme`"


def test_the_readme_comparison_commands_run(workspace):  # noqa: F811
    readme = (ROOT / "README.md").read_text()
    commands = [line.split("  #")[0].strip() for block in _blocks(ROOT / "README.md", "bash") for line in block.splitlines()
                if re.match(r"uv run dvc (metrics show|metrics diff|plots diff)", line.strip())]
    assert len(commands) == 3, readme
    for command in commands:
        shell_command = command.replace("<experiment>", "HEAD").removeprefix("uv run ")  # this environment's dvc
        result = subprocess.run(shell_command, shell=True, cwd=workspace, capture_output=True, text=True,
                                env=grid.subprocess_env())
        assert result.returncode == 0 and "ERROR" not in result.stderr, f"{command}:\n{result.stdout}{result.stderr}"
