"""Stage `summarize@{dataset, method}`: a recipe's result over its training seeds (mean and std)."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import DATASET, METHOD, PARAMS, run
from mollify.config import load_params
from mollify.evaluation.seeds import summarize_method
from mollify.io import check_writable

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATASET,
    method: str = METHOD,
    params: Path = PARAMS,
) -> None:
    """Write metrics/<dataset>/<method>.json (DVC's headline), metrics/<dataset>/evals/<method>.json (the
    other evaluations and the deep ensembles) and plots/methods/<dataset>/<method>/summary.json."""
    cfg = load_params(params, dataset=dataset, method=method)
    check_writable(paths.metrics_file(dataset, method), paths.evals_metrics_file(dataset, method), paths.summary_file(dataset, method))
    summary = summarize_method(cfg, dataset, method)
    std = summary["std"]
    corrupted = summary.get("corrupted")
    mce = f", mCE {corrupted['mce']:.4f} +- {std['corrupted']['mce']:.4f}" if corrupted else ""
    typer.echo(f"{dataset}/{method} over seeds {summary['seeds']}: clean err {summary['clean']['err']:.4f} "
               f"+- {std['clean']['err']:.4f}{mce}")


if __name__ == "__main__":
    run(app)
