"""Stage `diffusion@{dataset}`: the DDPM behind DiffAug, trained here or loaded from a pretrained one."""

from pathlib import Path

import typer

from mollify import paths
from mollify.cli import DATASET, PARAMS, interactive, run
from mollify.config import load_params
from mollify.diffusion.prepare import prepare_diffusion
from mollify.io import check_writable

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATASET,
    params: Path = PARAMS,
) -> None:
    """Write data/<dataset>/diffusion (a diffusers DDPMPipeline), metrics/<dataset>/diffusion.json and
    plots/diffusion/<dataset>/ (denoising MSE vs t, training log); a killed run resumes."""
    cfg = load_params(params, dataset=dataset)
    check_writable(paths.diffusion_checkpoint(dataset), paths.diffusion_metrics_file(dataset),
                   folders=[paths.diffusion_dir(dataset), paths.diffusion_plots_dir(dataset)])
    metrics = prepare_diffusion(cfg, dataset, show_progress=interactive())
    mse = ", ".join(f"{t}: {v:.4f}" for t, v in metrics["denoising_mse"].items())
    typer.echo(f"{dataset} diffusion model ({metrics['source']}): held-out one-step denoising MSE {mse}")


if __name__ == "__main__":
    run(app)
