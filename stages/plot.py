"""Stage `plot`: comparison plot data for `dvc plots`, PNG figures and the results table."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import PARAMS, run
from mollify.config import MollifyConfig, Params, load_params
from mollify.data import load_meta, load_split
from mollify.evaluation.summary import summary_keys
from mollify.io import check_writable, load_csv, load_json, save_csv, save_text
from mollify.report.machines import machines_section
from mollify.report.plots import (ENSEMBLE, corruption_errors, curves, entropy_vs_t, error_vs_severity,
                                  mce_ratio, mce_ratio_bars, nonempty_bins, over_seeds, reliability_diagram,
                                  mollification_examples, results_table, training_curves)
from mollify.report.profile import profile_section
from mollify.report.published import beside_published, load_published, published_table
from mollify.report.verdicts import PAPER_CLAIMS, findings_table

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
    """The other evaluations' plot data of every (dataset, method) that has them, mean and std over
    seeds, in long format with an `evaluation` column (the dashes of the lines_by_method template):
    occlusion and crop, the two noise sweeps, the OOD ROC curves (set and default / DiffAug
    Ensemble), certified accuracy (each sigma, and the best sigma per radius)."""
    evals: dict[str, list[dict[str, object]]] = {}
    for dataset in cfg.datasets:
        for method in cfg.all_methods:
            for name, (combined, by, values) in _COMBINED.items():
                files = [paths.evals_dir(dataset, method, seed) / f"{name}.csv" for seed in cfg.seeds]
                if all(f.is_file() for f in files):
                    rows = over_seeds([_numbers(r) for f in files for r in load_csv(f)], by, values)
                    evals.setdefault(combined, []).extend(
                        {"dataset": dataset, "method": method, "evaluation": _evaluation(name, r), **r} for r in rows)
    return evals


# each evaluation's CSV -> the comparison CSV it joins, the columns that identify a point, its values
_COMBINED = {
    "occlusion": ("occlusion", ("level",), ("visible", "acc", "nll", "ece")),
    "crop": ("occlusion", ("level",), ("visible", "acc", "nll", "ece")),
    "white_noise": ("noise", ("level",), ("acc", "nll", "ece")),
    "salt_pepper": ("noise", ("level",), ("acc", "nll", "ece")),
    "ood_roc": ("ood_roc", ("ood_set", "evaluation", "fpr"), ("tpr",)),
    "certified": ("certified", ("sigma", "radius"), ("certified_acc",)),
}


# the comparison CSVs of the evaluations that may be off, with the columns of their plots in dvc.yaml
_OFF_HEADERS = {**{combined: tuple(dict.fromkeys(("dataset", "method", "evaluation", *by, *values)))
                   for combined, by, values in _COMBINED.values()},
                "deep_ensemble": ("dataset", "method", "size", "acc", "nll", "ece")}


def _deep_ensembles(summaries: dict[tuple[str, str], dict]) -> dict[str, list[dict[str, object]]]:
    """Clean accuracy / NLL / ECE against ensemble size (summarize's `deep_ensemble`), where computed."""
    rows = [{"dataset": dataset, "method": method, "size": int(size), **{k: row[k] for k in ("acc", "nll", "ece")}}
            for (dataset, method), s in summaries.items() for size, row in s.get("deep_ensemble", {}).items()]
    return {"deep_ensemble": rows} if rows else {}


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
               "strength (white: sigma, standardised; s&p: amount)", "accuracy (%)", percent=True)
    if "ood_roc" in evals:  # DiffAug: ROC curves (MSP), default and DiffAug Ensemble
        curves(evals["ood_roc"], ("dataset", "ood_set"), "fpr", "tpr", figures / "ood_roc.png",
               "false-positive rate (in-distribution flagged)", "true-positive rate (OOD flagged)", variant="evaluation",
               diagonal=True)
    if "deep_ensemble" in evals:  # spatial smoothing: NLL, accuracy and ECE against the number of models averaged
        long = [{**r, "metric": metric, "value": r[metric]} for r in evals["deep_ensemble"] for metric in ("nll", "acc", "ece")]
        curves(long, ("dataset", "metric"), "size", "value", figures / "deep_ensemble.png", "ensemble size (training seeds)",
               "clean test set (the panel's metric)")
    if "certified" in evals:  # DiffAug / Carlini et al.: certified accuracy against radius, best sigma per radius
        best = [r for r in evals["certified"] if r["sigma"] == "best"]  # each sigma's curve is in the CSV
        curves(best, ("dataset",), "radius", "certified_acc", figures / "certified_accuracy.png",
               "l2 radius", "certified accuracy (%), best sigma per radius", percent=True)


def _claimed_features(cfg: Params) -> dict[str, str]:
    """Each paired method's robustness method with a paper claim: the first one it adds to its control."""
    features = {}
    for method, control in cfg.pairs():
        ours, theirs = cfg.recipe(method), cfg.recipe(control)
        feature = next((f for f in PAPER_CLAIMS if getattr(ours, f) not in (None, False) and getattr(ours, f) != getattr(theirs, f)), None)
        if feature:
            features[method] = feature
    return features


