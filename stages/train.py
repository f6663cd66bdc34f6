"""Stage `train@{dataset, method}`: train one recipe on one dataset, resumably."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import DATASET, METHOD, PARAMS, interactive, run
from mollify.config import load_params
from mollify.experiment import train_method
from mollify.io import check_writable

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATASET,
    method: str = METHOD,
    params: Path = PARAMS,
) -> None:
    """Train and write data/<dataset>/models/<method>.pt; a killed run resumes from its last epoch."""
    cfg = load_params(params)
    check_writable(paths.model_file(dataset, method), paths.checkpoint_file(dataset, method),
                   folders=[paths.train_log_dir(dataset, method)])
    history = train_method(cfg, dataset, method, show_progress=interactive())
    last = history[-1]
    typer.echo(f"{dataset}/{method}: {last['epoch']} epochs, train loss {last['train_loss']:.4f}, train acc {last['train_acc']:.4f}")


if __name__ == "__main__":
    run(app)
