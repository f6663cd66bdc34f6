"""Figures of the benchmark (PNG, matplotlib) from the per-method plot data of the evaluate stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mollify.report.examples import save_figure  # noqa: E402


def _colours(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One colour per method, in order of appearance (the same in every panel)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cmap = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    return {m: cmap(k % cmap.N) for k, m in enumerate(methods)}


def _legend(ax: plt.Axes) -> None:
    """The legend to the right of the axes, where it covers no data."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)


def _by(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return groups


def over_seeds(rows: list[dict[str, Any]], by: tuple[str, ...], values: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of several training seeds -> one row per `by` key (in order of appearance): each of
    `values` the mean over the rows of that key, `<value>_std` their sample standard deviation
    (ddof 1; 0 for one row) and `seeds` how many rows there were."""
    out = []
    for group in _by([{**r, "_key": tuple(r[k] for k in by)} for r in rows], "_key").values():
        row = {k: group[0][k] for k in by}
        for v in values:
            numbers = [r[v] for r in group]
            row[v] = float(np.mean(numbers))
            row[f"{v}_std"] = float(np.std(numbers, ddof=1)) if len(numbers) > 1 else 0.0
        out.append({**row, "seeds": len(group)})
    return out


def _spread(rows: list[dict[str, Any]], key: str, scale: float = 1.0) -> list[float] | None:
    """The error bars of `key` (its `<key>_std` column, mean +- std over seeds), None without one."""
    return [scale * r[f"{key}_std"] for r in rows] if rows and f"{key}_std" in rows[0] else None


ENSEMBLE = "ensemble"  # the `evaluation` of the DiffAug-Ensemble rows ("default" for the others)


def error_vs_severity(rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per dataset: error against severity (0 = clean), mean +- std over seeds, a colour
    per method, solid for its default evaluation and dashed for its DiffAug Ensemble ("+DE", rows
    with evaluation ENSEMBLE)."""
    datasets = _by(rows, "dataset")
    colours = _colours(rows)
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6), squeeze=False)
    for ax, (dataset, drows) in zip(axes[0], datasets.items()):
        for method, mrows in _by(drows, "method").items():
            for evaluation, erows in _by(mrows, "evaluation").items():
                de = evaluation == ENSEMBLE
                ax.errorbar([r["severity"] for r in erows], [100 * r["err"] for r in erows], yerr=_spread(erows, "err", 100),
                            marker="o", capsize=2, color=colours[method], linestyle="--" if de else "-",
                            label=f"{method} +DE" if de else method)
        ax.set(title=dataset, xlabel="severity (0 = clean)", ylabel="error (%)", xticks=range(6))
        ax.grid(alpha=0.3)
    _legend(axes[0, -1])
    save_figure(fig, path)


