"""Where each stage writes (relative to the repository root); dvc.yaml declares the same paths."""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path("data")
METRICS = Path("metrics")
PLOTS = Path("plots")
CONF = Path("conf")


def settings_dir() -> Path:
    """The validate stage's output: each stage instance's resolved settings (mollify.dag)."""
    return DATA / "settings"


def clean_dir(dataset: str) -> Path:
    return DATA / dataset / "clean"


def corrupted_dir(dataset: str) -> Path:
    return DATA / dataset / "corrupted"


def corrupted_file(dataset: str, corruption: str, severity: int) -> Path:
    return corrupted_dir(dataset) / corruption / f"s{severity}.npy"


def corruption_grid_file(dataset: str) -> Path:
    return PLOTS / "corruptions" / dataset / "grid.png"


def model_file(dataset: str, method: str, seed: int = 0) -> Path:
    """The trained classifier of one run: recipe `method` on `dataset` with training seed `seed`."""
    return DATA / dataset / "models" / method / f"seed{seed}.pt"


CHECKPOINTS_ENV = "MOLLIFY_CHECKPOINTS"


def checkpoints_dir(dataset: str) -> Path:
    """Resumable training checkpoints: no DVC output (DVC keeps a stage with a `persist` output out
    of its run-cache) and git-ignored. `$MOLLIFY_CHECKPOINTS` moves them to `<it>/<dataset>/`: the
    grid points every worker's workspace at one shared folder, so a relaunched job resumes."""
    root = os.environ.get(CHECKPOINTS_ENV)
    return Path(root) / dataset if root else DATA / dataset / "checkpoints"


def checkpoint_file(dataset: str, method: str, seed: int = 0) -> Path:
    return checkpoints_dir(dataset) / method / f"seed{seed}.pt"


def diffusion_dir(dataset: str) -> Path:
    """The diffusion model for DiffAug as a diffusers DDPMPipeline directory."""
    return DATA / dataset / "diffusion"


def diffusion_checkpoint(dataset: str) -> Path:
    return checkpoints_dir(dataset) / "diffusion.pt"


def diffusion_metrics_file(dataset: str) -> Path:
    return METRICS / dataset / "diffusion.json"


def diffusion_plots_dir(dataset: str) -> Path:
    """The diffusion model's training log and denoising error vs t."""
    return PLOTS / "diffusion" / dataset


def metrics_file(dataset: str, method: str) -> Path:
    """The flat headline metrics (`evaluate.headline`, means over seeds) that DVC lists."""
    return METRICS / dataset / f"{method}.json"


def summary_file(dataset: str, method: str) -> Path:
    """The detailed metrics of a (dataset, method), mean and std over seeds (`evaluate.mean_over_seeds`)."""
    return PLOTS / "methods" / dataset / method / "summary.json"


def run_dir(dataset: str, method: str, seed: int = 0) -> Path:
    """Per-run (dataset, method, seed) outputs: training log, detailed metrics, corruption table, reliability bins."""
    return PLOTS / "runs" / dataset / method / f"seed{seed}"


def run_summary_file(dataset: str, method: str, seed: int = 0) -> Path:
    """The detailed metrics of one run: per severity, group, DiffAug Ensemble, MC sweep, the other evaluations."""
    return run_dir(dataset, method, seed) / "summary.json"


def evals_dir(dataset: str, method: str, seed: int = 0) -> Path:
    """The plot data of one run's other evaluations (occlusion, crop, noise sweeps, OOD ROC curves,
    certified accuracy): one CSV per evaluation switched on."""
    return run_dir(dataset, method, seed) / "evals"


def evals_metrics_file(dataset: str, method: str) -> Path:
    """The other evaluations' headline numbers over seeds (and the deep ensembles') as DVC metrics,
    apart from the flat headline of `metrics_file`."""
    return METRICS / dataset / "evals" / f"{method}.json"


def deep_ensemble_file(dataset: str, method: str) -> Path:
    """Clean metrics of the ensemble of the first k seeds' models against k (plot data)."""
    return PLOTS / "methods" / dataset / method / "deep_ensemble.csv"


def ood_dir(dataset: str) -> Path:
    """The out-of-distribution test sets of `dataset` (stage `ood`): <name>.npy and sets.json."""
    return DATA / dataset / "ood"


def train_log_dir(dataset: str, method: str, seed: int = 0) -> Path:
    """DVCLive's directory of the training run: metrics.json (the last epoch), plots/metrics/*.tsv."""
    return run_dir(dataset, method, seed) / "train"


def compare_dir() -> Path:
    """All datasets x methods in one long-format CSV per plot (the top-level `plots:` of dvc.yaml)."""
    return PLOTS / "compare"


def figures_dir() -> Path:
    return PLOTS / "figures"


def plots_page() -> Path:
    """The HTML page of `dvc plots show` / `diff` (`plots.html_template` in .dvc/config)."""
    return PLOTS / "offline_page.html"


def results_file() -> Path:
    """The results table (markdown): ours, and ours beside the published numbers."""
    return PLOTS / "results.md"


def published_file() -> Path:
    """The published numbers that the paper profiles target (mollify.report.published)."""
    return CONF / "published.csv"


def reference_profile_file() -> Path:
    """The published per-corruption errors the demo data is designed to resemble (mollify.report.profile)."""
    return CONF / "reference_profile.csv"
