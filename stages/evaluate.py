"""Stage `evaluate@{dataset, method, seed}`: clean and corrupted metrics of one trained model."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import DATASET, METHOD, PARAMS, SEED, run
from mollify.config import load_params
from mollify.evaluation.run import evaluate_method
from mollify.io import check_writable

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATASET,
    method: str = METHOD,
    seed: int = SEED,
    params: Path = PARAMS,
) -> None:
    """Write plots/runs/<dataset>/<method>/seed<seed>/: summary.json and the plot data (*.csv)."""
    cfg = load_params(params, dataset=dataset, method=method, seed=seed)
    check_writable(paths.run_summary_file(dataset, method, seed),
                   folders=[paths.run_dir(dataset, method, seed), paths.evals_dir(dataset, method, seed)])
    summary = evaluate_method(cfg, dataset, method, seed)
    corrupted = summary.get("corrupted", {})
    typer.echo(f"{dataset}/{method}/seed{seed}: clean err {summary['clean']['err']:.4f}, corrupted err {corrupted.get('err', float('nan')):.4f}")


if __name__ == "__main__":
    run(app)
