"""Stage `corrupt`: the corrupted test set, one uint8 array per corruption and severity."""

from pathlib import Path

import numpy as np
import torch
import typer
from rich.progress import track

from mollify import paths
from mollify.cli import DATASET, PARAMS, run
from mollify.config import load_params
from mollify.corruptions import corrupt
from mollify.data import load_split
from mollify.device import resolve_device
from mollify.io import save_npy

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATASET,
    params: Path = PARAMS,
) -> None:
    """Write data/<dataset>/corrupted/<corruption>/s<severity>.npy and labels.npy."""
    cfg = load_params(params)
    device = resolve_device(cfg.device)
    images, labels = load_split(paths.clean_dir(dataset), "test")
    images, labels = images[: cfg.corrupt.max_images], labels[: cfg.corrupt.max_images]
    x = torch.from_numpy(images).to(device)
    jobs = [(name, severity) for name in cfg.corrupt.corruptions for severity in cfg.corrupt.severities]
    for name, severity in track(jobs, description=f"corrupting {len(images)} {dataset} test images"):
        out = corrupt(x, name, severity, seed=cfg.seed, batch_size=cfg.corrupt.batch_size)
        save_npy(paths.corrupted_file(dataset, name, severity), out.cpu().numpy())
    save_npy(paths.corrupted_dir(dataset) / "labels.npy", np.asarray(labels))


if __name__ == "__main__":
    run(app)
