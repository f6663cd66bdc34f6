"""The published numbers that the paper profiles target (conf/published.csv), and ours beside them.

One row per number: dataset, network, method (our recipe name in the profile that reproduces the
paper's run), metric, value (a fraction, as in our metrics files), seeds (how many runs the
published value averages; empty: the source does not say), source (paper / table / row, or the
repository file it was read from: required) and an optional note (e.g. read off a figure). A row
matches one of our runs when dataset, method and network are equal.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mollify.data.datasets import DATASETS
from mollify.errors import MollifyError

Metric = Literal["clean.err", "clean.acc", "clean.nll", "clean.ece", "corrupted.err", "corrupted.acc", "corrupted.nll", "corrupted.ece"]
PERCENT = ("err", "acc", "ece")  # fractions in the file, shown in percent


class PublishedEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    dataset: str
    network: str = Field(min_length=1)
    method: str = Field(min_length=1)
    metric: Metric
    value: float
    seeds: int | None = Field(None, gt=0)
    source: str = Field(min_length=1, description="paper, table and row, or the repository file: an entry without one is rejected")
    note: str = ""

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; choices: {', '.join(DATASETS)}")
        return name

    @field_validator("seeds", mode="before")
    @classmethod
    def _empty_is_unknown(cls, seeds: Any) -> Any:
        return None if seeds == "" else seeds

    @field_validator("value")
    @classmethod
    def _fraction(cls, value: float, info: Any) -> float:
        metric = info.data.get("metric", "")
        if metric.endswith(PERCENT) and not 0 <= value <= 1:
            raise ValueError(f"{metric} is a fraction in [0, 1] (as in metrics/*.json), got {value}")
        return value


def load_published(path: str | Path) -> list[PublishedEntry]:
    """The entries of a published-numbers CSV (lines starting with # are comments); any bad row
    stops with a message naming its line."""
    path = Path(path)
    if not path.is_file():
        raise MollifyError(f"missing file {path}: the table of published numbers (it may hold only its header).")
    lines = path.read_text().splitlines(keepends=True)
    numbered = [(k + 1, line) for k, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("".join(line for _, line in numbered)))
    entries = []
    for (line_no, _), row in zip(numbered[1:], reader):
        try:
            entries.append(PublishedEntry.model_validate(row))
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'row'}: {err['msg'].removeprefix('Value error, ')}"
                                 for err in e.errors())
            raise MollifyError(f"{path}, line {line_no}: {problems}") from None
    return entries


def _ours(summary: dict[str, Any], metric: str) -> tuple[float | None, str]:
    """Our value of `metric` and the metric it was read from: the ECE variant the paper reports
    (the summary's `paper_ece`) in place of our ECE, where the run computed it."""
    section, key = metric.split(".")
    part = summary.get(section, {})
    variant = summary.get("paper_ece", "ece")
    if key == "ece" and variant in part:
        return part[variant], f"{section}.{variant}"
    return part.get(key), metric


def beside_published(summaries: dict[tuple[str, str], dict[str, Any]], networks: dict[tuple[str, str], str],
                     entries: list[PublishedEntry]) -> list[dict[str, Any]]:
    """For each (dataset, method) run and each entry with the same dataset, method and network:
    our value, the published one and the difference ours - published (None where we lack the metric);
    `compared`: the metric of ours placed beside it (for ECE, the variant the paper reports)."""
    rows = []
    for (dataset, method), summary in summaries.items():
        network = networks[(dataset, method)]
        for entry in entries:
            if (entry.dataset, entry.method, entry.network) == (dataset, method, network):
                ours, compared = _ours(summary, entry.metric)
                rows.append({**entry.model_dump(), "ours": ours, "compared": compared,
                             "difference": None if ours is None else ours - entry.value})
    return rows


def published_table(rows: list[dict[str, Any]], datasets: list[str]) -> str:
    """Markdown: our numbers beside the matching published ones (err, acc, ECE in percent), or a
    sentence saying why there are none."""
    if not rows:
        if set(datasets) == {"demo"}:
            return "The demo dataset has no published numbers: there is nothing to place beside ours.\n"
        return "No entry of conf/published.csv matches these runs (dataset, method and network).\n"
    lines = [
        "| dataset | method | network | metric | ours | ours as | published | ours - published | seeds | source |",
        "|---|---|---|---|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        scale, unit, digits = (100, " %", 2) if r["metric"].endswith(PERCENT) else (1, "", 3)

        def fmt(v: float | None, sign: str = "") -> str:
            return "-" if v is None else f"{scale * v:{sign}.{digits}f}"

        source = r["source"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(f"| {r['dataset']} | {r['method']} | {r['network']} | {r['metric']}{unit} | {fmt(r['ours'])} | {r['compared']} | "
                     f"{fmt(r['value'])} | {fmt(r['difference'], '+')} | {r['seeds'] or 'not stated'} | {source} |")
    return "\n".join(lines) + "\n"
