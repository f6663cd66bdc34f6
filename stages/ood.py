"""Stage `ood@{dataset}`: the out-of-distribution test sets of a dataset (mollify.data.ood)."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import DATASET, PARAMS, run
from mollify.config import load_params
from mollify.data.ood import prepare_ood
from mollify.io import check_writable

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATASET,
    params: Path = PARAMS,
) -> None:
    """Write data/<dataset>/ood/<set>.npy and sets.json (empty when evaluate.ood.enabled is false):
    CIFAR-100 / CIFAR-10 (near) and SVHN (far, downloaded and md5-checked), or the demo's novel shapes."""
    cfg = load_params(params, dataset=dataset)
    check_writable(folders=[paths.ood_dir(dataset)])
    sets = prepare_ood(dataset, paths.ood_dir(dataset), enabled=cfg.evaluate.ood.enabled, download_dir=Path(cfg.data.download_dir),
                       mirror=cfg.data.mirror, seed=cfg.seed, demo_size=cfg.data.demo.test_size,
                       demo_design=cfg.data.demo.design)
    typer.echo(f"{dataset}: OOD sets {sets or 'none (evaluate.ood.enabled is false)'} -> {paths.ood_dir(dataset)}")


if __name__ == "__main__":
    run(app)