@app.command()
def main(params: Path = PARAMS) -> None:
    """Write plots/compare/*.csv (all datasets x methods, for the top-level `plots:` of dvc.yaml),
    plots/figures/*.png (incl. mollified examples, entropy of DiffAug images vs t) and plots/results.md
    (with ours beside the matching published numbers of conf/published.csv)."""
    cfg = load_params(params)
    check_writable(paths.results_file(), folders=[paths.compare_dir(), paths.figures_dir()])
    severity, corruption, reliability, entropy, training, summaries = [], [], [], [], [], {}
    for dataset in cfg.datasets:
        for method in cfg.all_methods:
            key = {"dataset": dataset, "method": method}

            def runs(name: str) -> list[dict[str, object]]:
                """The rows of plots/runs/<dataset>/<method>/seed<s>/<name> of every seed, each with its `seed`."""
                return [{"seed": seed, **_numbers(r)} for seed in cfg.seeds for r in load_csv(paths.run_dir(dataset, method, seed) / name)]

            errors = summary_keys(runs("severity.csv")[0])
            for evaluation, name in (("default", "severity.csv"), (ENSEMBLE, "severity_de.csv")):
                severity += [{**key, "evaluation": evaluation, **r} for r in over_seeds(runs(name), ("severity",), errors)]
            entropy += [{**key, **r} for r in over_seeds(runs("diffaug_entropy.csv"), ("t",), ("entropy", "err"))]
            reliability += [{**key, **r} for r in over_seeds(nonempty_bins(runs("reliability.csv")), ("bin",), ("confidence", "accuracy", "count"))]
            # each run's error per corruption (mean over severities), then mean +- std over seeds
            per_run = over_seeds(runs("corruptions.csv"), ("seed", "corruption"), ("err",))
            corruption += [{**key, **r} for r in over_seeds(per_run, ("corruption",), ("err",))]
            epochs = [{"seed": seed, "epoch": int(loss["step"]), "train_loss": float(loss["train_loss"]),
                       "train_acc": float(acc["train_acc"])}
                      for seed in cfg.seeds
                      for loss, acc in zip(*(load_csv(paths.train_log_dir(dataset, method, seed) / f"plots/metrics/{k}.tsv", "\t")
                                             for k in ("train_loss", "train_acc")))]
            training += [{**key, **r} for r in over_seeds(epochs, ("epoch",), ("train_loss", "train_acc"))]
            summaries[(dataset, method)] = load_json(paths.summary_file(dataset, method))
    evals = _other_evaluations(cfg)
    evals.update(_deep_ensembles(summaries))
    for name, rows in evals.items():
        save_csv(paths.compare_dir() / f"{name}.csv", rows)
    for name, header in _OFF_HEADERS.items():  # an evaluation that is off: its file with the header alone, which
        if name not in evals:                  # `dvc plots show` / `diff` load as an empty plot (a missing one fails)
            save_csv(paths.compare_dir() / f"{name}.csv", [], header)
    _other_figures(evals, paths.figures_dir())
    save_csv(paths.compare_dir() / "error_vs_severity.csv", severity)
    save_csv(paths.compare_dir() / "corruption_error.csv", corruption)
    save_csv(paths.compare_dir() / "reliability.csv", reliability)
    save_csv(paths.compare_dir() / "diffaug_entropy.csv", entropy)
    save_csv(paths.compare_dir() / "training.csv", training)
    figures = paths.figures_dir()
    error_vs_severity(severity, figures / "error_vs_severity.png")
    corruption_errors(corruption, figures / "corruption_error.png")
    reliability_diagram(reliability, figures / "reliability.png")
    entropy_vs_t(entropy, figures / "diffaug_entropy.png")
    training_curves(training, figures / "training.png")
    baseline = "baseline" if "baseline" in cfg.all_methods else cfg.all_methods[0]
    mce_ratio_bars(mce_ratio(summaries, baseline), baseline, figures / "mce_ratio.png")
    networks = {(dataset, method): cfg.model_name(method, dataset) for dataset, method in summaries}
    beside = beside_published(summaries, networks, load_published(paths.published_file()))
    table = (f"{results_table(summaries, baseline)}\n{machines_section(summaries)}\n"
             f"## Does each paper's effect show? (each method against its control, over training seeds)\n\n"
             f"{findings_table(summaries, cfg.pairs(), _claimed_features(cfg))}\n"
             f"{profile_section(summaries.get(('demo', baseline)), baseline)}"
             f"## Beside the published numbers\n\n{published_table(beside, cfg.datasets)}")
    save_text(paths.results_file(), table)
    _mollification_figure(cfg, figures / "mollification_examples.png")
    typer.echo(table)


if __name__ == "__main__":
    run(app)
