"""Stage `train@{dataset, method, seed}`: train one recipe on one dataset with one seed, resumably."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import DATASET, METHOD, PARAMS, SEED, interactive, run
from mollify.config import load_params
from mollify.training.run import train_method
from mollify.io import check_writable

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATASET,
    method: str = METHOD,
    seed: int = SEED,
    params: Path = PARAMS,
) -> None:
    """Train and write data/<dataset>/models/<method>/seed<seed>.pt; a killed run resumes from its last epoch."""
    cfg = load_params(params, dataset=dataset, method=method, seed=seed)
    check_writable(paths.model_file(dataset, method, seed), paths.checkpoint_file(dataset, method, seed),
                   folders=[paths.train_log_dir(dataset, method, seed)])
    history = train_method(cfg, dataset, method, seed, show_progress=interactive())
    last = history[-1]
    typer.echo(f"{dataset}/{method}/seed{seed}: {last['epoch']} epochs, train loss {last['train_loss']:.4f}, train acc {last['train_acc']:.4f}")


if __name__ == "__main__":
    run(app)