def nonempty_bins(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reliability bins that hold test images: an empty bin has no confidence or accuracy
    (drawn, it would be a point at (0, 0))."""
    return [r for r in rows if r["count"] > 0]


def reliability_diagram(rows: list[dict[str, Any]], path: Path) -> None:
    """Accuracy against mean confidence of each non-empty bin on the clean test set, a line per
    (dataset, method), and the diagonal of perfect calibration."""
    colours = _colours(rows)
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    for (dataset, method), brows in _by([{**r, "key": (r["dataset"], r["method"])} for r in nonempty_bins(rows)], "key").items():
        ax.plot([r["confidence"] for r in brows], [r["accuracy"] for r in brows], marker="o", markersize=3,
                color=colours[method], label=f"{dataset}/{method}")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="reliability (clean)")
    _legend(ax)
    save_figure(fig, path)


def corruption_errors(rows: list[dict[str, Any]], path: Path) -> None:
    """Mean error over severities per corruption: grouped bars (mean +- std over seeds), one colour per method."""
    datasets = _by(rows, "dataset")
    colours = _colours(rows)
    fig, axes = plt.subplots(len(datasets), 1, figsize=(10, 3.4 * len(datasets)), squeeze=False)
    for ax, (dataset, drows) in zip(axes[:, 0], datasets.items()):
        methods = _by(drows, "method")
        corruptions = list(dict.fromkeys(r["corruption"] for r in drows))
        width = 0.8 / len(methods)
        for k, (method, mrows) in enumerate(methods.items()):
            by_name = {r["corruption"]: r for r in mrows}
            ordered = [by_name[c] for c in corruptions]
            ax.bar(np.arange(len(corruptions)) + k * width, [100 * r["err"] for r in ordered], width,
                   yerr=_spread(ordered, "err", 100), capsize=1.5, color=colours[method], label=method)
        ax.set_xticks(np.arange(len(corruptions)) + 0.4 - width / 2, corruptions, rotation=30, ha="right", fontsize=8)
        ax.set(title=dataset, ylabel="error (%), mean over severities")
    _legend(axes[0, 0])
    save_figure(fig, path)


def training_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """Training loss and accuracy per epoch (DVCLive's logs), mean +- std over seeds: a panel
    each, a colour per (dataset, method); a converged run has flat curves over its last epochs."""
    colours = _colours(rows)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for (dataset, method), mrows in _by([{**r, "key": (r["dataset"], r["method"])} for r in rows], "key").items():
        for ax, key in zip(axes, ("train_loss", "train_acc")):
            ax.errorbar([r["epoch"] for r in mrows], [r[key] for r in mrows], yerr=_spread(mrows, key), marker="o",
                        markersize=3, capsize=2, color=colours[method], label=f"{dataset}/{method}")
    axes[0].set(xlabel="epoch", ylabel="training loss (of the recipe's targets)", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="training accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
    _legend(axes[1])
    save_figure(fig, path)


def entropy_vs_t(rows: list[dict[str, Any]], path: Path) -> None:
    """Mean predictive entropy of each classifier on DiffAug images against t (DiffAug, Fig. 2),
    mean +- std over seeds."""
    datasets = _by(rows, "dataset")
    colours = _colours(rows)
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6), squeeze=False)
    for ax, (dataset, drows) in zip(axes[0], datasets.items()):
        for method, mrows in _by(drows, "method").items():
            ax.errorbar([r["t"] for r in mrows], [r["entropy"] for r in mrows], yerr=_spread(mrows, "entropy"), marker="o",
                        markersize=3, capsize=2, color=colours[method], label=method)
        ax.set(title=dataset, xlabel="diffusion time t", ylabel="mean predictive entropy (nats)")
        ax.grid(alpha=0.3)
    _legend(axes[0, -1])
    save_figure(fig, path)


def mce_ratio(summaries: dict[tuple[str, str], dict[str, Any]], baseline: str) -> dict[tuple[str, str], float | None]:
    """The mCE ratio: mCE of each (dataset, method) over the `baseline` method's mCE on the same
    dataset (not Hendrycks' Relative mCE, which compares corrupted-minus-clean errors)."""
    ratios: dict[tuple[str, str], float | None] = {}
    for (dataset, method), s in summaries.items():
        base = summaries.get((dataset, baseline), {}).get("corrupted")
        # None without a baseline, or when its mCE is 0 (a tiny test set it gets all right)
        ratios[(dataset, method)] = s["corrupted"]["mce"] / base["mce"] if base and base["mce"] > 0 and "corrupted" in s else None
    return ratios


def relative_mce(summaries: dict[tuple[str, str], dict[str, Any]], baseline: str) -> dict[tuple[str, str], float | None]:
    """Hendrycks & Dietterich's (ICLR 2019) Relative mCE with `baseline` of the same dataset in
    AlexNet's place: the mean over corruptions c of (E_c - E_clean) / (E^base_c - E^base_clean),
    E_c the error averaged over severities; None without a baseline or where a denominator is 0."""
    out: dict[tuple[str, str], float | None] = {}
    for (dataset, method), s in summaries.items():
        base = summaries.get((dataset, baseline), {})
        if "corrupted" not in s or "corrupted" not in base:
            out[(dataset, method)] = None
            continue
        ours, theirs = s["corrupted"]["by_corruption"], base["corrupted"]["by_corruption"]
        gaps = [theirs[c]["err"] - base["clean"]["err"] for c in ours]
        out[(dataset, method)] = None if 0 in gaps else float(np.mean(
            [(ours[c]["err"] - s["clean"]["err"]) / gap for c, gap in zip(ours, gaps)]))
    return out


def mce_ratio_bars(ratios: dict[tuple[str, str], float | None], baseline: str, path: Path) -> None:
    """The mCE ratio to the baseline method of the same dataset: one bar per method, a panel per dataset."""
    datasets = _by([{"dataset": d, "method": m, "ratio": r} for (d, m), r in ratios.items() if r is not None], "dataset")
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(1 + 0.6 * max((len(v) for v in datasets.values()), default=1) * len(datasets), 3.4),
                             squeeze=False)
    for ax, (dataset, rows) in zip(axes[0], datasets.items()):
        ax.bar([r["method"] for r in rows], [r["ratio"] for r in rows], color="tab:blue")
        ax.axhline(1, color="grey", linestyle="--", linewidth=1)
        ax.set(title=dataset, ylabel=f"mCE ratio: mCE / mCE({baseline})")
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    save_figure(fig, path)


def results_table(summaries: dict[tuple[str, str], dict[str, Any]], baseline: str = "baseline") -> str:
    """Markdown table per (dataset, method): clean and mean corrupted err / NLL / ECE, mean +- std
    over seeds where `summaries` are `mean_over_seeds` results (err and ECE in percent; mCE = the plain mean error over the 15 standard corruptions x severities), the
    mCE ratio to `baseline`'s mCE, Hendrycks' Relative mCE against `baseline`, the 4 extra
    corruptions apart, and error with the DiffAug Ensemble beside the default on the same images;
    then where each dataset's corrupted images came from. Where the runs' paper reports another
    ECE (`paper_ece` of the summaries: ece_batch_mean, ece_right_closed, ece_reference), its clean
    and corrupted values follow ours in columns named after it."""
    variants = sorted({s["paper_ece"] for s in summaries.values() if s.get("paper_ece", "ece") != "ece"})
    paper = [f"clean {v} % (paper's ECE) | corrupted {v} % (paper's ECE)" for v in variants]
    lines = [
        f"| dataset | method | clean err % | clean NLL | clean ECE % | mCE % | corrupted NLL | corrupted ECE % | "
        + "".join(f"{p} | " for p in paper)
        + f"mCE ratio (/ {baseline}) | Relative mCE (Hendrycks, / {baseline}) | extra 4 err % | clean err % (DE) | corrupted err % (default / DE, DE subset) |",
        "|---|---|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(variants) + "---:|---:|---:|---:|---:|",
    ]
    ratios, relative = mce_ratio(summaries, baseline), relative_mce(summaries, baseline)
    for (dataset, method), s in summaries.items():
        k, extra = s.get("corrupted", {}), s.get("corrupted_extra")
        cells = [_mean_std(s, "clean", "err", 100), _mean_std(s, "clean", "nll"), _mean_std(s, "clean", "ece", 100)]
        cells += [_mean_std(s, "corrupted", "mce", 100), _mean_std(s, "corrupted", "nll"),
                  _mean_std(s, "corrupted", "ece", 100)] if k else ["-"] * 3
        for v in variants:
            cells += [_mean_std(s, part, v, 100) if v in s.get(part, {}) else "-" for part in ("clean", "corrupted")]
        cells += [f"{r:.3f}" if r is not None else "-" for r in (ratios[(dataset, method)], relative[(dataset, method)])]
        cells.append(f"{100 * extra['err']:.2f}" if extra else "-")
        de = s.get("diffaug_ensemble")
        if de:
            default, ensemble = de["default"].get("corrupted"), de["ensemble"].get("corrupted")
            cells.append(f"{100 * de['ensemble']['clean']['err']:.2f}")
            cells.append(f"{100 * default['err']:.2f} / {100 * ensemble['err']:.2f}" if default else "-")
        else:
            cells += ["-"] * 2
        lines.append(f"| {dataset} | {method} | " + " | ".join(cells) + " |")
    sources = {dataset: s.get("corrupted_source") for (dataset, _), s in summaries.items()}
    lines.append("")
    lines += [f"Corrupted {dataset} test images: {_source_text(src)}." for dataset, src in sources.items() if src]
    return "\n".join(lines) + "\n"


def _mean_std(summary: dict[str, Any], part: str, key: str, scale: float = 1.0) -> str:
    """`mean +- std` of summary[part][key] over seeds (percent with scale 100), the mean alone for one seed."""
    digits = 2 if scale == 100 else 3
    text = f"{scale * summary[part][key]:.{digits}f}"
    if len(summary.get("seeds", [])) > 1:
        text += f" ± {scale * summary['std'][part][key]:.{digits}f}"
    return text


def _source_text(source: dict[str, Any]) -> str:
    if source["source"] == "official":
        return f"official -C release ({source['url']}, md5 {source['md5']}), first {source['images']} images"
    return f"generated by mollify.corruptions (seed {source['seed']}), first {source['images']} test images"


def curves(rows: list[dict[str, Any]], panels: tuple[str, ...], x: str, y: str, path: Path, xlabel: str, ylabel: str,
           variant: str | None = None, diagonal: bool = False, percent: bool = False) -> None:
    """Line plots for the comparison papers' other evaluations: a panel per value of the `panels`
    keys (e.g. dataset and sweep), a colour per method, and per value of `variant` (e.g. the
    default evaluation and the DiffAug Ensemble, or sigma) a line style; `diagonal` draws y = x
    (a ROC curve's chance line), `percent` shows y in percent."""
    keyed = [{**r, "_panel": " / ".join(str(r[k]) for k in panels)} for r in rows]
    groups = _by(keyed, "_panel")
    colours = _colours(rows)
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(4.2 * max(1, len(groups)), 3.6), squeeze=False)
    for ax, (title, prows) in zip(axes[0], groups.items()):
        if diagonal:
            ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        for method, mrows in _by(prows, "method").items():
            for k, (value, vrows) in enumerate(_by(mrows, variant).items() if variant else [(None, mrows)]):
                ax.plot([r[x] for r in vrows], [(100 if percent else 1) * r[y] for r in vrows], marker="o" if len(vrows) < 30 else None,
                        markersize=3, color=colours[method], linestyle=styles[k % len(styles)],
                        label=method if value is None else f"{method} ({variant} {value})")
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
    _legend(axes[0, -1])
    save_figure(fig, path)


def mollification_examples(image: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...], num_classes: int,
                           npow: float, bpow: float, path: Path) -> None:
    """The paper's figure of mollified examples: rows noise / blur, columns t = 0, 0.1, ..., 1,
    each titled with the target confidence of the true class, 1 - gamma + gamma / K (`ls`)."""
    import torch

    from mollify.augment.mollification import add_noise, gamma_blur, gamma_noise, heat_blur

    t = torch.linspace(0, 1, 11)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    x = ((torch.from_numpy(image).float()[None] / 255 - m) / s).expand(len(t), -1, -1, -1)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    rows = {"noise": (add_noise(x, t, eps), gamma_noise(t, npow)), "blur": (heat_blur(x, t), gamma_blur(t, bpow))}
    fig, axes = plt.subplots(2, len(t), figsize=(1.3 * len(t), 3.0))
    for r, (name, (images, gamma)) in enumerate(rows.items()):
        shown = (images * s + m).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        for c in range(len(t)):
            ax = axes[r, c]
            ax.imshow(shown[c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            confidence = float(1 - gamma[c] + gamma[c] / num_classes)
            ax.set_title(f"{confidence:.2f}", fontsize=8)
            if r == 1:
                ax.set_xlabel(f"t={float(t[c]):.1f}", fontsize=8)
        axes[r, 0].set_ylabel(name)
    fig.suptitle("mollified examples (title: target confidence of the true class)", fontsize=9)
    save_figure(fig, path)
