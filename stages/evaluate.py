"""Stage `evaluate@{dataset, method}`: clean and corrupted metrics of a trained model."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import DATASET, METHOD, PARAMS, run
from mollify.config import load_params
from mollify.experiment import evaluate_method
from mollify.io import check_writable

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATASET,
    method: str = METHOD,
    params: Path = PARAMS,
) -> None:
    """Write metrics/<dataset>/<method>.json and plots/methods/<dataset>/<method>/*.csv."""
    cfg = load_params(params)
    check_writable(paths.metrics_file(dataset, method), paths.evals_metrics_file(dataset, method),
                   folders=[paths.method_plots_dir(dataset, method), paths.evals_dir(dataset, method)])
    summary = evaluate_method(cfg, dataset, method)
    corrupted = summary.get("corrupted", {})
    typer.echo(f"{dataset}/{method}: clean err {summary['clean']['err']:.4f}, corrupted err {corrupted.get('err', float('nan')):.4f}")


if __name__ == "__main__":
    run(app)
