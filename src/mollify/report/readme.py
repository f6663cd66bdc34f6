"""The README's copy of the results table: the first table of the committed study report
(`results/study/results.md`, what `uv run dvc exp run -S profile=study` made: the 30-epoch
comparison of docs/demo.md), between two markers. After a study run,
`uv run python -m mollify.report.readme --keep-study` copies its report and figures from plots/ to
results/study/ and refreshes the README; without the flag it only refreshes the README.
tests/test_docs.py checks that the copy is the committed study report's."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import typer
import yaml

from mollify import paths
from mollify.cli import run
from mollify.errors import MollifyError
from mollify.io import save_text

RESULTS_START = "<!-- results: start -->"
RESULTS_END = "<!-- results: end -->"
STUDY_DIR = Path("results/study")
STUDY_COMMAND = "uv run dvc exp run -S profile=study"


def results_block(report: str) -> str:
    """The first Markdown table of a report (its consecutive lines that start with '|')."""
    lines = report.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if first is None:
        return ""
    last = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[first:last])


def refresh(readme: Path = Path("README.md"), report: Path = STUDY_DIR / "results.md") -> None:
    text = readme.read_text()
    if RESULTS_START not in text or RESULTS_END not in text:
        raise MollifyError(f"{readme} has no {RESULTS_START} ... {RESULTS_END} block to fill.")
    if not report.is_file():
        raise MollifyError(f"{report} not found: run `{STUDY_COMMAND}`, then `uv run python -m mollify.report.readme "
                           f"--keep-study` to keep its report.")
    start, end = text.index(RESULTS_START) + len(RESULTS_START), text.index(RESULTS_END)
    save_text(readme, f"{text[:start]}\n{results_block(report.read_text())}\n{text[end:]}")


def _differences(profile: dict, params: dict, prefix: str = "") -> list[str]:
    """The keys whose value in `params` is not the profile's (every leaf of the profile compared)."""
    found = []
    for key, value in profile.items():
        name, have = f"{prefix}{key}", params.get(key) if isinstance(params, dict) else None
        if isinstance(value, dict):
            found += _differences(value, have or {}, f"{name}.")
        elif have != value:
            found.append(f"{name} is {have!r}, the study's {value!r}")
    return found


def keep_study(study: Path = STUDY_DIR, params: Path = Path("params.yaml"),
               profile: Path = Path("conf/profile/study.yaml")) -> None:
    """Copy the workspace's report and figures (plots/results.md, plots/figures/) to `study`, headed
    by the command and the commit that made them; refused unless params.yaml holds every setting of
    conf/profile/study.yaml (the outputs are a study run's)."""
    composed = yaml.safe_load(params.read_text()) if params.is_file() else {}
    differences = _differences(yaml.safe_load(profile.read_text()), composed or {})
    if differences:
        raise MollifyError(f"{params} is not the study's ({'; '.join(differences)}): run `{STUDY_COMMAND}` first, "
                           f"then keep its outputs.")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    shutil.rmtree(study / "figures", ignore_errors=True)
    shutil.copytree(paths.figures_dir(), study / "figures")
    save_text(study / "results.md", f"Made by `{STUDY_COMMAND}` at commit {commit or '(not a git checkout)'}.\n\n"
                                    + paths.results_file().read_text())


app = typer.Typer(add_completion=False)


@app.command()
def main(keep_study_outputs: bool = typer.Option(False, "--keep-study", help="first copy a finished study run's "
                                                 "report and figures from plots/ to results/study/")) -> None:
    """Refresh the README's results table from the committed study report."""
    if keep_study_outputs:
        keep_study()
    refresh()


if __name__ == "__main__":
    run(app)
