"""Figures of the benchmark (PNG, matplotlib) from the per-method plot data of the evaluate stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mollify.io import atomic_path  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def _by(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return groups


def error_vs_severity(rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per dataset: error against severity (0 = clean), a line per method."""
    datasets = _by(rows, "dataset")
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6), squeeze=False)
    for ax, (dataset, drows) in zip(axes[0], datasets.items()):
        for method, mrows in _by(drows, "method").items():
            ax.plot([r["severity"] for r in mrows], [100 * r["err"] for r in mrows], marker="o", label=method)
        ax.set(title=dataset, xlabel="severity (0 = clean)", ylabel="error (%)", xticks=range(6))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)


def reliability_diagram(rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy against confidence per bin on the clean test set, a line per (dataset, method)."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for (dataset, method), brows in _by([{**r, "key": (r["dataset"], r["method"])} for r in rows], "key").items():
        used = [r for r in brows if r["count"] > 0]
        ax.plot([r["confidence"] for r in used], [r["accuracy"] for r in used], marker="o", markersize=3, label=f"{dataset}/{method}")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="reliability (clean)")
    ax.legend(fontsize=8)
    _save(fig, path)


def corruption_errors(rows: list[dict[str, Any]], path: Path) -> None:
    """Mean error over severities per corruption: grouped bars, one colour per method."""
    datasets = _by(rows, "dataset")
    fig, axes = plt.subplots(len(datasets), 1, figsize=(10, 3.4 * len(datasets)), squeeze=False)
    for ax, (dataset, drows) in zip(axes[:, 0], datasets.items()):
        methods = _by(drows, "method")
        corruptions = list(dict.fromkeys(r["corruption"] for r in drows))
        width = 0.8 / len(methods)
        for k, (method, mrows) in enumerate(methods.items()):
            err = {r["corruption"]: 100 * r["err"] for r in mrows}
            ax.bar(np.arange(len(corruptions)) + k * width, [err[c] for c in corruptions], width, label=method)
        ax.set_xticks(np.arange(len(corruptions)) + 0.4 - width / 2, corruptions, rotation=30, ha="right", fontsize=8)
        ax.set(title=dataset, ylabel="error (%), mean over severities")
        ax.legend(fontsize=8)
    _save(fig, path)


def results_table(summaries: dict[tuple[str, str], dict[str, Any]]) -> str:
    """Markdown table: clean and mean corrupted err / NLL / ECE per (dataset, method), in percent
    for err and ECE."""
    lines = [
        "| dataset | method | clean err % | clean NLL | clean ECE % | corrupted err % | corrupted NLL | corrupted ECE % |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (dataset, method), s in summaries.items():
        c, k = s["clean"], s.get("corrupted", {})
        cells = [f"{100 * c['err']:.2f}", f"{c['nll']:.3f}", f"{100 * c['ece']:.2f}"]
        cells += [f"{100 * k['err']:.2f}", f"{k['nll']:.3f}", f"{100 * k['ece']:.2f}"] if k else ["-"] * 3
        lines.append(f"| {dataset} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
