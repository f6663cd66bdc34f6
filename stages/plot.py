"""Stage `plot`: comparison plot data for `dvc plots`, PNG figures and the results table."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import PARAMS, run
from mollify.config import MollifyConfig, Params, load_params
from mollify.data import load_meta, load_split
from mollify.evaluate import summary_keys
from mollify.io import check_writable, load_csv, load_json, save_csv, save_text
from mollify.plots import (
    ENSEMBLE, corruption_errors, entropy_vs_t, error_vs_severity, mce_ratio, mce_ratio_bars, mollification_examples,
    nonempty_bins, over_seeds, reliability_diagram, results_table,
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


def _by_corruption(rows: list[dict[str, str]]) -> dict[str, list[dict[str, object]]]:
    table: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        table.setdefault(row["corruption"], []).append(_numbers(row))
    return table


def _mollification_figure(cfg: Params, path: Path) -> None:
    """Mollified versions of the first test image of the first dataset, with the label powers of
    the first mollifying recipe in `methods` (the paper's defaults if none)."""
    dataset = cfg.datasets[0]
    meta = load_meta(paths.clean_dir(dataset))
    x, _ = load_split(paths.clean_dir(dataset), "test")
    settings = next((cfg.recipe(m).mollify for m in cfg.all_methods if cfg.recipe(m).mollify), MollifyConfig())
    mollification_examples(x[0], meta.mean, meta.std, meta.num_classes, settings.npow, settings.bpow, path)


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

            def runs(name: str) -> list[dict[str, object]]:
                """The rows of plots/runs/<dataset>/<method>/seed<s>/<name> of every seed."""
                return [_numbers(r) for seed in cfg.seeds for r in load_csv(paths.run_dir(dataset, method, seed) / name)]

            errors = summary_keys(runs("severity.csv")[0])
            for evaluation, name in (("default", "severity.csv"), (ENSEMBLE, "severity_de.csv")):
                severity += [{**key, "evaluation": evaluation, **r} for r in over_seeds(runs(name), ("severity",), errors)]
            entropy += [{**key, **r} for r in over_seeds(runs("diffaug_entropy.csv"), ("t",), ("entropy", "err"))]
            reliability += [{**key, **r} for r in over_seeds(nonempty_bins(runs("reliability.csv")), ("bin",), ("confidence", "accuracy", "count"))]
            # each run's error per corruption (mean over severities), then mean +- std over seeds
            per_run = [{"seed": seed, "corruption": c, "err": sum(r["err"] for r in rows) / len(rows)}
                       for seed in cfg.seeds
                       for c, rows in _by_corruption(load_csv(paths.run_dir(dataset, method, seed) / "corruptions.csv")).items()]
            corruption += [{**key, **r} for r in over_seeds(per_run, ("corruption",), ("err",))]
            summaries[(dataset, method)] = load_json(paths.summary_file(dataset, method))
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
