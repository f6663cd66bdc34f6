"""Stage `plot`: comparison plot data for `dvc plots`, PNG figures and the results table."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import PARAMS, run
from mollify.config import MollifyConfig, Params, load_params
from mollify.data import load_meta, load_split
from mollify.io import check_writable, load_csv, load_json, save_csv, save_text
from mollify.plots import (
    ENSEMBLE, corruption_errors, curves, entropy_vs_t, error_vs_severity, mce_ratio, mce_ratio_bars, mollification_examples,
    nonempty_bins, reliability_diagram, results_table,
)
from mollify.published import beside_published, load_published, published_table

app = typer.Typer(add_completion=False)


def _numbers(row: dict[str, str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in row.items():
        try:
            out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            out[key] = value
    return out


def _mollification_figure(cfg: Params, path: Path) -> None:
    """Mollified versions of the first test image of the first dataset, with the label powers of
    the first mollifying recipe in `methods` (the paper's defaults if none)."""
    dataset = cfg.datasets[0]
    meta = load_meta(paths.clean_dir(dataset))
    x, _ = load_split(paths.clean_dir(dataset), "test")
    settings = next((cfg.recipe(m).mollify for m in cfg.all_methods if cfg.recipe(m).mollify), MollifyConfig())
    mollification_examples(x[0], meta.mean, meta.std, meta.num_classes, settings.npow, settings.bpow, path)


def _other_evaluations(cfg: Params) -> dict[str, list[dict[str, object]]]:
    """The other evaluations' plot data of every (dataset, method) that has them, in long format
    with an `evaluation` column (the dashes of the lines_by_method template): occlusion and crop,
    the two noise sweeps, the OOD ROC curves (set and default / DiffAug Ensemble), certified
    accuracy (each sigma, and the best sigma per radius)."""
    evals: dict[str, list[dict[str, object]]] = {}
    for dataset in cfg.datasets:
        for method in cfg.all_methods:
            source = paths.evals_dir(dataset, method)
            for name, combined in _COMBINED.items():
                if (source / f"{name}.csv").is_file():
                    rows = [{"dataset": dataset, "method": method, **_numbers(r)} for r in load_csv(source / f"{name}.csv")]
                    evals.setdefault(combined, []).extend({**r, "evaluation": _evaluation(name, r)} for r in rows)
    return evals


# each evaluation's CSV -> the comparison CSV it joins
_COMBINED = {"occlusion": "occlusion", "crop": "occlusion", "white_noise": "noise", "salt_pepper": "noise",
             "ood_roc": "ood_roc", "certified": "certified"}


def _evaluation(name: str, row: dict[str, object]) -> str:
    if name == "ood_roc":
        return f"{row['ood_set']}: {row['evaluation']}"
    if name == "certified":
        return "best sigma" if row["sigma"] == "best" else f"sigma {row['sigma']}"
    return name


def _other_figures(evals: dict[str, list[dict[str, object]]], figures: Path) -> None:
    """The figures in the style of each paper (drawn for the evaluations that ran)."""
    if "occlusion" in evals:  # Soft Augmentation: accuracy and ECE against the visible fraction
        curves(evals["occlusion"], ("dataset", "evaluation"), "visible", "acc", figures / "occlusion_accuracy.png",
               "visible fraction of the image", "accuracy (%)", percent=True)
        curves(evals["occlusion"], ("dataset", "evaluation"), "visible", "ece", figures / "occlusion_ece.png",
               "visible fraction of the image", "ECE (%)", percent=True)
    if "noise" in evals:  # NFM: accuracy against noise strength
        curves(evals["noise"], ("dataset", "evaluation"), "level", "acc", figures / "noise_accuracy.png",
               "noise level (white: sigma on the standardised image; salt & pepper: amount)", "accuracy (%)", percent=True)
    if "ood_roc" in evals:  # DiffAug: ROC curves (MSP), default and DiffAug Ensemble
        curves(evals["ood_roc"], ("dataset", "ood_set"), "fpr", "tpr", figures / "ood_roc.png",
               "false-positive rate (in-distribution flagged)", "true-positive rate (OOD flagged)", variant="evaluation",
               diagonal=True)
    if "certified" in evals:  # DiffAug / Carlini et al.: certified accuracy against radius, best sigma per radius
        curves(evals["certified"], ("dataset",), "radius", "certified_acc", figures / "certified_accuracy.png",
               "l2 radius", "certified accuracy (%)", variant="evaluation", percent=True)


@app.command()
def main(params: Path = PARAMS) -> None:
    """Write plots/compare/*.csv (all datasets x methods, for the top-level `plots:` of dvc.yaml),
    plots/figures/*.png (incl. mollified examples, entropy of DiffAug images vs t) and plots/results.md
    (with ours beside the matching published numbers of conf/published.csv)."""
    cfg = load_params(params)
    check_writable(paths.results_file(), folders=[paths.compare_dir(), paths.figures_dir()])
    severity, corruption, reliability, entropy, summaries = [], [], [], [], {}
    for dataset in cfg.datasets:
        for method in cfg.all_methods:
            key = {"dataset": dataset, "method": method}
            source = paths.method_plots_dir(dataset, method)
            severity += [{**key, "evaluation": "default", **_numbers(r)} for r in load_csv(source / "severity.csv")]
            severity += [{**key, "evaluation": ENSEMBLE, **_numbers(r)} for r in load_csv(source / "severity_de.csv")]
            entropy += [{**key, **_numbers(r)} for r in load_csv(source / "diffaug_entropy.csv")]
            reliability += nonempty_bins([{**key, **_numbers(r)} for r in load_csv(source / "reliability.csv")])
            table = [_numbers(r) for r in load_csv(source / "corruptions.csv")]
            for name in dict.fromkeys(r["corruption"] for r in table):
                rows = [r for r in table if r["corruption"] == name]
                corruption.append({**key, "corruption": name, "err": sum(r["err"] for r in rows) / len(rows)})
            summaries[(dataset, method)] = load_json(paths.summary_file(dataset, method))
    evals = _other_evaluations(cfg)
    for name, rows in evals.items():
        save_csv(paths.compare_dir() / f"{name}.csv", rows)
    _other_figures(evals, paths.figures_dir())
    save_csv(paths.compare_dir() / "error_vs_severity.csv", severity)
    save_csv(paths.compare_dir() / "corruption_error.csv", corruption)
    save_csv(paths.compare_dir() / "reliability.csv", reliability)
    save_csv(paths.compare_dir() / "diffaug_entropy.csv", entropy)
    figures = paths.figures_dir()
    error_vs_severity(severity, figures / "error_vs_severity.png")
    corruption_errors(corruption, figures / "corruption_error.png")
    reliability_diagram(reliability, figures / "reliability.png")
    entropy_vs_t(entropy, figures / "diffaug_entropy.png")
    baseline = "baseline" if "baseline" in cfg.all_methods else cfg.all_methods[0]
    mce_ratio_bars(mce_ratio(summaries, baseline), baseline, figures / "mce_ratio.png")
    networks = {(dataset, method): cfg.model_name(method, dataset) for dataset, method in summaries}
    beside = beside_published(summaries, networks, load_published(paths.published_file()))
    table = f"{results_table(summaries, baseline)}\n## Beside the published numbers\n\n{published_table(beside, cfg.datasets)}"
    save_text(paths.results_file(), table)
    _mollification_figure(cfg, figures / "mollification_examples.png")
    typer.echo(table)


if __name__ == "__main__":
    run(app)
