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
from mollify.data import load_split, prepare_official_corrupted
from mollify.device import resolve_device
from mollify.io import check_writable, load_images, save_json, save_npy
from mollify.report.examples import corruption_grid

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATASET,
    params: Path = PARAMS,
) -> None:
    """Write data/<dataset>/corrupted/<corruption>/s<severity>.npy, labels.npy and source.json
    (generated here, or the official -C set downloaded, per corrupt.source), and a PNG of the first
    test image under every corruption and severity."""
    cfg = load_params(params, dataset=dataset)
    check_writable(paths.corruption_grid_file(dataset), folders=[paths.corrupted_dir(dataset)])
    c = cfg.corrupt
    out = paths.corrupted_dir(dataset)
    images, labels = load_split(paths.clean_dir(dataset), "test")  # the grid's clean image in both cases
    if c.source == "official":
        record = prepare_official_corrupted(
            dataset, out, download_dir=Path(cfg.data.download_dir), corruptions=c.corruptions,
            severities=c.severities, max_images=c.max_images, mirror=cfg.data.mirror, tiny_c_order=c.tiny_c_order,
            tiny_c_release=c.tiny_c_release,
        )
    else:
        device = resolve_device(cfg.device)
        labels = labels[: c.max_images]
        x = torch.from_numpy(images[: c.max_images]).to(device)
        jobs = [(name, severity) for name in c.corruptions for severity in c.severities]
        for name, severity in track(jobs, description=f"corrupting {len(x)} {dataset} test images"):
            save_npy(paths.corrupted_file(dataset, name, severity), corrupt(x, name, severity, seed=cfg.seed, batch_size=c.batch_size).cpu().numpy())
        save_npy(out / "labels.npy", np.asarray(labels))
        record = {"source": "generated", "generator": "mollify.corruptions (hendrycks/robustness make_cifar_c.py / "
                  "make_tinyimagenet_c.py severities)", "seed": cfg.seed, "images": len(labels)}
    save_json(out / "source.json", {**record, "corruptions": c.corruptions, "severities": c.severities})
    clean = images[0]
    grid = {name: [load_images(paths.corrupted_file(dataset, name, s), mmap=True)[0] for s in c.severities] for name in c.corruptions}
    corruption_grid(clean, grid, c.severities, paths.corruption_grid_file(dataset))


if __name__ == "__main__":
    run(app)
