"""Where the wall time of a `dvc repro` goes, from its log: every stage CLI ends with a line
`stage time: <stage and args>: <s> s (start-up and imports <s> s)` and each evaluation with
`evaluate <run> parts: clean <s> s, corrupted <s> s, ...` (mollify.cli.run, mollify.experiment).

    uv run dvc repro 2>&1 | tee repro.log
    uv run python benchmarks/stage_times.py repro.log

prints a markdown table: per stage, its wall time and start-up part; the evaluation parts summed
over runs; and the totals by kind of stage.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import typer

STAGE = re.compile(r"stage time: (\S+)(.*?): ([\d.]+) s \(start-up and imports ([\d.]+) s\)")
PARTS = re.compile(r"evaluate (\S+) parts: (.*)")


def parse(text: str) -> tuple[list[tuple[str, float, float]], dict[str, float]]:
    """(stage with its arguments, wall s, start-up s) per stage, and the evaluation parts summed over runs."""
    stages = [(f"{m[1]}{m[2]}".replace(" --dataset", "").replace(" --method", "").replace(" --seed", " seed"),
               float(m[3]), float(m[4])) for m in STAGE.finditer(text)]
    parts: dict[str, float] = defaultdict(float)
    for m in PARTS.finditer(text):
        for item in m[2].split(", "):
            name, seconds = item.rsplit(" ", 2)[0], float(item.rsplit(" ", 2)[1])
            parts[name] += seconds
    return stages, dict(parts)


def main(log: Path) -> None:
    """Print the time table of a `dvc repro` log."""
    stages, parts = parse(log.read_text())
    typer.echo("| stage | wall s | start-up and imports s |\n|---|---:|---:|")
    for name, wall, start_up in stages:
        typer.echo(f"| {name} | {wall:.1f} | {start_up:.1f} |")
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for name, wall, start_up in stages:
        kind = by_kind[name.split()[0]]
        kind[0], kind[1], kind[2] = kind[0] + wall, kind[1] + start_up, kind[2] + 1
    typer.echo("\n| kind | stages | wall s | of which start-up s |\n|---|---:|---:|---:|")
    for kind, (wall, start_up, count) in by_kind.items():
        typer.echo(f"| {kind} | {count} | {wall:.1f} | {start_up:.1f} |")
    total = sum(w for _, w, _ in stages)
    typer.echo(f"| all | {len(stages)} | {total:.1f} | {sum(s for _, _, s in stages):.1f} |")
    if parts:
        typer.echo("\n| evaluation part (all runs) | s |\n|---|---:|")
        for name, seconds in parts.items():
            typer.echo(f"| {name} | {seconds:.1f} |")


if __name__ == "__main__":
    typer.run(main)
