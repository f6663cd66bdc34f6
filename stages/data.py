"""Stage `data`: make the train/test arrays of a dataset under data/<dataset>/clean."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import DATA_DATASET, PARAMS, run
from mollify.config import load_params
from mollify.data import prepare_dataset
from mollify.io import check_writable

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATA_DATASET,
    params: Path = PARAMS,
) -> None:
    """Generate the embedded demo set, or download, verify and convert a real dataset to .npy."""
    cfg = load_params(params, dataset=dataset)
    check_writable(folders=[paths.clean_dir(dataset)])
    meta = prepare_dataset(
        dataset, paths.clean_dir(dataset), download_dir=Path(cfg.data.download_dir), seed=cfg.seed,
        demo_train_size=cfg.data.demo.train_size, demo_test_size=cfg.data.demo.test_size,
        demo_design=cfg.data.demo.design, mirror=cfg.data.mirror,
    )
    typer.echo(f"{dataset}: {meta.num_classes} classes, {meta.image_size}px, from {meta.source} -> {paths.clean_dir(dataset)}")


if __name__ == "__main__":
    run(app)
