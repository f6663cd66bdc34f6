"""The README's copy of the results table: the first table of `plots/results.md` (the plot stage's
report), between two markers. `uv run python -m mollify.report.readme` refreshes it after a
`dvc repro`; tests/test_docs.py checks that the copy is the committed report's."""

from __future__ import annotations

from pathlib import Path

from mollify import paths
from mollify.errors import MollifyError
from mollify.io import save_text

RESULTS_START = "<!-- results: start -->"
RESULTS_END = "<!-- results: end -->"


def results_block(report: str) -> str:
    """The first Markdown table of a report (its consecutive lines that start with '|')."""
    lines = report.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if first is None:
        return ""
    last = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[first:last])


def refresh(readme: Path = Path("README.md"), report: Path | None = None) -> None:
    text = readme.read_text()
    if RESULTS_START not in text or RESULTS_END not in text:
        raise MollifyError(f"{readme} has no {RESULTS_START} ... {RESULTS_END} block to fill.")
    start, end = text.index(RESULTS_START) + len(RESULTS_START), text.index(RESULTS_END)
    table = results_block((report or paths.results_file()).read_text())
    save_text(readme, f"{text[:start]}\n{table}\n{text[end:]}")


if __name__ == "__main__":
    refresh()
