"""Stage `diffusion@{dataset}`: the DDPM behind DiffAug, trained here or loaded from a pretrained one."""

from pathlib import Path

import typer

from mollify.cli import DATASET, PARAMS, interactive, run
from mollify.config import load_params
from mollify.experiment import prepare_diffusion

app = typer.Typer(add_completion=False)


@app.command()
def main(
    dataset: str = DATASET,
    params: Path = PARAMS,
) -> None:
    """Write data/<dataset>/diffusion (a diffusers DDPMPipeline), metrics/<dataset>/diffusion.json and
    plots/diffusion/<dataset>/ (denoising MSE vs t, training log); a killed run resumes."""
    cfg = load_params(params)
    metrics = prepare_diffusion(cfg, dataset, show_progress=interactive())
    mse = ", ".join(f"{t}: {v:.4f}" for t, v in metrics["denoising_mse"].items())
    typer.echo(f"{dataset} diffusion model ({metrics['source']}): held-out one-step denoising MSE {mse}")


if __name__ == "__main__":
    run(app)
